"""Recipes deliver every field they declare, measured on every backend.

The learning rate tests train a model whose loss is the sum of its kernels
(every gradient is exactly 1), so one plain SGD step moves a kernel by
exactly `-learning_rate`: the rate the compiled train step really used is
read back from the weights, step by step, and compared with the formula.
"""

import dataclasses
import math
import re

import keras
import numpy as np
import pytest

from keras_transfer import zoo
from keras_transfer.callbacks import PerStepSchedule
from keras_transfer.callbacks import StagedUnfreezing
from keras_transfer.regularizers import L2SP
from keras_transfer.zoo import recipes
from keras_transfer.zoo import registry
from keras_transfer.zoo.recipes import Recipe

once = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="backend-independent; checked on the tensorflow run",
)

STEPS_PER_EPOCH, EPOCHS, PEAK = 4, 3, 0.1
TOTAL = STEPS_PER_EPOCH * EPOCHS


def _unit_gradient_model(frozen_branch=False):
    """`out = a(x) + b(x)` on `x = 1`, loss `mean(out)`: each kernel's gradient is 1."""
    inputs = keras.Input((1,))
    branches = [
        keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros", name=name)
        for name in ("a", "b")
    ]
    model = keras.Model(inputs, keras.layers.Add()([b(inputs) for b in branches]))
    if frozen_branch:
        branches[0].trainable = False
    return model


def _kernel(model, name):
    return float(keras.ops.convert_to_numpy(model.get_layer(name).kernel)[0, 0])


class _Recorder(keras.callbacks.Callback):
    """The optimizer's rate before each step and the kernels after it."""

    def __init__(self):
        super().__init__()
        self.rates, self.kernels = [], {"a": [0.0], "b": [0.0]}

    def on_train_batch_begin(self, batch, logs=None):
        self.rates.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))

    def on_train_batch_end(self, batch, logs=None):
        for name in self.kernels:
            self.kernels[name].append(_kernel(self.model, name))

    def applied(self, name):
        """The learning rate each step applied to kernel `name`."""
        return -np.diff(self.kernels[name])


def _fit(model, callbacks, epochs=EPOCHS, initial_epoch=0, recorder=None):
    recorder = recorder or _Recorder()
    x = np.ones((2 * STEPS_PER_EPOCH, 1), "float32")
    model.fit(
        x, np.zeros_like(x), batch_size=2, epochs=epochs, initial_epoch=initial_epoch,
        shuffle=False, verbose=0, callbacks=[*callbacks, recorder],
    )
    return recorder


def _compile(model, plan):
    model.compile(
        optimizer=recipes.make_optimizer(plan),
        loss=lambda y_true, y_pred: keras.ops.mean(y_pred),
    )


def _warmup(step, warmup, target):
    return target * step / warmup


def _sgdr(step, first=4, t_mul=2.0, m_mul=0.5, alpha=0.1):
    period, start, scale = first, 0.0, 1.0
    while step >= start + period:
        start, period, scale = start + period, period * t_mul, scale * m_mul
    cosine = 0.5 * scale * (1 + math.cos(math.pi * (step - start) / period))
    return PEAK * ((1 - alpha) * cosine + alpha)


def _one_cycle(step, pct_start=0.25, div=10.0, final_div=100.0):
    initial, peak_step = PEAK / div, pct_start * TOTAL - 1

    def anneal(start, end, fraction):
        return end + (start - end) / 2 * (1 + math.cos(math.pi * fraction))

    if step <= peak_step:
        return anneal(initial, PEAK, step / peak_step)
    fraction = (step - peak_step) / (TOTAL - 1 - peak_step)
    return anneal(PEAK, initial / final_div, fraction)


# kind, options, warmup epochs, formula of the rate at step s (one warmup epoch = 4 steps).
CURVES = [
    ("constant", {}, 1, lambda s: _warmup(s, 4, PEAK) if s < 4 else PEAK),
    (
        "cosine", {"alpha": 0.0}, 1,
        lambda s: _warmup(s, 4, PEAK) if s < 4
        else PEAK * 0.5 * (1 + math.cos(math.pi * (s - 4) / (TOTAL - 4))),
    ),
    ("exponential", {"decay_rate": 0.5}, 0, lambda s: PEAK * 0.5 ** (s / STEPS_PER_EPOCH)),
    (
        "cosine_restarts", {"first_decay_epochs": 1, "t_mul": 2.0, "m_mul": 0.5, "alpha": 0.1}, 1,
        lambda s: _warmup(s, 4, PEAK) if s < 4 else _sgdr(s - 4),
    ),
    (
        "one_cycle", {"pct_start": 0.25, "div_factor": 10.0, "final_div_factor": 100.0}, 0,
        _one_cycle,
    ),
    (
        "inverse_sqrt", {}, 1,
        lambda s: _warmup(s, 4, PEAK) if s < 4 else PEAK * math.sqrt(4 / max(s, 4)),
    ),
    ("dann", {"alpha": 10.0, "beta": 0.75}, 0, lambda s: PEAK / (1 + 10 * s / TOTAL) ** 0.75),
]


@pytest.mark.parametrize("kind, options, warmup, formula", CURVES, ids=[c[0] for c in CURVES])
def test_each_schedule_kind_trains_at_the_declared_rate_every_step(kind, options, warmup, formula):
    plan = Recipe(
        optimizer="sgd", learning_rate=PEAK, schedule=kind, schedule_options=options,
        warmup_epochs=warmup, early_stopping_patience=None,
    )
    model = _unit_gradient_model()
    _compile(model, plan)
    recorder = _fit(model, recipes.recipe_callbacks(plan, EPOCHS))
    expected = [formula(s) for s in range(TOTAL)]
    # The rate the optimizer reports at steps 0, k and the last step...
    for step in (0, 5, TOTAL - 1):
        assert recorder.rates[step] == pytest.approx(expected[step], rel=1e-5, abs=1e-9)
    np.testing.assert_allclose(recorder.rates, expected, rtol=1e-5, atol=1e-9)
    # ... and the rate every compiled step really applied.
    np.testing.assert_allclose(recorder.applied("b"), expected, rtol=1e-4, atol=2e-6)


def test_schedule_survives_staged_unfreezing():
    """The image recipes' shape: warmup + cosine, a stage rebuilding the optimizer."""
    plan = Recipe(
        optimizer="sgd", learning_rate=PEAK, schedule="cosine", warmup_epochs=1,
        unfreeze_stages=((1, "a"),), early_stopping_patience=None,
    )
    model = _unit_gradient_model(frozen_branch=True)
    _compile(model, plan)
    callbacks = recipes.recipe_callbacks(plan, EPOCHS)
    assert isinstance(callbacks[0], StagedUnfreezing)
    recorder = _fit(model, callbacks)
    expected = np.array(
        [_warmup(s, 4, PEAK) if s < 4 else PEAK * 0.5 * (1 + math.cos(math.pi * (s - 4) / 8))
         for s in range(TOTAL)]
    )
    np.testing.assert_allclose(recorder.applied("b"), expected, rtol=1e-4, atol=2e-6)
    # Branch a trains from epoch 1 on, at the same scheduled rate.
    np.testing.assert_allclose(
        recorder.applied("a"), np.where(np.arange(TOTAL) < 4, 0.0, expected), rtol=1e-4, atol=2e-6
    )


def test_sgd_momentum_and_nesterov_reach_the_update():
    """Keras SGD: m = 0.9 m - lr g; w += 0.9 m - lr g (Nesterov). g = 1, lr = 0.1."""
    plan = Recipe(
        optimizer="sgd", learning_rate=PEAK, momentum=0.9, nesterov=True,
        schedule="constant", early_stopping_patience=None,
    )
    model = _unit_gradient_model()
    _compile(model, plan)
    optimizer = model.optimizer
    assert (optimizer.momentum, optimizer.nesterov) == (0.9, True)
    recorder = _fit(model, recipes.recipe_callbacks(plan, 1), epochs=1)
    slots = {v.path: keras.ops.convert_to_numpy(v).item() for v in optimizer.variables
             if "momentum" in v.path}
    assert len(slots) == 2
    # After 4 steps of g = 1: m = -lr * (1 + 0.9 + 0.81 + 0.729).
    assert all(value == pytest.approx(-PEAK * 3.439, rel=1e-5) for value in slots.values())
    # w after two steps: -1.9 lr, then -1.9 lr - 0.9 * 1.9 lr - lr.
    np.testing.assert_allclose(
        recorder.kernels["b"][1:3], [-1.9 * PEAK, -4.61 * PEAK], rtol=1e-5
    )


@pytest.mark.parametrize("optimizer", ["sgd", "adamw", "adam"])
def test_weight_decay_and_gradient_clipping_reach_the_update(optimizer):
    """One step from w = 1 with x = 3 (gradient 3, clipped to norm 0.5) and lr 0.1:
    w = 1 - lr * wd * 1 - lr * 0.5 (SGD); Adam's first step is lr * sign(g)."""
    plan = Recipe(
        optimizer=optimizer, learning_rate=PEAK, weight_decay=0.5, global_clipnorm=0.5,
        schedule="constant", early_stopping_patience=None,
    )
    inputs = keras.Input((1,))
    model = keras.Model(
        inputs, keras.layers.Dense(1, use_bias=False, kernel_initializer="ones")(inputs)
    )
    _compile(model, plan)
    assert model.optimizer.weight_decay == 0.5 and model.optimizer.global_clipnorm == 0.5
    model.fit(np.full((2, 1), 3.0, "float32"), np.zeros((2, 1)), batch_size=2, verbose=0)
    step = PEAK * 0.5 if optimizer == "sgd" else PEAK
    kernel = float(keras.ops.convert_to_numpy(model.layers[-1].kernel)[0, 0])
    assert kernel == pytest.approx(1 - PEAK * 0.5 - step, abs=1e-5)


def test_a_second_fit_restarts_the_schedule_and_a_resumed_fit_continues_it():
    schedule = PerStepSchedule(
        lambda steps, epochs: keras.optimizers.schedules.PolynomialDecay(
            PEAK, decay_steps=steps * epochs, end_learning_rate=0.0
        )
    )
    model = _unit_gradient_model()
    model.compile(optimizer=keras.optimizers.SGD(1.0), loss=lambda t, p: keras.ops.mean(p))
    expected = PEAK * (1 - np.arange(TOTAL) / TOTAL)
    np.testing.assert_allclose(_fit(model, [schedule]).applied("b"), expected, rtol=1e-4, atol=2e-6)
    # The optimizer has taken 12 steps; a new run starts the curve again.
    second = _Recorder()
    second.kernels["b"] = [_kernel(model, "b")]
    np.testing.assert_allclose(
        _fit(model, [schedule], recorder=second).applied("b"), expected, rtol=1e-4, atol=2e-6
    )
    # A run that starts at epoch 2 of a fresh optimizer continues at step 8.
    model.compile(optimizer=keras.optimizers.SGD(1.0), loss=lambda t, p: keras.ops.mean(p))
    resumed = _Recorder()
    resumed.kernels["b"] = [_kernel(model, "b")]
    np.testing.assert_allclose(
        _fit(model, [schedule], initial_epoch=2, recorder=resumed).applied("b"),
        expected[8:], rtol=1e-4, atol=2e-6,
    )


@pytest.mark.parametrize(
    "policy, scaled", [("mixed_float16", True), ("mixed_bfloat16", False)]
)
def test_zoo_model_trains_under_mixed_precision(policy, scaled):
    keras.config.set_dtype_policy(policy)
    try:
        model = zoo.build("test/tiny_cnn", 3, input_shape=(8, 8, 3))
        x = np.random.randint(0, 256, (4, 8, 8, 3)).astype("float32")
        history = model.fit(
            x, np.arange(4) % 3, batch_size=2, epochs=1, verbose=0,
            callbacks=zoo.recipe("test/tiny_cnn", epochs=1, monitor="loss"),
        )
        logits = model.predict(x, verbose=0)
    finally:
        keras.config.set_dtype_policy("float32")
    assert np.isfinite(history.history["loss"]).all()
    assert logits.dtype == np.float32 and np.isfinite(logits).all()
    compute = policy.removeprefix("mixed_")
    assert model.get_layer("features").get_layer("conv0").compute_dtype == compute
    assert model.get_layer("head").classifier.compute_dtype == "float32"
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer) is scaled
    inner = model.optimizer.inner_optimizer if scaled else model.optimizer
    assert float(keras.ops.convert_to_numpy(inner.learning_rate)) == pytest.approx(3e-3)


def _register(monkeypatch, **fields):
    monkeypatch.setattr(registry, "_TASKS", dict(registry._TASKS))
    spec = dataclasses.replace(
        zoo.get_task("test/tiny_cnn"), name="test/recipe_probe", recipe=Recipe(**fields)
    )
    zoo.register_task(spec)
    return spec.name


def test_label_smoothing_reaches_the_zoo_loss(monkeypatch):
    name = _register(monkeypatch, label_smoothing=0.2)
    model = zoo.build(name, 4, input_shape=(16, 16, 3))
    assert model.loss.label_smoothing == 0.2
    x = np.random.randint(0, 256, (16, 16, 16, 3)).astype("float32")
    y = np.arange(16) % 4
    logits = model.predict(x, verbose=0).astype("float64")
    log_p = logits - logits.max(-1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
    targets = np.eye(4)[y] * 0.8 + 0.05
    evaluated = model.evaluate(x, y, batch_size=16, return_dict=True, verbose=0)
    assert evaluated["loss"] == pytest.approx(-(targets * log_p).sum(-1).mean(), rel=1e-4)


@once
def test_head_penalties_and_l2sp_reach_the_zoo_model(monkeypatch):
    name = _register(monkeypatch, head_l1=0.01, head_l2=0.1, l2sp_alpha=0.5)
    model = zoo.build(name, 3, input_shape=(16, 16, 3))
    head = model.get_layer("head")
    assert head.kernel_regularizer.get_config() == {"l1": 0.01, "l2": 0.1}
    backbone = [layer for layer in model.layers if layer.weights and layer is not head][0]
    pulled = [v for v in backbone.trainable_variables if isinstance(v.regularizer, L2SP)]
    assert len(pulled) == len(backbone.trainable_variables) > 0
    assert all(v.regularizer.alpha == 0.5 for v in pulled)
    kernel = keras.ops.convert_to_numpy(head.classifier.kernel)
    head_penalty = 0.01 * np.abs(kernel).sum() + 0.1 * np.square(kernel).sum()
    total = sum(float(keras.ops.convert_to_numpy(loss)) for loss in model.losses)
    assert total == pytest.approx(head_penalty, rel=1e-5)  # Backbone at its start: 0.
    moved = pulled[0]
    moved.assign(moved + 1.0)
    total = sum(float(keras.ops.convert_to_numpy(loss)) for loss in model.losses)
    assert total == pytest.approx(head_penalty + 0.5 / 2 * np.prod(moved.shape), rel=1e-5)


@once
def test_every_recipe_ends_with_terminate_on_nan_and_stops_early_as_declared(monkeypatch):
    for name in zoo.list_tasks():
        callbacks = zoo.recipe(name, epochs=4)
        assert isinstance(callbacks[-1], keras.callbacks.TerminateOnNaN), name
        assert sum(isinstance(c, PerStepSchedule) for c in callbacks) == 1, name
    name = _register(monkeypatch, early_stopping_patience=2)
    (stop,) = [c for c in zoo.recipe(name, 5, monitor="val_macro_f1")
               if isinstance(c, keras.callbacks.EarlyStopping)]
    assert (stop.patience, stop.monitor, stop.restore_best_weights) == (2, "val_macro_f1", True)


BAD_RECIPES = [
    ({"optimizer": "adagrad"}, "optimizer='adagrad'", "('adam', 'adamw', 'sgd')"),
    ({"schedule": "cosin"}, "schedule='cosin'", "'constant', 'cosine', 'exponential'"),
    ({"optimizer": "sgd", "momentum": -0.9}, "momentum=-0.9", ">= 0 and < 1"),
    ({"optimizer": "sgd", "momentum": 1.0}, "momentum=1.0", ">= 0 and < 1"),
    ({"momentum": 0.9}, "momentum=0.9", "SGD fields"),
    ({"optimizer": "sgd", "nesterov": True}, "momentum=0.0", "needs momentum > 0"),
    ({"label_smoothing": 1.0}, "label_smoothing=1.0", ">= 0 and < 1"),
    ({"label_smoothing": -0.1}, "label_smoothing=-0.1", ">= 0 and < 1"),
    ({"learning_rate": 0.0}, "learning_rate=0.0", "> 0"),
    ({"weight_decay": None}, "weight_decay=None", ">= 0"),
    ({"global_clipnorm": 0.0}, "global_clipnorm=0.0", "> 0"),
    ({"warmup_epochs": -1}, "warmup_epochs=-1", ">= 0"),
    ({"schedule": "one_cycle", "warmup_epochs": 1}, "warmup_epochs=1", "rises by itself"),
    ({"schedule_options": {"alpah": 0.1}}, "'alpah'", "options among ('alpha',)"),
    ({"schedule": "exponential", "schedule_options": {"decay_rate": 0.0}},
     "schedule_options['decay_rate']=0.0", "> 0"),
    ({"head_l2": -1.0}, "head_l2=-1.0", ">= 0"),
    ({"l2sp_alpha": float("nan")}, "l2sp_alpha=nan", ">= 0"),
    ({"unfreeze_stages": ((-1, "conv*"),)}, "unfreeze_stages=((-1, 'conv*'),)", "epochs >= 0"),
    ({"early_stopping_patience": 1.5}, "early_stopping_patience=1.5", "integer >= 0"),
]


@once
@pytest.mark.parametrize("fields, received, allowed", BAD_RECIPES)
def test_bad_recipe_fields_raise_at_construction(fields, received, allowed):
    with pytest.raises(ValueError) as error:
        Recipe(**fields)
    message = str(error.value)
    assert "Invalid value received for argument" in message
    assert f"Received: {received}" in message or received in message, message
    assert allowed in message, message


@once
def test_warmup_or_stages_longer_than_the_run_raise():
    with pytest.raises(ValueError, match=r"warms up for 3 epochs.*Expected epochs > 3.*epochs=3"):
        recipes.recipe_callbacks(Recipe(warmup_epochs=3), epochs=3)
    with pytest.raises(ValueError, match=r"unfreezes layers at epochs \[3\].*epochs=2"):
        zoo.recipe("image_classification/resnet50", epochs=2)
    # Known only once fit reports its steps: 0.5 epoch of 1 step rounds to 1 step.
    plan = Recipe(warmup_epochs=0.5)
    with pytest.raises(ValueError, match=re.escape("warmup of 1 steps is not shorter than the run")):
        recipes.learning_rate_schedule(plan, steps_per_epoch=1, epochs=1)


def test_unknown_run_length_or_a_longer_fit_raise():
    model = _unit_gradient_model()
    _compile(model, Recipe(optimizer="sgd", schedule="constant", early_stopping_patience=None))

    def batches():
        while True:
            yield np.ones((2, 1), "float32"), np.zeros((2, 1), "float32")

    schedule = PerStepSchedule(lambda steps, epochs: PEAK)
    with pytest.raises(ValueError, match="Pass `steps_per_epoch`"):
        model.fit(batches(), epochs=1, verbose=0, callbacks=[schedule])
    model.fit(batches(), epochs=1, steps_per_epoch=3, verbose=0, callbacks=[schedule])
    with pytest.raises(ValueError, match="declared for a run of 2 epochs.*epochs=3"):
        _fit(model, [PerStepSchedule(lambda steps, epochs: PEAK, epochs=2)])


def test_a_model_trained_with_a_recipe_saves_and_reloads_its_schedule(monkeypatch, tmp_path):
    name = _register(
        monkeypatch, schedule="exponential", schedule_options={"decay_rate": 0.5},
        warmup_epochs=1, early_stopping_patience=None,
    )
    model = zoo.build(name, 3, input_shape=(8, 8, 3))
    x = np.random.randint(0, 256, (8, 8, 8, 3)).astype("float32")
    for _ in range(2):  # The second fit wraps the schedule in a StepOffset.
        model.fit(x, np.arange(8) % 3, batch_size=4, epochs=2, verbose=0,
                  callbacks=zoo.recipe(name, epochs=2))
    path = str(tmp_path / "model.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    config = reloaded.optimizer.get_config()["learning_rate"]
    assert config["class_name"] == "StepOffset" and config["config"]["offset"] == 4
    assert float(keras.ops.convert_to_numpy(reloaded.optimizer.learning_rate)) == pytest.approx(
        float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)), rel=1e-6
    )
