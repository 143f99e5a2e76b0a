import keras
from keras import ops

from keras_transfer._validation import check_int
from keras_transfer._validation import check_number
from keras_transfer.losses._domain_masks import domain_weights
from keras_transfer.losses._domain_masks import stack_domains

_ESTIMATORS = ("biased", "unbiased")


def _validate(num_kernels, kernel_multiplier, estimator):
    check_int("num_kernels", num_kernels, minimum=1)
    check_number("kernel_multiplier", kernel_multiplier, above=0)
    if estimator not in _ESTIMATORS:
        raise ValueError(
            "Invalid value received for argument `estimator`. Expected one of "
            f"{_ESTIMATORS}. Received: estimator={estimator}"
        )


def _masked_mmd(
    features, source_weights, target_weights, num_kernels, kernel_multiplier, estimator
):
    squared_norms = ops.sum(ops.square(features), axis=1)
    distances = ops.maximum(
        squared_norms[:, None]
        + squared_norms[None, :]
        - 2.0 * ops.matmul(features, ops.transpose(features)),
        0.0,
    )
    # Bandwidths are centred on the mean pairwise distance of the valid rows
    # and kept out of the gradient, as in DAN.
    valid = source_weights + target_weights
    pair_weights = valid[:, None] * valid[None, :]
    pair_count = ops.sum(pair_weights) - ops.sum(valid)
    base = ops.sum(distances * pair_weights) / ops.maximum(pair_count, 1.0)
    base = ops.stop_gradient(ops.maximum(base, 1e-6))
    base = base / kernel_multiplier ** (num_kernels // 2)
    kernel = ops.zeros_like(distances)
    for index in range(num_kernels):
        kernel = kernel + ops.exp(-distances / (base * kernel_multiplier**index))
    kernel = kernel / num_kernels

    def mean_kernel(weights_a, weights_b):
        total = ops.sum(weights_a[:, None] * kernel * weights_b[None, :])
        count = ops.sum(weights_a) * ops.sum(weights_b)
        if estimator == "unbiased":
            # Drop the i == j terms, which are 1 and bias the estimate up.
            overlap = weights_a * weights_b
            total = total - ops.sum(overlap * ops.diagonal(kernel))
            count = count - ops.sum(overlap)
        return total / ops.maximum(count, 1.0)

    loss = (
        mean_kernel(source_weights, source_weights)
        + mean_kernel(target_weights, target_weights)
        - 2.0 * mean_kernel(source_weights, target_weights)
    )
    min_rows = 2.0 if estimator == "unbiased" else 1.0
    both_sides = ops.logical_and(
        ops.sum(source_weights) >= min_rows, ops.sum(target_weights) >= min_rows
    )
    return ops.where(both_sides, loss, 0.0)


@keras.saving.register_keras_serializable(package="keras_transfer")
def mmd_loss(
    source, target, num_kernels=5, kernel_multiplier=2.0, estimator="biased"
):
    """Multi-kernel maximum mean discrepancy between two feature batches.

    ```python
    k(x, y) = mean_i exp(-||x - y||^2 / (base * kernel_multiplier**i))
    mmd^2 = E[k(s, s')] + E[k(t, t')] - 2 E[k(s, t)]
    ```

    `base` is the mean pairwise squared distance of the joint batch divided
    by `kernel_multiplier ** (num_kernels // 2)`, so the Gaussian bandwidths
    straddle the data scale; it is not differentiated. Distances are clamped
    to `>= 0` and everything is computed in float32.

    Args:
        source: Tensor `(n_s, d)` (extra axes are flattened).
        target: Tensor `(n_t, d)`.
        num_kernels: Integer >= 1. Number of Gaussian kernels. Defaults to
            `5`.
        kernel_multiplier: Float > 0. Ratio between successive bandwidths.
            Defaults to `2.0`.
        estimator: `"biased"` (V-statistic, always >= 0) or `"unbiased"`
            (U-statistic, drops the `i == j` terms). Defaults to `"biased"`.

    Returns:
        Scalar float32 tensor; 0 when either batch is empty (or has fewer
        than two rows with the unbiased estimator).

    Reference:
        - [Long et al., 2015](https://arxiv.org/abs/1502.02791)
    """
    _validate(num_kernels, kernel_multiplier, estimator)
    return _masked_mmd(
        *stack_domains(source, target), num_kernels, kernel_multiplier, estimator
    )


@keras.saving.register_keras_serializable(package="keras_transfer")
class MMDLoss(keras.losses.Loss):
    """Multi-kernel MMD alignment loss for a mixed batch, for `compile`.

    `y_true` is the domain indicator (0 source, 1 target) of each row and
    `y_pred` the features of the whole batch; the loss is
    `keras_transfer.losses.mmd_loss` between the source rows and the target
    rows. A batch with one side empty gives 0, never NaN.

    Args:
        num_kernels: Integer >= 1. Number of Gaussian kernels. Defaults to
            `5`.
        kernel_multiplier: Float > 0. Ratio between successive bandwidths.
            Defaults to `2.0`.
        estimator: `"biased"` or `"unbiased"`. Defaults to `"biased"`.
        name: Optional name. Defaults to `"mmd_loss"`.
        **kwargs: `reduction` and `dtype`, as for `keras.losses.Loss`.

    Example:

    ```python
    domain = np.array([0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0])  # 4 source, 4 target
    x = np.random.default_rng(0).normal(size=(4, 3))
    loss = keras_transfer.losses.MMDLoss(num_kernels=5)
    loss(domain, np.concatenate([x, x]))         # 0.0: same distribution
    loss(domain, np.concatenate([x, x + 3.0]))   # > 0: target features shifted
    # In `compile`, on the "domain" output (the features), as build_mmd does.
    ```

    Reference:
        - [Long et al., 2015](https://arxiv.org/abs/1502.02791)
    """

    def __init__(
        self,
        num_kernels=5,
        kernel_multiplier=2.0,
        estimator="biased",
        name="mmd_loss",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        _validate(num_kernels, kernel_multiplier, estimator)
        self.num_kernels = num_kernels
        self.kernel_multiplier = kernel_multiplier
        self.estimator = estimator

    def call(self, y_true, y_pred):
        return _masked_mmd(
            *domain_weights(y_true, y_pred),
            self.num_kernels,
            self.kernel_multiplier,
            self.estimator,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "num_kernels": self.num_kernels,
            "kernel_multiplier": self.kernel_multiplier,
            "estimator": self.estimator,
        }
