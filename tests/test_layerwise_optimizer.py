"""LayerwiseOptimizer: per-group learning rates scale updates, not grads."""

import keras
import numpy as np
import pytest

from keras_transfer.optimizers import LayerwiseOptimizer
from keras_transfer.optimizers import layer_decay_groups


def _data():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(16, 4)).astype("float32")
    y = rng.normal(size=(16, 2)).astype("float32")
    return x, y


def _model(optimizer, frozen=()):
    keras.utils.set_random_seed(3)
    inputs = keras.Input((4,))
    h = keras.layers.Dense(4, activation="tanh", name="a")(inputs)
    h = keras.layers.Dense(4, activation="tanh", name="b")(h)
    outputs = keras.layers.Dense(2, name="c")(h)
    model = keras.Model(inputs, outputs)
    for name in frozen:
        model.get_layer(name).trainable = False
    model.compile(optimizer=optimizer, loss="mse")
    return model


def _weights(model):
    return {v.path: keras.ops.convert_to_numpy(v).copy() for v in model.weights}


def _train(optimizer, steps, frozen=()):
    model = _model(optimizer, frozen)
    before = _weights(model)
    x, y = _data()
    model.fit(x, y, batch_size=16, epochs=steps, shuffle=False, verbose=0)
    after = _weights(model)
    return model, {path: after[path] - before[path] for path in before}


def test_first_adam_step_moves_each_group_by_its_factor():
    _, plain = _train(keras.optimizers.Adam(0.01), steps=1)
    model, grouped = _train(
        LayerwiseOptimizer(
            keras.optimizers.Adam(0.01), groups=[("a/*", 0.0), ("b/*", 0.1)]
        ),
        steps=1,
    )
    for path, delta in grouped.items():
        factor = {"a": 0.0, "b": 0.1, "c": 1.0}[path.split("/")[0]]
        assert np.abs(plain[path]).max() > 1e-3
        # Exact up to float32 rounding of the weights (one ulp ~ 6e-8).
        np.testing.assert_allclose(
            delta, factor * plain[path], rtol=0, atol=1e-7
        )
    assert model.optimizer.factor_for("b/kernel") == 0.1


def test_later_steps_keep_per_variable_state():
    # Factor 0 keeps `a` fixed, so plain Adam with `a` frozen is the reference.
    _, plain = _train(keras.optimizers.Adam(0.01), steps=3, frozen=["a"])
    _, grouped = _train(
        LayerwiseOptimizer(keras.optimizers.Adam(0.01), groups=[("a/*", 0.0)]),
        steps=3,
    )
    np.testing.assert_array_equal(grouped["a/kernel"], 0.0)
    # Factor-1 variables follow plain Adam, step after step.
    for path in ("b/kernel", "c/kernel", "c/bias"):
        np.testing.assert_allclose(
            grouped[path], plain[path], rtol=1e-5, atol=1e-7
        )


def test_weight_decay_is_scaled_by_the_group_factor():
    _, grouped = _train(
        LayerwiseOptimizer(
            keras.optimizers.AdamW(0.01, weight_decay=0.5),
            groups=[("a/*", 0.0)],
        ),
        steps=2,
    )
    np.testing.assert_array_equal(grouped["a/kernel"], 0.0)
    assert np.abs(grouped["b/kernel"]).max() > 1e-3


def test_layer_decay_groups_decay_from_the_top():
    model = _model("adam")
    groups = layer_decay_groups(model, 0.5)
    optimizer = LayerwiseOptimizer("adam", groups)
    assert [factor for _, factor in groups] == [1.0, 0.5, 0.25]
    assert optimizer.factor_for("c/kernel") == 1.0
    assert optimizer.factor_for("b/bias") == 0.5
    assert optimizer.factor_for("a/kernel") == 0.25
    blocks = layer_decay_groups(model, 0.5, blocks=[["a", "b"], "c"])
    assert LayerwiseOptimizer("adam", blocks).factor_for("a/bias") == 0.5


def test_serializes_in_compile_config_and_keras_file(tmp_path):
    optimizer = LayerwiseOptimizer(
        keras.optimizers.Adam(0.01),
        groups=[("re:a/.*", 0.2)],
        default_factor=0.5,
    )
    model, _ = _train(optimizer, steps=1)
    clone = LayerwiseOptimizer.from_config(optimizer.get_config())
    assert clone.groups == [("re:a/.*", 0.2)]
    assert clone.default_factor == 0.5
    assert isinstance(clone.inner_optimizer, keras.optimizers.Adam)

    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded.optimizer, LayerwiseOptimizer)
    assert loaded.optimizer.factor_for("a/kernel") == 0.2
    assert loaded.optimizer.factor_for("c/kernel") == 0.5
    for got, want in zip(loaded.optimizer.variables, model.optimizer.variables):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(got), keras.ops.convert_to_numpy(want)
        )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"groups": [("a/*", -0.1)]}, "factor"),
        ({"groups": [("a/*", "big")]}, "factor"),
        ({"groups": [(3, 0.1)]}, "pattern"),
        ({"groups": ["a/*"]}, r"\(pattern, factor\) pair"),
        ({"groups": [("re:(", 0.1)]}, "regular expression"),
        ({"default_factor": -1.0}, "default_factor"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LayerwiseOptimizer("adam", **kwargs)


def test_invalid_layer_decay():
    model = _model("adam")
    with pytest.raises(ValueError, match="decay"):
        layer_decay_groups(model, 0.0)
    with pytest.raises(ValueError, match="must not overlap"):
        layer_decay_groups(model, 0.5, blocks=[["a", "b"], "b"])
    with pytest.raises(ValueError, match="blocks"):
        layer_decay_groups(model, 0.5, blocks=[])
