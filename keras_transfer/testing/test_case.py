"""Reusable checks for layers, serializable objects and saved models.

Shaped after `keras.src.testing.TestCase.run_layer_test`, but for pytest:
subclass `TestCase` in a test module (it has no tests of its own) or call the
helpers on an instance.
"""

import json
import os
import tempfile

import keras
import numpy as np

__all__ = ["TestCase"]


def _to_numpy(x):
    return keras.ops.convert_to_numpy(x)


class TestCase:
    """Helpers for keras-transfer tests, usable on every backend."""

    def assertAllClose(self, actual, expected, atol=1e-6, rtol=1e-6, msg=""):
        np.testing.assert_allclose(
            _to_numpy(actual), _to_numpy(expected), atol=atol, rtol=rtol,
            err_msg=msg,
        )

    def run_serialization_test(self, obj):
        """Checks a config round trip through JSON and `from_config`.

        Returns the revived object so callers can check its behaviour.
        """
        config = keras.saving.serialize_keras_object(obj)
        revived = keras.saving.deserialize_keras_object(
            json.loads(json.dumps(config))
        )
        assert type(revived) is type(obj), (type(revived), type(obj))
        assert _comparable(keras.saving.serialize_keras_object(revived)) == (
            _comparable(config)
        ), "Config changed after a serialization round trip."
        return revived

    def run_saving_test(self, model, input_data, atol=1e-6):
        """Saves `model` as `.keras`, reloads it with `safe_mode=True` and
        checks that predictions match. Returns the reloaded model."""
        expected = _to_numpy(model(input_data, training=False))
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.keras")
            model.save(path)
            revived = keras.saving.load_model(path, safe_mode=True)
        self.assertAllClose(
            revived(input_data, training=False), expected, atol=atol, rtol=0,
            msg="Predictions changed after a .keras save/load round trip.",
        )
        return revived

    def run_layer_test(
        self,
        layer_cls,
        init_kwargs,
        input_data,
        expected_output_shape=None,
        expected_output_dtype=None,
        expected_num_trainable_weights=None,
        expected_num_non_trainable_weights=None,
        run_training_check=True,
        run_mixed_precision_check=True,
        run_saving_check=True,
    ):
        """Builds, calls, serializes, trains and saves a layer.

        Args:
            layer_cls: The layer class.
            init_kwargs: Dict of constructor arguments.
            input_data: A float array the layer is called on.
            expected_output_shape: Tuple or `None` (not checked).
            expected_output_dtype: Str or `None` (not checked).
            expected_num_trainable_weights: Int or `None` (not checked).
            expected_num_non_trainable_weights: Int or `None`.
            run_training_check: Bool. Fit a model holding the layer for one
                step and check the loss is finite.
            run_mixed_precision_check: Bool. Call the layer under the
                `"mixed_bfloat16"` policy and check outputs are finite.
            run_saving_check: Bool. `.keras` round trip of a model holding
                the layer.

        Returns:
            The output of the layer on `input_data`.
        """
        layer = layer_cls(**init_kwargs)
        output = layer(input_data)
        if expected_output_shape is not None:
            assert tuple(output.shape) == tuple(expected_output_shape), (
                f"Expected output shape {expected_output_shape}, "
                f"got {tuple(output.shape)}."
            )
        if expected_output_dtype is not None:
            assert keras.backend.standardize_dtype(output.dtype) == (
                expected_output_dtype
            )
        if expected_num_trainable_weights is not None:
            assert len(layer.trainable_weights) == (
                expected_num_trainable_weights
            )
        if expected_num_non_trainable_weights is not None:
            assert len(layer.non_trainable_weights) == (
                expected_num_non_trainable_weights
            )

        revived = self.run_serialization_test(layer)
        assert revived.get_config() == layer.get_config()

        input_data = _to_numpy(input_data)
        if run_training_check or run_saving_check:
            inputs = keras.Input(shape=input_data.shape[1:])
            model = keras.Model(inputs, layer_cls(**init_kwargs)(inputs))
        if run_training_check:
            target = np.zeros_like(_to_numpy(model(input_data)))
            model.compile(optimizer="sgd", loss="mse")
            history = model.fit(
                input_data, target, batch_size=len(input_data), epochs=1,
                verbose=0,
            )
            assert np.isfinite(history.history["loss"][0])
        if run_saving_check:
            self.run_saving_test(model, input_data)
        if run_mixed_precision_check:
            mixed = layer_cls(**{**init_kwargs, "dtype": "mixed_bfloat16"})
            mixed_output = _to_numpy(
                keras.ops.cast(mixed(input_data), "float32")
            )
            assert np.all(np.isfinite(mixed_output))
        return output


def _comparable(config):
    """Drops the per-instance layer names from a serialized config."""
    if isinstance(config, dict):
        return {
            key: _comparable(value)
            for key, value in config.items()
            if key != "name"
        }
    if isinstance(config, (list, tuple)):
        return [_comparable(value) for value in config]
    return config
