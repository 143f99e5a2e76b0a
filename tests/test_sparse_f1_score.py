import keras
import numpy as np
import pytest
from sklearn.metrics import f1_score

from keras_transfer.metrics import SparseF1Score
from keras_transfer.models import compile_args
from keras_transfer.testing import TestCase


def _f1(metric, labels, scores, batches=3):
    metric.reset_state()
    for part_labels, part_scores in zip(
        np.array_split(labels, batches), np.array_split(scores, batches)
    ):
        metric.update_state(part_labels, part_scores)
    return keras.ops.convert_to_numpy(metric.result())


class TestSparseF1Score(TestCase):
    @pytest.mark.parametrize("average", ["macro", "micro", "weighted"])
    def test_equals_scikit_learn_on_the_same_predictions(self, average):
        labels = np.random.randint(0, 6, 200)
        logits = np.random.normal(0, 1, (200, 6)).astype("float32")
        logits[np.arange(200), labels] += 1.0  # Better than chance, not perfect.
        expected = f1_score(labels, logits.argmax(-1), average=average)
        np.testing.assert_allclose(
            _f1(SparseF1Score(average=average), labels, logits), expected, rtol=1e-5
        )

    def test_macro_averages_over_the_classes_seen_like_scikit_learn(self):
        # Class 3 occurs neither in the labels nor in the predictions;
        # class 2 only in the predictions (F1 0).
        labels = np.array([0, 0, 1, 1, 1, 0])
        logits = np.eye(4, dtype="float32")[[0, 2, 1, 1, 0, 0]]
        expected = f1_score(labels, logits.argmax(-1), average="macro")
        assert expected == pytest.approx((0.6666667 + 0.8 + 0.0) / 3)
        np.testing.assert_allclose(_f1(SparseF1Score(), labels, logits, 2), expected, rtol=1e-5)
        # Keras' one-hot F1Score counts class 3 as an F1 of 0.
        keras_f1 = keras.metrics.F1Score(average="macro", threshold=0.5)
        keras_f1.update_state(np.eye(4)[labels], logits)
        assert float(keras.ops.convert_to_numpy(keras_f1.result())) < expected - 0.1

    def test_ties_and_zero_logits_predict_one_class_as_argmax_does(self):
        labels = np.array([0, 1, 2, 1])
        logits = np.zeros((4, 3), "float32")  # argmax: class 0 everywhere.
        expected = f1_score(labels, logits.argmax(-1), average="macro")
        np.testing.assert_allclose(_f1(SparseF1Score(), labels, logits, 1), expected, rtol=1e-5)

    @pytest.mark.parametrize("threshold, scale", [(0.0, "logits"), (0.5, "probabilities")])
    def test_binary_head_single_column(self, threshold, scale):
        labels = np.random.randint(0, 2, 100)
        logits = np.random.normal(0, 1, (100, 1)).astype("float32") + (labels[:, None] - 0.5)
        scores = logits if scale == "logits" else 1 / (1 + np.exp(-logits))
        expected = f1_score(labels, (logits[:, 0] > 0).astype(int), average="macro")
        np.testing.assert_allclose(
            _f1(SparseF1Score(threshold=threshold), labels, scores), expected, rtol=1e-5
        )

    def test_compiled_metric_equals_scikit_learn_on_the_model_predictions(self):
        """`compile_args`' macro_f1, as `fit`/`evaluate` compute it in graph."""
        x = np.random.normal(0, 1, (96, 8)).astype("float32")
        labels = (x[:, :4].argmax(-1) + (x[:, 4] > 1)) % 5
        inputs = keras.Input((8,))
        model = keras.Model(inputs, keras.layers.Dense(5)(inputs))
        model.compile(**compile_args(keras.optimizers.Adam(0.05)))
        model.fit(x, labels, batch_size=32, epochs=3, verbose=0)
        scores = model.evaluate(x, labels, batch_size=32, return_dict=True, verbose=0)
        predicted = model.predict(x, verbose=0).argmax(-1)
        np.testing.assert_allclose(
            scores["macro_f1"], f1_score(labels, predicted, average="macro"), rtol=1e-5
        )
        np.testing.assert_allclose(scores["accuracy"], np.mean(predicted == labels), rtol=1e-6)

    def test_serialization(self):
        revived = self.run_serialization_test(SparseF1Score(average="micro", threshold=0.0, name="f"))
        assert (revived.average, revived.score_threshold, revived.name) == ("micro", 0.0, "f")
