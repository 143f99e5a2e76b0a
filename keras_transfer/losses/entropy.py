import keras
from keras import ops

from keras_transfer.losses._domain_masks import domain_weights


def _row_entropy(logits):
    """Shannon entropy (nats) of `softmax(logits)` per row, in float32."""
    logits = ops.cast(logits, "float32")
    log_p = ops.log_softmax(logits, axis=-1)
    return -ops.sum(ops.exp(log_p) * log_p, axis=-1)


@keras.saving.register_keras_serializable(package="keras_transfer")
def entropy_loss(logits):
    """Mean Shannon entropy of the predicted class distributions.

    ```python
    p = softmax(logits)
    loss = mean_i(-sum_c p[i, c] * log(p[i, c]))
    ```

    Minimising it on unlabelled target rows pushes the decision boundary
    away from dense target regions (entropy minimisation). Computed in
    float32 with `log_softmax`, so it is finite for any logits.

    Args:
        logits: Tensor `(n, num_classes)` of class logits.

    Returns:
        Scalar float32 tensor (nats).

    Reference:
        - [Grandvalet & Bengio, 2004](https://papers.nips.cc/paper/2740-semi-supervised-learning-by-entropy-minimization)
    """
    return ops.mean(_row_entropy(logits))


@keras.saving.register_keras_serializable(package="keras_transfer")
class EntropyLoss(keras.losses.Loss):
    """Entropy minimisation on the target rows of a mixed batch, for `compile`.

    `y_true` is the domain indicator of each row (0 source, 1 target), as
    `keras_transfer.datasets.paired_dataset` yields it under `"domain"`, and
    `y_pred` the class logits of the whole batch. The loss is the mean
    entropy of `softmax(logits)` over the target rows only (see
    `keras_transfer.losses.entropy_loss`); a batch without target rows
    gives 0.

    ```python
    loss = sum_i t[i] * H(softmax(logits[i])) / sum_i t[i]   # t: target rows
    ```

    Args:
        name: Optional name. Defaults to `"entropy_loss"`.
        **kwargs: `reduction` and `dtype`, as for `keras.losses.Loss`.

    Example:

    ```python
    domain = np.array([0.0, 0.0, 1.0, 1.0])   # 2 source rows, 2 target rows
    logits = np.array([[4.0, 0.0], [0.0, 4.0], [0.0, 0.0], [9.0, 0.0]])
    loss = keras_transfer.losses.EntropyLoss()
    loss(domain, logits)   # ~0.347 = (log(2) + ~0) / 2, target rows only
    # In `compile`, on the "domain" output (the logits again):
    # loss={"label": ..., "domain": keras_transfer.losses.EntropyLoss()}
    ```

    Reference:
        - [Grandvalet & Bengio, 2004](https://papers.nips.cc/paper/2740-semi-supervised-learning-by-entropy-minimization)
    """

    def __init__(self, name="entropy_loss", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        logits, _, target = domain_weights(y_true, y_pred)
        count = ops.sum(target)
        return ops.sum(_row_entropy(logits) * target) / ops.maximum(count, 1.0)
