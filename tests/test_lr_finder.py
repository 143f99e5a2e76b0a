import keras
import numpy as np
import pytest

from keras_transfer.lr_finder import lr_find


def _regression_data(n=256):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5], [3.0]], "float32")).astype(
        "float32"
    )
    return x, y


def _model(optimizer="adam"):
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.BatchNormalization(),
            # Seeded: unseeded dropout on torch draws from torch's global
            # RNG, which a first `fit` consumes differently.
            keras.layers.Dropout(0.1, seed=1),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer=optimizer, loss="mse", metrics=["mae"])
    return model


def _state(model):
    variables = (
        list(model.variables)
        + list(model.optimizer.variables)
        + list(model.metrics_variables)
    )
    return [np.array(keras.ops.convert_to_numpy(v)) for v in variables]


def _offset_loss(y_true, y_pred):
    return keras.ops.mean(y_pred) + 100.0


def test_learning_rate_follows_the_sweep_in_graph():
    # loss = w + 100 with gradient 1: each step lowers w by exactly the
    # learning rate, so the recorded losses reveal every rate used.
    model = keras.Sequential(
        [
            keras.Input((1,)),
            keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros"),
        ]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss=_offset_loss)
    x = np.ones((8, 1), "float32")
    result = lr_find(
        model, (x, x), min_lr=1e-3, max_lr=1.0, num_steps=4, smoothing=0.0
    )
    expected_lrs = np.geomspace(1e-3, 1.0, 4)
    np.testing.assert_allclose(result.lrs, expected_lrs, rtol=1e-6)
    expected_losses = 100.0 - np.concatenate(
        [[0.0], np.cumsum(expected_lrs)[:-1]]
    )
    np.testing.assert_allclose(result.raw_losses, expected_losses, rtol=1e-6)
    np.testing.assert_allclose(result.losses, result.raw_losses)
    assert not result.diverged
    # Restored: the kernel is back to zero and the rate to 0.5.
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(model.weights[0]), 0
    )
    assert float(model.optimizer.learning_rate) == 0.5
    assert int(model.optimizer.iterations) == 0


def test_sweep_diverges_suggests_and_restores_bit_identical(tmp_path):
    x, y = _regression_data()
    model = _model(keras.optimizers.Adam(1e-3))
    model.fit(x, y, batch_size=64, epochs=1, verbose=0)
    before = _state(model)
    path = tmp_path / "lr.png"
    result = lr_find(
        model,
        (x, y),
        min_lr=1e-5,
        max_lr=100.0,
        num_steps=60,
        plot_path=str(path),
    )
    after = _state(model)
    assert len(after) == len(before)
    for a, b in zip(after, before):
        np.testing.assert_array_equal(a, b)
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-3)
    assert result.diverged
    assert 2 < len(result.lrs) < 60
    np.testing.assert_allclose(
        result.lrs, np.geomspace(1e-5, 100.0, 60)[: len(result.lrs)], rtol=1e-6
    )
    assert np.all(np.isfinite(result.losses))
    assert 1e-5 <= result.suggestion <= 100.0
    lowest = 6 + np.argmin(result.losses[6:])  # the first tenth is skipped
    assert result.suggestion <= result.lrs[lowest]
    assert result.min_loss_lr == pytest.approx(result.lrs[lowest] / 10)
    assert path.stat().st_size > 1000
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_training_after_lr_find_equals_training_without():
    x, y = _regression_data()
    keras.utils.set_random_seed(3)
    probed = _model()
    keras.utils.set_random_seed(3)
    plain = _model()
    probed.set_weights(plain.get_weights())
    lr_find(probed, (x, y), min_lr=1e-4, max_lr=1.0, num_steps=5)
    keras.utils.set_random_seed(5)
    probed.fit(x, y, batch_size=64, epochs=1, verbose=0, shuffle=False)
    keras.utils.set_random_seed(5)
    plain.fit(x, y, batch_size=64, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(probed.get_weights(), plain.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_schedule_optimizer_and_iterable_data():
    schedule = keras.optimizers.schedules.CosineDecay(1e-3, decay_steps=100)
    model = _model(keras.optimizers.Adam(schedule))
    x, y = _regression_data(32)
    before = _state(model)
    batches = [(x[i : i + 8], y[i : i + 8]) for i in range(0, 32, 8)]
    result = lr_find(model, batches, min_lr=1e-4, max_lr=1e-1, num_steps=10)
    assert len(result.lrs) == 10  # four batches, cycled
    assert model.optimizer._learning_rate is schedule
    for a, b in zip(_state(model), before):
        np.testing.assert_array_equal(a, b)


def test_tf_data_input():
    tf = pytest.importorskip("tensorflow")
    x, y = _regression_data(32)
    model = _model()
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    result = lr_find(model, dataset, min_lr=1e-4, max_lr=1e-1, num_steps=6)
    assert len(result.lrs) == 6
    assert np.all(np.isfinite(result.raw_losses))


def test_bad_arguments_raise():
    x, y = _regression_data()
    model = _model()
    with pytest.raises(ValueError, match=r"argument `max_lr`.*max_lr=0.001"):
        lr_find(model, (x, y), min_lr=1e-2, max_lr=1e-3)
    with pytest.raises(ValueError, match=r"argument `min_lr`.*min_lr=0"):
        lr_find(model, (x, y), min_lr=0)
    with pytest.raises(ValueError, match=r"argument `num_steps`.*num_steps=1"):
        lr_find(model, (x, y), num_steps=1)
    with pytest.raises(ValueError, match=r"argument `smoothing`.*smoothing=1"):
        lr_find(model, (x, y), smoothing=1.0)
    with pytest.raises(ValueError, match=r"argument `data`"):
        lr_find(model, (x, y[:10]))
    with pytest.raises(ValueError, match=r"argument `data`.*empty"):
        lr_find(model, [])
    uncompiled = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match=r"argument `model`.*not compiled"):
        lr_find(uncompiled, (x, y))


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="plot range arithmetic is backend-independent",
)
def test_plot_range_cuts_off_the_divergence():
    """The y-range covers the descent, not losses 1000x larger after it."""
    from keras_transfer.lr_finder import LRFinderResult

    losses = np.array([2.0, 1.9, 1.5, 0.8, 0.5, 0.6, 3.0, 50.0, 2000.0])
    result = LRFinderResult(
        lrs=np.geomspace(1e-4, 10, len(losses)),
        losses=losses,
        raw_losses=losses,
        suggestion=1e-2,
        min_loss_lr=1e-3,
        diverged=True,
    )
    low, high = result.loss_limits()
    assert low < 0.5 and low > 0.3
    assert 2.0 < high < 2.5
    empty = LRFinderResult(np.array([]), np.array([]), np.array([]), None, None, False)
    assert empty.loss_limits() is None
