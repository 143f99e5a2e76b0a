"""Recipes: how a zoo task trains, declared as data and delivered in full.

A `Recipe` is a frozen dataclass checked when it is constructed; the
functions below turn it into Keras objects: `make_optimizer` (optimizer,
weight decay, momentum, clipping), `learning_rate_schedule` (the per-step
schedule for a run of known length), `head_regularizer` (L1/L2 on the head)
and `recipe_callbacks` (`PerStepSchedule`, `StagedUnfreezing`,
`EarlyStopping`, `TerminateOnNaN`). `keras_transfer.zoo.build` compiles with
them and `keras_transfer.zoo.recipe` returns the callbacks.
"""

import dataclasses
import functools
import numbers

import keras

from keras_transfer._validation import check_int
from keras_transfer._validation import check_number

OPTIMIZERS = ("adam", "adamw", "sgd")

# Schedule kind -> {option: (default, bounds for check_number)}.
SCHEDULES = {
    "constant": {},
    "cosine": {"alpha": (0.0, {"minimum": 0, "maximum": 1})},
    "exponential": {"decay_rate": (0.9, {"above": 0})},
    "cosine_restarts": {
        "first_decay_epochs": (1.0, {"above": 0}),
        "t_mul": (2.0, {"above": 0}),
        "m_mul": (1.0, {"minimum": 0}),
        "alpha": (0.0, {"minimum": 0, "maximum": 1}),
    },
    "one_cycle": {
        "pct_start": (0.3, {"above": 0, "below": 1}),
        "div_factor": (25.0, {"minimum": 1}),
        "final_div_factor": (1e4, {"minimum": 1}),
    },
    "inverse_sqrt": {},
    "dann": {
        "alpha": (10.0, {"minimum": 0}),
        "beta": (0.75, {"minimum": 0}),
    },
}


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How a task trains. Every field reaches the model; bad values raise here.

    The learning rate follows a per-step schedule over the whole run,
    sized from the data when `fit` starts (see `learning_rate_schedule`);
    `warmup_epochs` of linear warmup from 0 come first (except for
    `"one_cycle"`, which rises by itself, and `"cosine"`, which uses
    Keras' own `CosineDecay(warmup_steps=)`).

    Args:
        optimizer: `"adam"`, `"adamw"` or `"sgd"`. Defaults to `"adam"`.
        learning_rate: Float > 0. The peak learning rate. Defaults to `1e-3`.
        momentum: Float in `[0, 1)`. SGD momentum (SGD only). Defaults to
            `0.0`.
        nesterov: Bool. Nesterov momentum (SGD with `momentum > 0` only).
            Defaults to `False`.
        weight_decay: Float >= 0. Decoupled weight decay of the Keras
            optimizer (`variable -= learning_rate * weight_decay * variable`
            at every step). `0` turns it off. Defaults to `0.0`.
        global_clipnorm: Float > 0 or `None`. Gradients are rescaled so that
            their global norm is at most this. Defaults to `None`.
        schedule: One of `"constant"`, `"cosine"`, `"exponential"`,
            `"cosine_restarts"`, `"one_cycle"`, `"inverse_sqrt"`, `"dann"`
            (see `learning_rate_schedule`). Defaults to `"cosine"`.
        schedule_options: Dict of the schedule's options, each with a
            default (see `SCHEDULES`): `cosine` `alpha`; `exponential`
            `decay_rate` (per epoch); `cosine_restarts`
            `first_decay_epochs`, `t_mul`, `m_mul`, `alpha`; `one_cycle`
            `pct_start`, `div_factor`, `final_div_factor`; `dann` `alpha`,
            `beta`. Defaults to `{}`.
        warmup_epochs: Float >= 0. Linear warmup from 0 to `learning_rate`,
            in epochs (rounded to whole steps, at least one). Defaults to
            `0`.
        label_smoothing: Float in `[0, 1)`. Label smoothing of the
            classification loss. Defaults to `0.0`.
        head_l1: Float >= 0. L1 penalty on the head's kernels
            (`keras.regularizers.L1L2`). Defaults to `0.0`.
        head_l2: Float >= 0. L2 penalty on the head's kernels. Defaults to
            `0.0`.
        l2sp_alpha: Float >= 0. L2-SP pull of the backbone's weights towards
            their pretrained values (`keras_transfer.regularizers.apply_l2sp`
            with this `alpha`; the head keeps `head_l1`/`head_l2`). `0`
            turns it off. Defaults to `0.0`.
        unfreeze_stages: Tuple of `(epoch, selector)` pairs: at the start of
            `epoch`, `keras_transfer.freezing.unfreeze(model, selector)` runs
            (through `keras_transfer.callbacks.StagedUnfreezing`). Defaults
            to `()`.
        early_stopping_patience: Int >= 0 or `None`. `EarlyStopping` with
            `restore_best_weights=True` on the monitored validation metric;
            `None` turns it off. Defaults to `3`.
    """

    optimizer: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    global_clipnorm: float | None = None
    schedule: str = "cosine"
    schedule_options: dict = dataclasses.field(default_factory=dict)
    warmup_epochs: float = 0
    label_smoothing: float = 0.0
    head_l1: float = 0.0
    head_l2: float = 0.0
    l2sp_alpha: float = 0.0
    unfreeze_stages: tuple = ()
    early_stopping_patience: int | None = 3

    def __post_init__(self):
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_number("learning_rate", self.learning_rate, above=0)
        check_number("momentum", self.momentum, minimum=0, below=1)
        if not isinstance(self.nesterov, bool):
            raise ValueError(
                "Invalid value received for argument `nesterov`. Expected a "
                f"bool. Received: nesterov={self.nesterov!r}"
            )
        if self.optimizer != "sgd" and (self.momentum or self.nesterov):
            raise ValueError(
                "Invalid value received for argument `momentum`: momentum and "
                "nesterov are SGD fields (Adam's moments are built in). "
                f"Received: optimizer={self.optimizer!r}, "
                f"momentum={self.momentum!r}, nesterov={self.nesterov!r}"
            )
        if self.nesterov and not self.momentum:
            raise ValueError(
                "Invalid value received for argument `nesterov`: Nesterov "
                "momentum needs momentum > 0. Received: nesterov=True, "
                f"momentum={self.momentum!r}"
            )
        check_number("weight_decay", self.weight_decay, minimum=0)
        if self.global_clipnorm is not None:
            check_number("global_clipnorm", self.global_clipnorm, above=0)
        _check_choice("schedule", self.schedule, tuple(SCHEDULES))
        self._check_schedule_options()
        check_number("warmup_epochs", self.warmup_epochs, minimum=0)
        if self.warmup_epochs and self.schedule == "one_cycle":
            raise ValueError(
                "Invalid value received for argument `warmup_epochs`: the "
                "'one_cycle' schedule rises by itself (its `pct_start` option). "
                f"Expected 0. Received: warmup_epochs={self.warmup_epochs!r}"
            )
        check_number("label_smoothing", self.label_smoothing, minimum=0, below=1)
        check_number("head_l1", self.head_l1, minimum=0)
        check_number("head_l2", self.head_l2, minimum=0)
        check_number("l2sp_alpha", self.l2sp_alpha, minimum=0)
        self._check_unfreeze_stages()
        if self.early_stopping_patience is not None:
            check_int("early_stopping_patience", self.early_stopping_patience, minimum=0)

    def _check_schedule_options(self):
        if not isinstance(self.schedule_options, dict):
            raise ValueError(
                "Invalid value received for argument `schedule_options`. "
                "Expected a dict. "
                f"Received: schedule_options={self.schedule_options!r}"
            )
        allowed = SCHEDULES[self.schedule]
        for option, value in self.schedule_options.items():
            if option not in allowed:
                raise ValueError(
                    "Invalid value received for argument `schedule_options`: "
                    f"schedule {self.schedule!r} has no option {option!r}. "
                    f"Expected options among {tuple(allowed)}. "
                    f"Received: schedule_options={self.schedule_options!r}"
                )
            check_number(f"schedule_options['{option}']", value, **allowed[option][1])
        # A private copy, so the frozen recipe cannot change through the caller's dict.
        object.__setattr__(self, "schedule_options", dict(self.schedule_options))

    def _check_unfreeze_stages(self):
        stages = self.unfreeze_stages
        valid = isinstance(stages, tuple) and all(
            isinstance(stage, tuple)
            and len(stage) == 2
            and isinstance(stage[0], numbers.Integral)
            and not isinstance(stage[0], bool)
            and stage[0] >= 0
            for stage in stages
        )
        if not valid:
            raise ValueError(
                "Invalid value received for argument `unfreeze_stages`. "
                "Expected a tuple of (epoch, selector) pairs with integer "
                f"epochs >= 0. Received: unfreeze_stages={stages!r}"
            )

    def options(self):
        """The schedule's options: the declared ones over the defaults."""
        defaults = {name: default for name, (default, _) in SCHEDULES[self.schedule].items()}
        return {**defaults, **self.schedule_options}


def _check_choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(
            f"Invalid value received for argument `{name}`. Expected one of "
            f"{allowed}. Received: {name}={value!r}"
        )


def check_run(recipe, epochs):
    """Raise `ValueError` if `recipe` cannot deliver its fields in `epochs` epochs.

    The warmup must end, and every unfreezing stage must start, before the
    run ends.
    """
    check_int("epochs", epochs, minimum=1)
    if recipe.warmup_epochs >= epochs:
        raise ValueError(
            "Invalid value received for argument `epochs`: the recipe warms "
            f"up for {recipe.warmup_epochs} epochs, which is not shorter than "
            f"the run. Expected epochs > {recipe.warmup_epochs}. "
            f"Received: epochs={epochs}"
        )
    late = [epoch for epoch, _ in recipe.unfreeze_stages if epoch >= epochs]
    if late:
        raise ValueError(
            "Invalid value received for argument `epochs`: the recipe "
            f"unfreezes layers at epochs {late}, which a run of {epochs} "
            f"epochs never reaches. Expected epochs > {max(late)}. "
            f"Received: epochs={epochs}"
        )


def make_optimizer(recipe):
    """A fresh Keras optimizer as `recipe` declares it.

    Its learning rate starts at the peak `learning_rate`;
    `keras_transfer.callbacks.PerStepSchedule` (in `recipe_callbacks`)
    replaces it with the schedule when `fit` starts.
    """
    common = {
        "learning_rate": recipe.learning_rate,
        "global_clipnorm": recipe.global_clipnorm,
    }
    if recipe.optimizer == "adamw":
        return keras.optimizers.AdamW(weight_decay=recipe.weight_decay, **common)
    decay = recipe.weight_decay or None
    if recipe.optimizer == "sgd":
        return keras.optimizers.SGD(
            momentum=recipe.momentum,
            nesterov=recipe.nesterov,
            weight_decay=decay,
            **common,
        )
    return keras.optimizers.Adam(weight_decay=decay, **common)


def head_regularizer(recipe):
    """`keras.regularizers.L1L2(head_l1, head_l2)`, or `None` when both are 0."""
    if not (recipe.head_l1 or recipe.head_l2):
        return None
    return keras.regularizers.L1L2(l1=recipe.head_l1, l2=recipe.head_l2)


def warmup_steps(recipe, steps_per_epoch, epochs):
    """The warmup in optimizer steps; it must end before the run does."""
    if not recipe.warmup_epochs:
        return 0
    steps = max(1, round(recipe.warmup_epochs * steps_per_epoch))
    if steps >= steps_per_epoch * epochs:
        raise ValueError(
            "Invalid value received for argument `warmup_epochs`: a warmup "
            f"of {steps} steps is not shorter than the run "
            f"({epochs} epochs x {steps_per_epoch} steps). "
            f"Received: warmup_epochs={recipe.warmup_epochs}"
        )
    return steps


def learning_rate_schedule(recipe, steps_per_epoch, epochs):
    """The per-step learning rate of `recipe` for a run of known length.

    With `total = steps_per_epoch * epochs`, `peak = learning_rate` and
    `warmup` the warmup in steps, step `s` trains at:

    ```python
    "constant":        peak
    "cosine":          CosineDecay(0, total - warmup, alpha,
                           warmup_target=peak, warmup_steps=warmup)
    "exponential":     peak * decay_rate ** ((s - warmup) / steps_per_epoch)
    "cosine_restarts": CosineDecayRestarts(peak,
                           first_decay_epochs * steps_per_epoch, t_mul, m_mul, alpha)
    "one_cycle":       OneCycle(peak, total, pct_start, div_factor, final_div_factor)
    "inverse_sqrt":    InverseSquareRootDecay(peak, warmup_steps=warmup)
    "dann":            DANNDecay(peak, total - warmup, alpha, beta)
    ```

    Every kind but `"cosine"`, `"one_cycle"` and `"inverse_sqrt"` gets its
    warmup from `keras_transfer.schedules.LinearWarmup` (linear from 0,
    then the decay from its own step 0).

    Args:
        recipe: A `Recipe`.
        steps_per_epoch: Int >= 1.
        epochs: Int >= 1.

    Returns:
        A `keras.optimizers.schedules.LearningRateSchedule`, or the float
        `learning_rate` for `"constant"` without warmup.
    """
    from keras_transfer import schedules

    check_int("steps_per_epoch", steps_per_epoch, minimum=1)
    check_int("epochs", epochs, minimum=1)
    total = steps_per_epoch * epochs
    warmup = warmup_steps(recipe, steps_per_epoch, epochs)
    peak = recipe.learning_rate
    options = recipe.options()
    keras_schedules = keras.optimizers.schedules
    if recipe.schedule == "cosine":
        if warmup:
            return keras_schedules.CosineDecay(
                0.0,
                decay_steps=total - warmup,
                alpha=options["alpha"],
                warmup_target=peak,
                warmup_steps=warmup,
            )
        return keras_schedules.CosineDecay(peak, decay_steps=total, alpha=options["alpha"])
    if recipe.schedule == "one_cycle":
        return schedules.OneCycle(peak, total_steps=total, **options)
    if recipe.schedule == "inverse_sqrt":
        return schedules.InverseSquareRootDecay(peak, warmup_steps=warmup)
    if recipe.schedule == "constant":
        decay = peak
    elif recipe.schedule == "exponential":
        decay = keras_schedules.ExponentialDecay(
            peak, decay_steps=steps_per_epoch, decay_rate=options["decay_rate"]
        )
    elif recipe.schedule == "cosine_restarts":
        decay = keras_schedules.CosineDecayRestarts(
            peak,
            first_decay_steps=max(1, round(options["first_decay_epochs"] * steps_per_epoch)),
            t_mul=options["t_mul"],
            m_mul=options["m_mul"],
            alpha=options["alpha"],
        )
    else:  # "dann"
        decay = schedules.DANNDecay(
            peak, total_steps=total - warmup, alpha=options["alpha"], beta=options["beta"]
        )
    return schedules.LinearWarmup(decay, warmup_steps=warmup) if warmup else decay


def recipe_callbacks(recipe, epochs, monitor="val_loss", steps_per_epoch=None):
    """The callbacks that deliver `recipe` in a run of `epochs` epochs.

    Returns a list: `keras_transfer.callbacks.StagedUnfreezing` when the
    recipe has unfreezing stages; `keras_transfer.callbacks.PerStepSchedule`
    (the learning rate of `learning_rate_schedule`, sized from the steps per
    epoch that `fit` reports); `keras.callbacks.EarlyStopping(monitor,
    patience, restore_best_weights=True)` unless the patience is `None`
    (then `fit` needs validation data); and `keras.callbacks.TerminateOnNaN`.

    Args:
        recipe: A `Recipe`.
        epochs: Int >= 1. The `epochs` of the `fit` these callbacks go to.
        monitor: String. What early stopping watches. Defaults to
            `"val_loss"`.
        steps_per_epoch: Int or `None`. Only for data whose length `fit`
            does not know. Defaults to `None`.
    """
    from keras_transfer.callbacks import PerStepSchedule
    from keras_transfer.callbacks import StagedUnfreezing

    check_run(recipe, epochs)
    callbacks = []
    if recipe.unfreeze_stages:
        callbacks.append(StagedUnfreezing(stages=dict(recipe.unfreeze_stages)))
    callbacks.append(
        PerStepSchedule(
            functools.partial(learning_rate_schedule, recipe),
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
        )
    )
    if recipe.early_stopping_patience is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor,
                patience=recipe.early_stopping_patience,
                restore_best_weights=True,
            )
        )
    callbacks.append(keras.callbacks.TerminateOnNaN())
    return callbacks
