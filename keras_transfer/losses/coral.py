import keras
from keras import ops

from keras_transfer.losses._domain_masks import domain_weights
from keras_transfer.losses._domain_masks import stack_domains


def _weighted_covariance(features, weights):
    count = ops.sum(weights)
    mean = ops.sum(features * weights[:, None], axis=0) / ops.maximum(count, 1.0)
    centered = (features - mean) * weights[:, None]
    return ops.matmul(ops.transpose(centered), centered) / ops.maximum(
        count - 1.0, 1.0
    )


def _masked_coral(features, source_weights, target_weights):
    dim = ops.cast(ops.shape(features)[1], "float32")
    difference = _weighted_covariance(
        features, source_weights
    ) - _weighted_covariance(features, target_weights)
    loss = ops.sum(ops.square(difference)) / (4.0 * dim * dim)
    # A covariance needs two rows per domain; otherwise there is nothing to align.
    both_sides = ops.logical_and(
        ops.sum(source_weights) >= 2.0, ops.sum(target_weights) >= 2.0
    )
    return ops.where(both_sides, loss, 0.0)


@keras.saving.register_keras_serializable(package="keras_transfer")
def coral_loss(source, target):
    """CORAL distance between two feature batches.

    ```python
    loss = ||C_source - C_target||_F^2 / (4 * d^2)
    ```

    where `C` are the `d x d` feature covariances (unbiased). Computed in
    float32. Returns 0 when either batch has fewer than two rows.

    Args:
        source: Tensor `(n_s, d)` (extra axes are flattened).
        target: Tensor `(n_t, d)`.

    Returns:
        Scalar float32 tensor.

    Reference:
        - [Sun & Saenko, 2016](https://arxiv.org/abs/1607.01719)
    """
    return _masked_coral(*stack_domains(source, target))


@keras.saving.register_keras_serializable(package="keras_transfer")
class CoralLoss(keras.losses.Loss):
    """CORAL alignment loss for a mixed source/target batch, for `compile`.

    `y_true` is the domain indicator (0 source, 1 target) of each row and
    `y_pred` the features of the whole batch; the loss compares the
    covariance of the source rows with that of the target rows (see
    `keras_transfer.losses.coral_loss`). A batch with fewer than two rows
    on one side gives 0, never NaN.

    Args:
        name: Optional name. Defaults to `"coral_loss"`.
        **kwargs: `reduction` and `dtype`, as for `keras.losses.Loss`.

    Example:

    ```python
    domain = np.array([0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0])  # 4 source, 4 target
    x = np.random.default_rng(0).normal(size=(4, 3))
    loss = keras_transfer.losses.CoralLoss()
    loss(domain, np.concatenate([x, x]))       # 0.0: same covariance
    loss(domain, np.concatenate([x, 3 * x]))   # > 0: target features spread more
    # In `compile`, on the "domain" output (the features), as build_coral does:
    # loss={"label": ..., "domain": keras_transfer.losses.CoralLoss()}
    ```

    Reference:
        - [Sun & Saenko, 2016](https://arxiv.org/abs/1607.01719)
    """

    def __init__(self, name="coral_loss", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        return _masked_coral(*domain_weights(y_true, y_pred))
