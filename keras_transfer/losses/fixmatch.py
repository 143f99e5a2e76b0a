import keras
from keras import ops

from keras_transfer._validation import check_number
from keras_transfer.losses._domain_masks import domain_weights


def _masked_fixmatch(weak_logits, strong_logits, rows, threshold):
    """Confident pseudo-label cross-entropy over `rows` (0/1 float `(n,)`)."""
    weak = ops.stop_gradient(ops.cast(weak_logits, "float32"))
    strong = ops.cast(strong_logits, "float32")
    probabilities = ops.softmax(weak, axis=-1)
    confident = ops.cast(ops.max(probabilities, axis=-1) >= threshold, "float32")
    pseudo_labels = ops.one_hot(
        ops.argmax(probabilities, axis=-1), ops.shape(strong)[-1]
    )
    cross_entropy = -ops.sum(pseudo_labels * ops.log_softmax(strong, axis=-1), axis=-1)
    # Divided by all rows taken part, confident or not, as in FixMatch.
    return ops.sum(cross_entropy * confident * rows) / ops.maximum(ops.sum(rows), 1.0)


def _check_threshold(threshold):
    return float(check_number("threshold", threshold, minimum=0, maximum=1))


@keras.saving.register_keras_serializable(package="keras_transfer")
def fixmatch_loss(weak_logits, strong_logits, threshold=0.95):
    """Confidence-thresholded pseudo-labels with consistency under augmentation.

    ```python
    p = softmax(stop_gradient(weak_logits))           # no gradient through the label
    mask = max(p, axis=-1) >= threshold
    loss = sum(mask * CE(argmax(p), strong_logits)) / n
    ```

    The prediction on a weakly augmented view (the pseudo-label) supervises
    the prediction on a strongly augmented view of the same rows, where it
    is confident. `stop_gradient` keeps the pseudo-label a constant target,
    so the loss trains invariance to the augmentation, not agreement by
    moving both views. The mean is over all `n` rows (unconfident rows
    count as 0), as in FixMatch.

    Args:
        weak_logits: Tensor `(n, num_classes)`: logits of the weak view.
        strong_logits: Tensor `(n, num_classes)`: logits of the strong view.
        threshold: Float in `[0, 1]`. Confidence a pseudo-label needs.
            Defaults to `0.95` (the paper's value).

    Returns:
        Scalar float32 tensor.

    Reference:
        - [Sohn et al., 2020](https://arxiv.org/abs/2001.07685)
    """
    threshold = _check_threshold(threshold)
    rows = ops.ones((ops.shape(weak_logits)[0],))
    return _masked_fixmatch(weak_logits, strong_logits, rows, threshold)


@keras.saving.register_keras_serializable(package="keras_transfer")
class FixMatchLoss(keras.losses.Loss):
    """FixMatch pseudo-label consistency on the target rows, for `compile`.

    `y_true` is the domain indicator of each row (0 source, 1 target), as
    `keras_transfer.datasets.paired_dataset` yields it under `"domain"`;
    `y_pred` is `concatenate([weak_logits, strong_logits], axis=-1)`, the
    logits of a weak and a strong view of the same rows side by side (as
    `keras_transfer.adaptation.build_fixmatch` outputs them). The loss is
    `keras_transfer.losses.fixmatch_loss` over the target rows only.

    Args:
        threshold: Float in `[0, 1]`. Confidence a pseudo-label needs.
            Defaults to `0.95`.
        name: Optional name. Defaults to `"fixmatch_loss"`.
        **kwargs: `reduction` and `dtype`, as for `keras.losses.Loss`.

    Example:

    ```python
    domain = np.array([0.0, 0.0, 1.0, 1.0])   # 2 source rows, 2 target rows
    weak = np.array([[5.0, 0.0], [5.0, 0.0], [5.0, 0.0], [0.0, 0.0]])
    strong = np.array([[0.0, 5.0], [0.0, 5.0], [0.0, 5.0], [0.0, 5.0]])
    loss = keras_transfer.losses.FixMatchLoss(threshold=0.95)
    # Row 2 is confident (class 0) but its strong view says class 1: CE ~5.0;
    # row 3 is not confident: 0. Mean over the target rows: ~2.5.
    loss(domain, np.concatenate([weak, strong], axis=-1))
    ```

    Reference:
        - [Sohn et al., 2020](https://arxiv.org/abs/2001.07685)
    """

    def __init__(self, threshold=0.95, name="fixmatch_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.threshold = _check_threshold(threshold)

    def call(self, y_true, y_pred):
        views, _, target = domain_weights(y_true, y_pred)
        weak, strong = ops.split(views, 2, axis=-1)
        return _masked_fixmatch(weak, strong, target, self.threshold)

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}
