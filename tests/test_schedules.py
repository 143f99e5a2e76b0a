import math

import keras
import numpy as np
import pytest

from keras_transfer import schedules

STEPS = [0, 1, 3, 7, 10, 29, 30, 31, 50, 99, 100, 150]


def _values(schedule, steps=STEPS, dtype="int32"):
    # One call on a vector of steps: the formulas are elementwise, and this
    # is much faster than one eager call per step.
    steps = keras.ops.convert_to_tensor(np.array(steps), dtype)
    return keras.ops.convert_to_numpy(schedule(steps)).astype("float64")


def _numpy_sgdr(step, lr0, first, t_mul, m_mul, alpha):
    """SGDR written out by walking the restart periods."""
    period, start, scale = first, 0.0, 1.0
    while step >= start + period:
        start += period
        period *= t_mul
        scale *= m_mul
    fraction = (step - start) / period
    cosine = 0.5 * scale * (1 + math.cos(math.pi * fraction))
    return lr0 * ((1 - alpha) * cosine + alpha)


def test_linear_warmup_over_sgdr_matches_formula():
    sgdr = keras.optimizers.schedules.CosineDecayRestarts(
        1e-2, first_decay_steps=10, t_mul=2.0, m_mul=0.5, alpha=0.1
    )
    schedule = schedules.LinearWarmup(
        sgdr, warmup_steps=8, initial_learning_rate=1e-4
    )
    expected = [
        1e-4 + (1e-2 - 1e-4) * s / 8
        if s < 8
        else _numpy_sgdr(s - 8, 1e-2, 10, 2.0, 0.5, 0.1)
        for s in STEPS
    ]
    np.testing.assert_allclose(_values(schedule), expected, rtol=1e-4)
    # Float steps give the same values as int steps, as do scalar steps.
    np.testing.assert_allclose(
        _values(schedule, dtype="float32"), expected, rtol=1e-4
    )
    np.testing.assert_allclose(float(schedule(29)), expected[5], rtol=1e-4)


def test_linear_warmup_of_constant():
    schedule = schedules.LinearWarmup(0.5, warmup_steps=4)
    np.testing.assert_allclose(
        _values(schedule, [0, 1, 2, 4, 100]), [0, 0.125, 0.25, 0.5, 0.5]
    )


@pytest.mark.parametrize(
    "warmup_steps, timescale", [(0, None), (0, 20), (10, None), (10, 40)]
)
def test_inverse_square_root_decay_matches_formula(warmup_steps, timescale):
    schedule = schedules.InverseSquareRootDecay(
        3e-3, warmup_steps=warmup_steps, timescale=timescale
    )
    tau = timescale or max(warmup_steps, 1)
    expected = [
        3e-3 * s / warmup_steps
        if s < warmup_steps
        else 3e-3 * math.sqrt(tau / max(s, tau))
        for s in STEPS
    ]
    np.testing.assert_allclose(_values(schedule), expected, rtol=1e-5)


def test_inverse_square_root_decay_is_t5_and_vaswani():
    t5 = schedules.InverseSquareRootDecay(0.01, timescale=10000)
    steps = [0, 5000, 10000, 40000, 1000000]
    np.testing.assert_allclose(
        _values(t5, steps),
        [1 / math.sqrt(max(s, 10000)) for s in steps],
        rtol=1e-5,
    )
    d_model, warmup = 512, 4000
    vaswani = schedules.InverseSquareRootDecay(
        d_model**-0.5 * warmup**-0.5, warmup_steps=warmup
    )
    steps = [1, 1000, 3999, 4000, 20000]
    expected = [d_model**-0.5 * min(s**-0.5, s * warmup**-1.5) for s in steps]
    np.testing.assert_allclose(_values(vaswani, steps), expected, rtol=1e-4)


def test_dann_decay_matches_formula():
    schedule = schedules.DANNDecay(0.01, total_steps=100)
    expected = [0.01 / (1 + 10 * min(s / 100, 1)) ** 0.75 for s in STEPS]
    np.testing.assert_allclose(_values(schedule), expected, rtol=1e-5)
    custom = schedules.DANNDecay(0.1, total_steps=50, alpha=5.0, beta=0.5)
    expected = [0.1 / (1 + 5 * min(s / 50, 1)) ** 0.5 for s in STEPS]
    np.testing.assert_allclose(_values(custom), expected, rtol=1e-5)


def test_dann_lambda_matches_formula():
    ramp = schedules.DANNLambda(total_steps=100)
    expected = [2 / (1 + math.exp(-10 * min(s / 100, 1))) - 1 for s in STEPS]
    np.testing.assert_allclose(_values(ramp), expected, rtol=1e-5, atol=1e-7)
    half = schedules.DANNLambda(total_steps=40, gamma=5.0, max_value=0.5)
    expected = [
        0.5 * (2 / (1 + math.exp(-5 * min(s / 40, 1))) - 1) for s in STEPS
    ]
    np.testing.assert_allclose(_values(half), expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("anneal_strategy", ["cos", "linear"])
@pytest.mark.parametrize("total_steps, pct_start", [(100, 0.3), (37, 0.25)])
def test_one_cycle_matches_torch(anneal_strategy, total_steps, pct_start):
    torch = pytest.importorskip("torch")
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    reference = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=0.02,
        total_steps=total_steps,
        pct_start=pct_start,
        div_factor=10.0,
        final_div_factor=100.0,
        anneal_strategy=anneal_strategy,
        cycle_momentum=False,
    )
    expected = []
    for _ in range(total_steps):
        expected.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        reference.step()
    schedule = schedules.OneCycle(
        0.02,
        total_steps=total_steps,
        pct_start=pct_start,
        div_factor=10.0,
        final_div_factor=100.0,
        anneal_strategy=anneal_strategy,
    )
    steps = list(range(total_steps))
    np.testing.assert_allclose(_values(schedule, steps), expected, rtol=1e-4)
    # Past the end the final rate is kept.
    np.testing.assert_allclose(
        _values(schedule, [total_steps, 10 * total_steps]),
        [0.02 / 10 / 100] * 2,
        rtol=1e-4,
    )


ALL_SCHEDULES = [
    schedules.LinearWarmup(
        keras.optimizers.schedules.CosineDecayRestarts(1e-2, 10), 5, 1e-4
    ),
    schedules.LinearWarmup(3e-3, 7),
    schedules.InverseSquareRootDecay(1e-3, warmup_steps=5, timescale=9),
    schedules.DANNDecay(1e-2, 100, alpha=3.0, beta=0.5),
    schedules.OneCycle(1e-2, 50, pct_start=0.2, anneal_strategy="linear"),
    schedules.StepOffset(schedules.DANNDecay(1e-2, 100), offset=-7),
]


def test_step_offset_shifts_the_wrapped_schedule():
    inner = keras.optimizers.schedules.CosineDecay(1e-2, decay_steps=40, alpha=0.1)
    for offset in (0, 12, -5):
        shifted = schedules.StepOffset(inner, offset)
        steps = [s for s in STEPS if s - offset >= 0]
        np.testing.assert_allclose(
            _values(shifted, steps), _values(inner, [s - offset for s in steps]), rtol=1e-6
        )


@pytest.mark.parametrize("schedule", ALL_SCHEDULES, ids=lambda s: s.name)
def test_config_round_trip(schedule):
    config = keras.optimizers.schedules.serialize(schedule)
    restored = keras.optimizers.schedules.deserialize(config)
    assert type(restored) is type(schedule)
    assert restored.get_config() == schedule.get_config()
    np.testing.assert_array_equal(_values(restored), _values(schedule))


def test_dann_lambda_config_round_trip():
    ramp = schedules.DANNLambda(total_steps=77, gamma=3.0, max_value=0.2)
    config = keras.saving.serialize_keras_object(ramp)
    restored = keras.saving.deserialize_keras_object(config)
    assert isinstance(restored, schedules.DANNLambda)
    assert restored.get_config() == ramp.get_config()


@pytest.mark.parametrize("schedule", ALL_SCHEDULES, ids=lambda s: s.name)
def test_trains_in_fit_and_saves(schedule, tmp_path):
    x = np.random.rand(64, 4).astype("float32")
    y = x @ np.arange(4, dtype="float32")[:, None]
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="mse")
    history = model.fit(x, y, batch_size=16, epochs=3, verbose=0)
    assert int(model.optimizer.iterations) == 12
    assert np.isfinite(history.history["loss"]).all()
    np.testing.assert_allclose(
        float(model.optimizer.learning_rate), float(schedule(12)), rtol=1e-6
    )
    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    restored_schedule = restored.optimizer._learning_rate
    assert type(restored_schedule) is type(schedule)
    assert restored_schedule.get_config() == schedule.get_config()


BAD_ARGUMENTS = [
    (lambda: schedules.LinearWarmup(1e-3, 0), "warmup_steps", "0"),
    (lambda: schedules.LinearWarmup(abs, 5), "schedule", "<built-in"),
    (lambda: schedules.LinearWarmup(-1e-3, 5), "schedule", "-0.001"),
    (
        lambda: schedules.LinearWarmup(1e-3, 5, -1.0),
        "initial_learning_rate",
        "-1.0",
    ),
    (
        lambda: schedules.InverseSquareRootDecay(0.0),
        "initial_learning_rate",
        "0.0",
    ),
    (
        lambda: schedules.InverseSquareRootDecay(1e-3, warmup_steps=-1),
        "warmup_steps",
        "-1",
    ),
    (
        lambda: schedules.InverseSquareRootDecay(
            1e-3, warmup_steps=100, timescale=50
        ),
        "timescale",
        "50",
    ),
    (lambda: schedules.DANNDecay(-0.1, 100), "initial_learning_rate", "-0.1"),
    (lambda: schedules.DANNDecay(0.1, 0), "total_steps", "0"),
    (lambda: schedules.DANNDecay(0.1, 10, alpha=-1.0), "alpha", "-1.0"),
    (lambda: schedules.DANNDecay(0.1, 10.5), "total_steps", "10.5"),
    (lambda: schedules.OneCycle(0.0, 100), "max_learning_rate", "0.0"),
    (lambda: schedules.OneCycle(0.1, 1), "total_steps", "1"),
    (lambda: schedules.OneCycle(0.1, 100, pct_start=1.0), "pct_start", "1.0"),
    (lambda: schedules.OneCycle(0.1, 10, pct_start=0.1), "pct_start", "0.1"),
    (lambda: schedules.OneCycle(0.1, 100, div_factor=0.5), "div_factor", "0.5"),
    (
        lambda: schedules.OneCycle(0.1, 100, final_div_factor=0.1),
        "final_div_factor",
        "0.1",
    ),
    (
        lambda: schedules.OneCycle(0.1, 100, anneal_strategy="exp"),
        "anneal_strategy",
        "'exp'",
    ),
    (lambda: schedules.DANNLambda(0), "total_steps", "0"),
    (lambda: schedules.DANNLambda(10, gamma=0.0), "gamma", "0.0"),
    (lambda: schedules.DANNLambda(10, max_value=-1.0), "max_value", "-1.0"),
    (lambda: schedules.StepOffset(1e-3, 5), "schedule", "0.001"),
    (lambda: schedules.StepOffset(schedules.DANNDecay(0.1, 10), 2.5), "offset", "2.5"),
]


def test_bad_arguments_raise():
    # One test over all cases: a test each would mostly time the fixture.
    for build, argument, value in BAD_ARGUMENTS:
        with pytest.raises(
            ValueError,
            match=rf"Invalid value received for argument `{argument}`.*"
            rf"Received: {argument}={value}",
        ):
            build()
