import keras
from keras import ops

from keras_transfer._validation import check_number
from keras_transfer.losses._domain_masks import domain_weights


def _masked_mcc(logits, rows, temperature):
    """MCC over the rows with weight 1 in `rows` (0/1 float `(n,)`)."""
    num_classes = ops.cast(ops.shape(logits)[1], "float32")
    probabilities = ops.softmax(logits / temperature, axis=-1)
    log_p = ops.log_softmax(logits / temperature, axis=-1)
    entropy = ops.stop_gradient(-ops.sum(probabilities * log_p, axis=-1))
    # Confident rows count more: w_i ~ 1 + exp(-H_i), normalised to sum to n.
    weight = (1.0 + ops.exp(-entropy)) * rows
    count = ops.sum(rows)
    weight = count * weight / ops.maximum(ops.sum(weight), 1e-12)
    confusion = ops.matmul(
        ops.transpose(probabilities * weight[:, None]), probabilities
    )
    confusion = confusion / ops.maximum(
        ops.sum(confusion, axis=1, keepdims=True), 1e-12
    )
    loss = (ops.sum(confusion) - ops.trace(confusion)) / num_classes
    return ops.where(count >= 1.0, loss, 0.0)


def _check_temperature(temperature):
    return float(check_number("temperature", temperature, above=0))


@keras.saving.register_keras_serializable(package="keras_transfer")
def mcc_loss(logits, temperature=2.5):
    """Minimum class confusion (MCC) of a batch of class logits.

    ```python
    p = softmax(logits / temperature)                         # (n, C)
    h = stop_gradient(-sum_c p * log(p))                      # row entropy
    w = n * (1 + exp(-h)) / sum(1 + exp(-h))                  # row weights
    confusion = (p * w[:, None]).T @ p                        # (C, C)
    confusion = confusion / confusion.sum(axis=1, keepdims=True)
    loss = (confusion.sum() - trace(confusion)) / C
    ```

    The off-diagonal mass of the class-correlation matrix: how often the
    batch's predictions put weight on two classes at once. Minimising it
    on unlabelled target rows sharpens predictions without pushing them all
    into one class (unlike plain entropy minimisation, the normalisation
    per class keeps every class's row in play).

    Args:
        logits: Tensor `(n, num_classes)` of class logits.
        temperature: Float > 0. Softmax temperature. Defaults to `2.5` (the
            paper's value).

    Returns:
        Scalar float32 tensor in `[0, (C - 1) / C]`.

    Reference:
        - [Jin et al., 2020](https://arxiv.org/abs/1912.03699)
    """
    temperature = _check_temperature(temperature)
    logits = ops.cast(logits, "float32")
    return _masked_mcc(logits, ops.ones((ops.shape(logits)[0],)), temperature)


@keras.saving.register_keras_serializable(package="keras_transfer")
class MCCLoss(keras.losses.Loss):
    """Minimum class confusion on the target rows of a mixed batch, for `compile`.

    `y_true` is the domain indicator of each row (0 source, 1 target), as
    `keras_transfer.datasets.paired_dataset` yields it under `"domain"`, and
    `y_pred` the class logits of the whole batch. The loss is
    `keras_transfer.losses.mcc_loss` over the target rows only; a batch
    without target rows gives 0.

    Args:
        temperature: Float > 0. Softmax temperature. Defaults to `2.5`.
        name: Optional name. Defaults to `"mcc_loss"`.
        **kwargs: `reduction` and `dtype`, as for `keras.losses.Loss`.

    Example:

    ```python
    domain = np.array([0.0, 0.0, 1.0, 1.0])   # 2 source rows, 2 target rows
    loss = keras_transfer.losses.MCCLoss(temperature=2.5)
    confused = np.array([[4.0, 0.0], [0.0, 4.0], [0.0, 0.0], [9.0, 0.0]])
    confident = np.array([[4.0, 0.0], [0.0, 4.0], [9.0, 0.0], [0.0, 9.0]])
    loss(domain, confused)    # ~0.35
    loss(domain, confident)   # ~0.05: less confusion between the classes
    # In `compile`, on the "domain" output (the logits again), as build_mcc does.
    ```

    Reference:
        - [Jin et al., 2020](https://arxiv.org/abs/1912.03699)
    """

    def __init__(self, temperature=2.5, name="mcc_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.temperature = _check_temperature(temperature)

    def call(self, y_true, y_pred):
        logits, _, target = domain_weights(y_true, y_pred)
        return _masked_mcc(logits, target, self.temperature)

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature}
