import keras
import numpy as np
import pytest

from keras_transfer.losses import SparseCategoricalCrossentropy
from keras_transfer.testing import TestCase


def log_softmax(logits, axis=-1):
    shifted = logits - logits.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def _formula(labels, logits, smoothing):
    """Cross-entropy against `(1 - s) * one_hot + s / K`, written out in numpy."""
    num_classes = logits.shape[-1]
    targets = np.eye(num_classes)[labels] * (1 - smoothing) + smoothing / num_classes
    return -(targets * log_softmax(logits.astype("float64"), axis=-1)).sum(-1)


class TestSparseCategoricalCrossentropy(TestCase):
    @pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.4])
    def test_loss_matches_the_label_smoothing_formula(self, smoothing):
        logits = np.random.normal(0, 3, (64, 5)).astype("float32")
        labels = np.random.randint(0, 5, 64)
        loss = SparseCategoricalCrossentropy(from_logits=True, label_smoothing=smoothing)
        self.assertAllClose(loss(labels, logits), _formula(labels, logits, smoothing).mean(), rtol=1e-5)
        # Probabilities in, same value; labels of shape (batch, 1) too.
        probabilities = SparseCategoricalCrossentropy(label_smoothing=smoothing)
        self.assertAllClose(
            probabilities(labels[:, None], keras.ops.softmax(logits)),
            _formula(labels, logits, smoothing).mean(),
            rtol=1e-4,
        )

    def test_smoothing_changes_the_loss_by_the_formula(self):
        """loss(s) - loss(0) = s * (mean(-log p) - (-log p_true)), per example."""
        logits = np.random.normal(0, 2, (32, 4)).astype("float32")
        labels = np.random.randint(0, 4, 32)
        plain = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)
        smoothed = SparseCategoricalCrossentropy(
            from_logits=True, label_smoothing=0.2, reduction=None
        )
        log_p = log_softmax(logits.astype("float64"), axis=-1)
        expected = 0.2 * (-log_p.mean(-1) + log_p[np.arange(32), labels])
        self.assertAllClose(
            keras.ops.subtract(smoothed(labels, logits), plain(labels, logits)),
            expected,
            atol=1e-5,
        )

    def test_is_a_keras_sparse_loss_and_serializes(self):
        loss = SparseCategoricalCrossentropy(from_logits=True, label_smoothing=0.1)
        assert isinstance(loss, keras.losses.SparseCategoricalCrossentropy)
        revived = self.run_serialization_test(loss)
        assert revived.label_smoothing == 0.1 and revived.from_logits

    @pytest.mark.parametrize("smoothing", [-0.1, 1.0, 1.5, float("nan")])
    def test_invalid_label_smoothing(self, smoothing):
        with pytest.raises(ValueError, match=f">= 0 and < 1. Received: label_smoothing={smoothing}"):
            SparseCategoricalCrossentropy(label_smoothing=smoothing)
