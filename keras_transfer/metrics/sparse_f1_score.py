import keras
from keras import ops

from keras_transfer._validation import check_number


@keras.saving.register_keras_serializable(package="keras_transfer")
class SparseF1Score(keras.metrics.F1Score):
    """Keras' `F1Score` for integer labels and per-class scores.

    `keras.metrics.F1Score` expects one-hot labels, and with
    `threshold=None` it marks every class tied at the maximum (or none when
    the maximum is 0, e.g. a zero logit). This subclass takes integer labels
    `(batch,)` and predicts exactly one class per example, as
    `argmax(y_pred)` does (logits and probabilities alike), then counts true
    and false positives per class as `F1Score` does. A single score column
    (a binary head) predicts class 1 where `y_pred > threshold`.

    With `average="macro"` the mean runs over the classes that occur in the
    labels or the predictions, as scikit-learn's
    `f1_score(y_true, y_pred, average="macro")` does (`F1Score` would count
    a class seen nowhere as an F1 of 0):

    ```python
    f1[c] = 2 * tp[c] / (2 * tp[c] + fp[c] + fn[c])
    macro_f1 = mean(f1[c] for c if tp[c] + fp[c] + fn[c] > 0)
    ```

    Args:
        average: `"macro"`, `"micro"`, `"weighted"` or `None` (one score
            per class), as for `keras.metrics.F1Score`. Defaults to
            `"macro"`.
        threshold: Float. Only for a single score column: the score above
            which class 1 is predicted (`0.0` for a logit, `0.5` for a
            probability). Defaults to `0.5`.
        name: String. Defaults to `"f1_score"`.
        dtype: The dtype of the metric's computations. Defaults to `None`.

    Example:

    ```python
    metric = keras_transfer.metrics.SparseF1Score()
    labels = np.array([0, 1, 2, 2])
    logits = np.array([[2.0, 0, 0], [0, 2, 0], [0, 2, 0], [0, 0, 2]])
    metric.update_state(labels, logits)
    print(float(metric.result()))  # 0.7778 (F1 per class: 1, 0.667, 0.667)

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras_transfer.metrics.SparseF1Score(name="macro_f1")],
    )
    model.fit(np.random.rand(8, 4), labels.repeat(2), epochs=1, verbose=0)
    ```
    """

    def __init__(self, average="macro", threshold=0.5, name="f1_score", dtype=None):
        super().__init__(average=average, threshold=0.5, name=name, dtype=dtype)
        self.score_threshold = float(check_number("threshold", threshold))

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.reshape(ops.convert_to_tensor(y_true), (-1,))
        if y_pred.shape[-1] == 1:
            predicted = ops.reshape(y_pred > self.score_threshold, (-1,))
            num_classes = 2
        else:
            predicted = ops.argmax(y_pred, axis=-1)
            num_classes = y_pred.shape[-1]
        super().update_state(
            ops.one_hot(ops.cast(y_true, "int32"), num_classes, dtype=self.dtype),
            ops.one_hot(ops.cast(predicted, "int32"), num_classes, dtype=self.dtype),
            sample_weight,
        )

    def result(self):
        if self.average != "macro":
            return super().result()
        true_positives = self.true_positives
        errors = self.false_positives + self.false_negatives
        seen = ops.cast(true_positives + errors > 0, self.dtype)
        per_class = 2 * true_positives / ops.maximum(2 * true_positives + errors, 1e-12)
        return ops.sum(per_class * seen) / ops.maximum(ops.sum(seen), 1.0)

    def get_config(self):
        config = super().get_config()
        return {
            "average": config["average"],
            "threshold": self.score_threshold,
            "name": config["name"],
            "dtype": config["dtype"],
        }
