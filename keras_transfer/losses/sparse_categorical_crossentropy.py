import keras
from keras import ops

from keras_transfer._validation import check_number


@keras.saving.register_keras_serializable(package="keras_transfer")
class SparseCategoricalCrossentropy(keras.losses.SparseCategoricalCrossentropy):
    """Keras' `SparseCategoricalCrossentropy` with `label_smoothing`.

    Keras smooths one-hot labels in `CategoricalCrossentropy` but its sparse
    loss has no `label_smoothing`. This subclass takes integer labels, one-hot
    encodes them to the predictions' number of classes `K` and computes
    Keras' `categorical_crossentropy` with the smoothing:

    ```python
    target = (1 - label_smoothing) * one_hot(y, K) + label_smoothing / K
    loss = -sum(target * log_softmax(logits))    # from_logits=True
    ```

    With `label_smoothing=0` the values equal Keras' sparse loss.

    Args:
        from_logits: Bool. Whether `y_pred` are logits (else probabilities).
            Defaults to `False`.
        label_smoothing: Float in `[0, 1)`. Mass moved from the true class
            to a uniform distribution over the `K` classes. Defaults to
            `0.0`.
        reduction: As for `keras.losses.Loss`. Defaults to
            `"sum_over_batch_size"`.
        name: String. Defaults to `"sparse_categorical_crossentropy"`.
        dtype: The dtype of the loss's computations. Defaults to `None`.

    Example:

    ```python
    loss = keras_transfer.losses.SparseCategoricalCrossentropy(
        from_logits=True, label_smoothing=0.1
    )
    y_true = np.array([0, 1])
    logits = np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    loss(y_true, logits)   # ~0.736 (~0.669 without smoothing)

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(optimizer="adam", loss=loss)
    ```

    Reference:
        - [Szegedy et al., 2016](https://arxiv.org/abs/1512.00567)
    """

    def __init__(
        self,
        from_logits=False,
        label_smoothing=0.0,
        reduction="sum_over_batch_size",
        name="sparse_categorical_crossentropy",
        dtype=None,
    ):
        super().__init__(
            from_logits=from_logits, reduction=reduction, name=name, dtype=dtype
        )
        self.label_smoothing = float(
            check_number("label_smoothing", label_smoothing, minimum=0, below=1)
        )

    def call(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.convert_to_tensor(y_true)
        if len(y_true.shape) == len(y_pred.shape):
            y_true = ops.squeeze(y_true, axis=-1)
        one_hot = ops.one_hot(
            ops.cast(y_true, "int32"), y_pred.shape[-1], dtype=y_pred.dtype
        )
        return keras.losses.categorical_crossentropy(
            one_hot,
            y_pred,
            from_logits=self.from_logits,
            label_smoothing=self.label_smoothing,
        )

    def get_config(self):
        config = super().get_config()
        config.pop("ignore_class", None)
        return {**config, "label_smoothing": self.label_smoothing}
