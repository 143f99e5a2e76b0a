import keras
import numpy as np
import pytest
from keras import ops

from keras_transfer.layers import GradientReversal
from keras_transfer.schedules import DANNLambda


def _grad_of_weighted_sum(layer, x, w):
    """d/dx sum(w * layer(x)) on the active backend."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return np.asarray(
            jax.grad(lambda v: (layer(v) * w).sum())(x.astype("float32"))
        )
    if backend == "tensorflow":
        import tensorflow as tf

        v = tf.Variable(x)
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(v) * w)
        return tape.gradient(loss, v).numpy()
    import torch

    v = torch.tensor(x, requires_grad=True)
    (layer(v) * torch.tensor(w)).sum().backward()
    return v.grad.numpy()


@pytest.mark.parametrize("hp_lambda", [0.0, 0.37, 2.0])
def test_forward_is_identity_and_gradient_is_reversed(hp_lambda):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 3)).astype("float32")
    w = rng.normal(size=(4, 3)).astype("float32")
    layer = GradientReversal(hp_lambda)
    np.testing.assert_array_equal(ops.convert_to_numpy(layer(x)), x)
    grad = _grad_of_weighted_sum(layer, x, w)
    np.testing.assert_array_equal(grad, np.float32(-hp_lambda) * w)


def test_gradient_is_reversed_under_jit():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(8, 5)).astype("float32")
    y = rng.normal(size=(8, 1)).astype("float32")
    inputs = keras.Input((5,))
    dense = keras.layers.Dense(1, use_bias=False, kernel_initializer="ones")
    model = keras.Model(inputs, dense(GradientReversal(1.0)(inputs)))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", jit_compile="auto")
    before = ops.convert_to_numpy(dense.kernel).copy()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    # The reversal sits before the Dense layer: the Dense kernel itself gets
    # the ordinary gradient, so its update is the plain MSE step.
    prediction = x @ before
    grad = 2 * x.T @ (prediction - y) / len(x)
    np.testing.assert_allclose(
        ops.convert_to_numpy(dense.kernel), before - 0.1 * grad, rtol=1e-4, atol=1e-5
    )


def test_reversed_gradient_reaches_variables_upstream():
    x = np.ones((4, 2), "float32")
    scale = keras.Variable(np.ones((2,), "float32"))
    layer = GradientReversal(0.5)

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(x * scale.value))
        grad = tape.gradient(loss, scale.value).numpy()
    elif backend == "jax":
        import jax

        grad = np.asarray(jax.grad(lambda s: layer(x * s).sum())(scale.value))
    else:
        import torch

        s = torch.ones(2, requires_grad=True)
        layer(torch.tensor(x) * s).sum().backward()
        grad = s.grad.numpy()
    np.testing.assert_array_equal(grad, np.full((2,), -0.5 * 4, "float32"))


def test_scheduled_lambda_follows_ramp_inside_fit():
    ramp = DANNLambda(total_steps=10, gamma=10.0)
    inputs = keras.Input((3,))
    reversal = GradientReversal(ramp, name="grl")
    model = keras.Model(inputs, keras.layers.Dense(1)(reversal(inputs)))
    model.compile(optimizer="sgd", loss="mse")
    x = np.ones((12, 3), "float32")
    y = np.zeros((12, 1), "float32")
    np.testing.assert_allclose(ops.convert_to_numpy(reversal.current_lambda()), 0.0)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)  # 3 steps
    assert int(ops.convert_to_numpy(reversal.step)) == 3
    model.fit(x, y, batch_size=2, epochs=1, verbose=0)  # 6 more steps
    assert int(ops.convert_to_numpy(reversal.step)) == 9
    expected = 2.0 / (1.0 + np.exp(-10.0 * 9 / 10)) - 1.0
    np.testing.assert_allclose(
        ops.convert_to_numpy(reversal.current_lambda()), expected, rtol=1e-5
    )
    model.predict(x, verbose=0)
    assert int(ops.convert_to_numpy(reversal.step)) == 9


def test_step_counts_batches_within_one_fit_call():
    seen = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(int(ops.convert_to_numpy(reversal.step)))

    inputs = keras.Input((2,))
    reversal = GradientReversal(DANNLambda(total_steps=100))
    model = keras.Model(inputs, keras.layers.Dense(1)(reversal(inputs)))
    model.compile(optimizer="sgd", loss="mse")
    x = np.ones((10, 2), "float32")
    model.fit(x, x[:, :1], batch_size=2, epochs=3, verbose=0, callbacks=[Record()])
    assert seen == [5, 10, 15]


def test_mixed_precision():
    keras.config.set_dtype_policy("mixed_float16")
    try:
        layer = GradientReversal(0.25)
        x = np.arange(6, dtype="float32").reshape(2, 3)
        outputs = layer(ops.cast(x, "float16"))
        assert keras.backend.standardize_dtype(outputs.dtype) == "float16"
        np.testing.assert_array_equal(ops.convert_to_numpy(outputs), x)
        assert keras.backend.standardize_dtype(layer.step.dtype) == "int32"

        inputs = keras.Input((3,))
        model = keras.Model(inputs, keras.layers.Dense(1)(layer(inputs)))
        model.compile(optimizer="sgd", loss="mse")
        history = model.fit(x, np.zeros((2, 1)), epochs=2, verbose=0)
        assert np.isfinite(history.history["loss"]).all()
    finally:
        keras.config.set_dtype_policy("float32")


def test_serialization_round_trip(tmp_path):
    layer = GradientReversal(DANNLambda(total_steps=50, gamma=5.0), name="grl")
    restored = GradientReversal.from_config(layer.get_config())
    assert isinstance(restored.hp_lambda, DANNLambda)
    assert restored.hp_lambda.get_config() == layer.hp_lambda.get_config()
    assert GradientReversal.from_config(GradientReversal(0.3).get_config()).hp_lambda == 0.3

    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(layer(inputs)))
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.ones((4, 3)), np.zeros((4, 2)), batch_size=2, verbose=0)
    path = tmp_path / "grl.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    grl = loaded.get_layer("grl")
    assert int(ops.convert_to_numpy(grl.step)) == 2
    assert grl.hp_lambda.total_steps == 50
    np.testing.assert_allclose(
        loaded.predict(np.ones((2, 3)), verbose=0),
        model.predict(np.ones((2, 3)), verbose=0),
        rtol=1e-6,
    )


@pytest.mark.parametrize("bad", [-0.1, "1.0", None])
def test_invalid_lambda(bad):
    with pytest.raises(ValueError, match="hp_lambda"):
        GradientReversal(bad)
