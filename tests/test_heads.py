import re

import keras
import numpy as np
import pytest

from keras_transfer.heads import ClassificationHead
from keras_transfer.testing import TestCase


class TestClassificationHead(TestCase):
    def test_layer_feature_map_with_mlp(self):
        self.run_layer_test(
            ClassificationHead,
            {"num_classes": 5, "hidden_units": (8, 4), "dropout": 0.5},
            np.random.rand(3, 4, 4, 6).astype("float32"),
            expected_output_shape=(3, 5),
            expected_output_dtype="float32",
            expected_num_trainable_weights=6,
        )

    @pytest.mark.parametrize(
        "pooling, expected_in", [("avg", 6), ("max", 6), ("flatten", 96)]
    )
    def test_pooling_sets_classifier_fan_in(self, pooling, expected_in):
        head = ClassificationHead(3, pooling=pooling)
        head(np.ones((2, 4, 4, 6), "float32"))
        assert tuple(head.classifier.kernel.shape) == (expected_in, 3)

    def test_avg_pooling_values(self):
        head = ClassificationHead(2, pooling="avg")
        x = np.random.rand(2, 3, 3, 4).astype("float32")
        out = keras.ops.convert_to_numpy(head(x))
        kernel = keras.ops.convert_to_numpy(head.classifier.kernel)
        bias = keras.ops.convert_to_numpy(head.classifier.bias)
        np.testing.assert_allclose(
            out, x.mean(axis=(1, 2)) @ kernel + bias, rtol=1e-5, atol=1e-6
        )

    def test_initializers(self):
        head = ClassificationHead(4, pooling=None, hidden_units=(16,))
        head.build((None, 8))
        hidden_init = head.hidden_layers[0].kernel_initializer
        assert isinstance(hidden_init, keras.initializers.HeNormal)
        assert head.hidden_layers[0].activation is keras.activations.relu
        assert isinstance(
            head.classifier.kernel_initializer, keras.initializers.GlorotUniform
        )
        biases = [head.hidden_layers[0].bias, head.classifier.bias]
        for bias in biases:
            assert not np.any(keras.ops.convert_to_numpy(bias))

    @pytest.mark.parametrize(
        "num_classes, activation, loss_cls, from_logits",
        [
            (5, None, keras.losses.SparseCategoricalCrossentropy, True),
            (5, "softmax", keras.losses.SparseCategoricalCrossentropy, False),
            (1, None, keras.losses.BinaryCrossentropy, True),
            (1, "sigmoid", keras.losses.BinaryCrossentropy, False),
            (3, "sigmoid", keras.losses.BinaryCrossentropy, False),
        ],
    )
    def test_loss_matches_outputs(
        self, num_classes, activation, loss_cls, from_logits
    ):
        head = ClassificationHead(
            num_classes, pooling=None, activation=activation
        )
        assert head.from_logits is from_logits
        loss = head.loss()
        assert isinstance(loss, loss_cls)
        assert loss.get_config()["from_logits"] is from_logits

    def test_logits_and_softmax_heads_give_same_loss(self):
        x = np.random.rand(4, 6).astype("float32")
        y = np.array([0, 2, 1, 2])
        logits_head = ClassificationHead(3, pooling=None)
        softmax_head = ClassificationHead(3, pooling=None, activation="softmax")
        logits_head.build((None, 6))
        softmax_head.build((None, 6))
        softmax_head.set_weights(logits_head.get_weights())
        expected = logits_head.loss()(y, logits_head(x))
        actual = softmax_head.loss()(y, softmax_head(x))
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(actual),
            keras.ops.convert_to_numpy(expected),
            rtol=1e-5,
        )

    def test_binary_metric_threshold_follows_logits(self):
        logits_metric = ClassificationHead(1, pooling=None).default_metrics()[0]
        prob_metric = ClassificationHead(
            1, pooling=None, activation="sigmoid"
        ).default_metrics()[0]
        assert logits_metric.threshold == 0.0
        assert prob_metric.threshold == 0.5

    def test_mixed_precision_keeps_float32_logits(self):
        head = ClassificationHead(
            3, hidden_units=(8,), dtype="mixed_float16"
        )
        out = head(np.random.rand(2, 4, 4, 6).astype("float32"))
        assert keras.backend.standardize_dtype(out.dtype) == "float32"
        assert head.hidden_layers[0].compute_dtype == "float16"
        assert head.classifier.compute_dtype == "float32"

    def test_serialization_round_trip_keeps_arguments(self):
        head = ClassificationHead(
            7, pooling="max", hidden_units=(5,), dropout=0.25,
            activation="sigmoid",
        )
        revived = self.run_serialization_test(head)
        assert revived.hidden_units == (5,)
        assert revived.dropout == 0.25
        assert revived.activation == "sigmoid"

    @pytest.mark.parametrize("rate", [0.0, 0.3, 0.5])
    @pytest.mark.parametrize("hidden_layers", [0, 1, 2])
    def test_dropout_zeroes_and_scales_as_declared(self, rate, hidden_layers):
        """One dropout per hidden layer (or one before a linear classifier).

        Every Dense layer is the identity on positive inputs, so the logits
        are the features with each dropout's mask applied: a fraction
        `1 - (1 - rate) ** d` is zero and the survivors are scaled by
        `(1 - rate) ** -d`, with `d = max(hidden_layers, 1)` dropouts.
        """
        width, batch = 32, 4096
        head = ClassificationHead(
            width, pooling=None, hidden_units=(width,) * hidden_layers, dropout=rate
        )
        head.build((None, width))
        for dense in head.hidden_layers + [head.classifier]:
            dense.set_weights([np.eye(width, dtype="float32"), np.zeros(width, "float32")])
        x = np.random.uniform(1.0, 2.0, (batch, width)).astype("float32")
        out = keras.ops.convert_to_numpy(head(x, training=True))
        dropouts = max(hidden_layers, 1)
        zeroed = out == 0
        np.testing.assert_allclose(zeroed.mean(), 1 - (1 - rate) ** dropouts, atol=0.01)
        np.testing.assert_allclose(
            out[~zeroed] / x[~zeroed], (1 - rate) ** -dropouts, rtol=1e-5
        )
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(head(x, training=False)), x, rtol=1e-6
        )

    def test_kernel_regularizer_penalises_every_dense_kernel(self):
        head = ClassificationHead(
            3, pooling=None, hidden_units=(4,),
            kernel_regularizer=keras.regularizers.L1L2(l1=0.01, l2=0.1),
        )
        head.build((None, 5))
        kernels = [
            keras.ops.convert_to_numpy(layer.kernel)
            for layer in (head.hidden_layers[0], head.classifier)
        ]
        expected = sum(0.01 * np.abs(k).sum() + 0.1 * np.square(k).sum() for k in kernels)
        head(np.ones((2, 5), "float32"))
        penalty = sum(float(keras.ops.convert_to_numpy(loss)) for loss in head.losses)
        np.testing.assert_allclose(penalty, expected, rtol=1e-5)
        revived = self.run_serialization_test(head)
        assert revived.kernel_regularizer.get_config() == {"l1": 0.01, "l2": 0.1}

    @pytest.mark.parametrize(
        "kwargs, message",
        [
            ({"num_classes": 0}, "num_classes=0"),
            ({"num_classes": 2.0}, "num_classes=2.0"),
            ({"num_classes": 2, "dropout": 1.0}, "dropout=1.0"),
            ({"num_classes": 2, "dropout": -0.1}, "dropout=-0.1"),
            ({"num_classes": 2, "pooling": "mean"}, "pooling='mean'"),
            ({"num_classes": 2, "hidden_units": (0,)}, "hidden_units=(0,)"),
            ({"num_classes": 2, "activation": "relu"}, "activation='relu'"),
            ({"num_classes": 1, "activation": "softmax"}, "num_classes=1"),
        ],
    )
    def test_invalid_arguments(self, kwargs, message):
        with pytest.raises(ValueError, match=re.escape(message)):
            ClassificationHead(**kwargs)
