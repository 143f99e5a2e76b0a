import numbers
import warnings

import keras
import numpy as np

from keras_transfer import _keras_compat
from keras_transfer._validation import check_number
from keras_transfer import freezing
from keras_transfer.optimizers.layerwise_optimizer import LayerwiseOptimizer
from keras_transfer.optimizers.layerwise_optimizer import exact_paths_pattern
from keras_transfer.schedules import StepOffset


class StagedUnfreezing(keras.callbacks.Callback):
    """Unfreezes layers at given epochs, inside one `model.fit`.

    At the start of each stage's epoch the selected layers are made
    trainable and the change really takes effect in the same `fit` on the
    TensorFlow, JAX and PyTorch backends: the optimizer is rebuilt for the new
    trainable variables while keeping its state (`iterations`, and the
    momentum / Adam `m`, `v` of every variable it already trained; new
    variables start with zero slots), and the train function is re-made
    (one retrace / recompile per stage on TensorFlow and JAX). Frozen layers
    cost no optimizer memory: slots exist only for trainable variables.

    BatchNormalization layers in a stage stay frozen (inference mode, moving
    statistics fixed) unless `train_bn=True`.

    Runs resumed by `keras.callbacks.BackupAndRestore` re-apply every stage
    up to the restored epoch and then restore the saved optimizer state, so
    they end where an uninterrupted run ends. Put `StagedUnfreezing` *before*
    `BackupAndRestore` in `callbacks`.

    Args:
        stages: Dict mapping an epoch (int `>= 0`) to a layer selector (see
            `keras_transfer.freezing.select_layers`; use a list for a union)
            or to a tuple `(selector, lr_factor)`. With `lr_factor` the
            newly unfrozen variables train at `learning_rate * lr_factor`;
            this needs a `keras_transfer.optimizers.LayerwiseOptimizer`.
            No layer may be unfrozen by two stages.
        target: The model whose layers the selectors name (e.g. the
            backbone). Defaults to `None`: the model being fit.
        train_bn: Bool. Also train the BatchNormalization layers of a stage.
            Defaults to `False`.
        restart_schedule: Bool. If the learning rate is a
            `LearningRateSchedule`, restart it at each stage: from the
            stage's first step on it is fed `iterations - iterations_at_stage`.
            Defaults to `False`.
        verbose: Int. `1` prints a line per stage when it is applied: the
            epoch (1-based, as Keras prints it), the layers unfrozen, the
            learning rate at that step. Defaults to `0`.

    Example:

    ```python
    x, y = keras_transfer.datasets.load_builtin("digits", "train", 16)
    base = keras_transfer.models.cnn_features((16, 16, 3))  # layers conv0.., conv1..
    keras_transfer.freeze(base)
    model = keras.Sequential([base, keras.layers.Dense(10)])
    model.compile(
        optimizer=keras_transfer.optimizers.LayerwiseOptimizer("adam"),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    # Epoch 0: head only; epoch 1: + last block; epoch 2: + first block at lr/10.
    model.fit(
        x[:64],
        y[:64],
        batch_size=32,
        epochs=3,
        verbose=0,
        callbacks=[
            keras_transfer.callbacks.StagedUnfreezing(
                {1: "*1", 2: ("*0", 0.1)}, target=base
            )
        ],
    )
    ```

    Reference:
        - [Howard and Ruder, 2018](https://arxiv.org/abs/1801.06146)
          (gradual unfreezing)
    """

    def __init__(
        self,
        stages,
        target=None,
        train_bn=False,
        restart_schedule=False,
        verbose=0,
    ):
        super().__init__()
        self.stages = _validate_stages(stages)
        self.target = target
        self.train_bn = bool(train_bn)
        self.restart_schedule = bool(restart_schedule)
        self.verbose = verbose
        self._first_epoch = True
        self._stashed_state = {}
        self._original_schedule = None

    def on_train_begin(self, logs=None):
        self._first_epoch = True
        self._stashed_state = {}
        self.restore_schedule(self.model)
        self.check_selectors(self.model)
        self.warn_late_stages((self.params or {}).get("epochs"))
        self._check_not_restored_yet(self.model)
        self._stash_mismatched_loads(self.model.optimizer)

    def on_epoch_begin(self, epoch, logs=None):
        self.enter_epoch(self.model, epoch, first=self._first_epoch)
        self._first_epoch = False

    def on_train_end(self, logs=None):
        self.restore_schedule(self.model)

    def check_selectors(self, model):
        """Raises `ValueError` if a selector matches nothing or overlaps."""
        target = self.target if self.target is not None else model
        owner = {}
        for epoch, (selector, _) in sorted(self.stages.items()):
            for layer in freezing.select_layers(target, selector):
                if id(layer) in owner:
                    raise ValueError(
                        f"Layer '{layer.name}' is selected by the stages at "
                        f"epochs {owner[id(layer)]} and {epoch}. Each layer "
                        "may be unfrozen by one stage only. Received: "
                        f"stages={self.stages!r}"
                    )
                owner[id(layer)] = epoch

    def warn_late_stages(self, epochs):
        """Warns about stages at or after `epochs`: a run that long never reaches them.

        Args:
            epochs: Integer, the `epochs` of the `fit` call, or `None`.
        """
        late = sorted(e for e in self.stages if epochs is not None and e >= epochs)
        if late:
            warnings.warn(
                f"StagedUnfreezing: the stage(s) at epoch(s) {late} never run "
                f"in a fit of epochs={epochs} (epochs are 0-based): their "
                "layers stay frozen. Train longer or move the stages earlier.",
                stacklevel=2,
            )

    def enter_epoch(self, model, epoch, first):
        """Applies the stages due at `epoch` and re-syncs the training state.

        Args:
            model: The model being trained.
            epoch: The epoch about to start.
            first: Whether it is the first epoch of this `fit`; then every
                stage up to `epoch` is applied (resumed and continued runs).
        """
        due = sorted(
            e for e in self.stages if (e <= epoch if first else e == epoch)
        )
        for stage_epoch in due:
            self._unfreeze(model, stage_epoch)
        changed = self._sync_optimizer(model)
        restored = self._restore_stash(model.optimizer)
        restarted = self._restart_schedule(model, epoch, first)
        if changed or restored or restarted:
            model.make_train_function(force=True)
            _keras_compat.resync_jax_state(model)
        if due and self.verbose:
            self._report(model, epoch, due)

    def _report(self, model, epoch, due):
        """Prints what the stages due at `epoch` unfroze and the learning rate."""
        target = self.target if self.target is not None else model
        optimizer = _keras_compat.innermost_optimizer(model.optimizer)
        rate = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        for stage_epoch in due:
            selector, lr_factor = self.stages[stage_epoch]
            names = [layer.name for layer in freezing.select_layers(target, selector)]
            shown = ", ".join(names[:4]) + (f", ... ({len(names)} layers)" if len(names) > 4 else "")
            factor = f" x {lr_factor:g} for these layers" if lr_factor != 1.0 else ""
            print(
                f"StagedUnfreezing: epoch {epoch + 1} (stages[{stage_epoch}]): "
                f"unfroze {selector!r}: {shown}; learning rate {rate:.3g}{factor}; "
                f"{len(model.trainable_variables)} trainable variables.",
                flush=True,
            )

    def _check_not_restored_yet(self, model):
        restored = _keras_compat.restored_epoch(model)
        optimizer = model.optimizer
        if not restored or not optimizer.built:
            return
        for stage_epoch in sorted(e for e in self.stages if e <= restored):
            self._unfreeze(model, stage_epoch)
        wanted = [id(v) for v in model.trainable_variables]
        built = _keras_compat.built_variables(optimizer)
        if wanted != [id(v) for v in built]:
            raise ValueError(
                f"`BackupAndRestore` restored epoch {restored} before "
                "`StagedUnfreezing` could prepare the optimizer for that "
                "epoch's trainable variables, so Keras skipped the saved "
                "optimizer state. Put `StagedUnfreezing` before "
                "`BackupAndRestore` in `callbacks`."
            )

    def _unfreeze(self, model, stage_epoch):
        selector, lr_factor = self.stages[stage_epoch]
        target = self.target if self.target is not None else model
        layers = freezing.select_layers(target, selector)
        freezing.unfreeze(model, layers, train_bn=self.train_bn)
        if lr_factor == 1.0:
            return
        layerwise = _find_layerwise(model.optimizer)
        if layerwise is None:
            raise ValueError(
                f"The stage at epoch {stage_epoch} has lr_factor={lr_factor}, "
                "which needs per-group learning rates: compile the model "
                "with `keras_transfer.optimizers.LayerwiseOptimizer(...)`. "
                f"Received: optimizer={model.optimizer.__class__.__name__}"
            )
        paths = [v.path for layer in layers for v in layer.trainable_variables]
        group = (exact_paths_pattern(paths), float(lr_factor))
        if paths and group not in layerwise.groups:
            layerwise.add_group(*group)

    def _sync_optimizer(self, model):
        optimizer = model.optimizer
        if not optimizer.built:
            return False
        wanted = list(model.trainable_variables)
        known = _keras_compat.built_variables(optimizer)
        layerwise = _find_layerwise(optimizer)
        same_vars = [id(v) for v in wanted] == [id(v) for v in known]
        same_factors = layerwise is None or all(
            layerwise.factor_of_variable(v) == layerwise.factor_for(v.path)
            for v in wanted
        )
        if same_vars and same_factors:
            return False
        strategy = None
        if keras.backend.backend() == "tensorflow":
            strategy = model.distribute_strategy
        _keras_compat.rebuild_optimizer(
            optimizer, wanted, distribute_strategy=strategy
        )
        return True

    def _stash_mismatched_loads(self, optimizer):
        """Keeps optimizer state that `load_weights` would skip.

        `BackupAndRestore` loads the checkpoint at `on_train_begin`, while the
        optimizer still tracks the first stage's variables; Keras would skip
        the optimizer state (count mismatch). The state is kept here and
        assigned once the stages are re-applied at the first epoch.
        """
        for part in _keras_compat.optimizer_parts(optimizer):
            _keras_compat.intercept_load_own_variables(
                part, self._load_or_stash(part)
            )

    def _load_or_stash(self, part):
        def load(store, original):
            if len(store.keys()) == len(part.variables):
                original(store)
            else:
                self._stashed_state[id(part)] = [
                    np.array(store[str(i)]) for i in range(len(store.keys()))
                ]

        return load

    def _restore_stash(self, optimizer):
        parts = _keras_compat.optimizer_parts(optimizer)
        for part in parts:
            _keras_compat.release_load_own_variables(part)
        stash, self._stashed_state = self._stashed_state, {}
        for part in parts:
            values = stash.get(id(part))
            if values is None:
                continue
            if len(values) != len(part.variables):
                raise ValueError(
                    f"The restored checkpoint has {len(values)} variables "
                    f"for optimizer '{part.name}', but after re-applying the "
                    f"stages it tracks {len(part.variables)}. Resume with the "
                    "same model, optimizer and `stages` as the saved run."
                )
            for variable, value in zip(part.variables, values):
                variable.assign(value)
        return bool(stash)

    def _restart_schedule(self, model, epoch, first):
        if not self.restart_schedule:
            return False
        started = [e for e in self.stages if e <= epoch]
        if not started or not (first or epoch in self.stages):
            return False
        optimizer = _keras_compat.innermost_optimizer(model.optimizer)
        schedule = self._original_schedule or _keras_compat.raw_learning_rate(
            optimizer
        )
        if not isinstance(
            schedule, keras.optimizers.schedules.LearningRateSchedule
        ):
            raise ValueError(
                "`restart_schedule=True` needs an optimizer whose "
                "learning_rate is a `keras.optimizers.schedules."
                "LearningRateSchedule`. Received: learning_rate="
                f"{schedule!r}"
            )
        steps = int(keras.ops.convert_to_numpy(optimizer.iterations))
        done_in_stage = epoch - max(started)
        if done_in_stage:
            steps_per_epoch = (self.params or {}).get("steps")
            if not steps_per_epoch:
                raise ValueError(
                    "`restart_schedule=True` cannot resume in the middle of "
                    "a stage without a known number of steps per epoch; "
                    "pass `steps_per_epoch` to `fit`."
                )
            steps -= done_in_stage * steps_per_epoch
        self._original_schedule = schedule
        _keras_compat.set_raw_learning_rate(
            optimizer, StepOffset(schedule, steps)
        )
        return True

    def restore_schedule(self, model):
        """Puts back the learning-rate schedule `restart_schedule` wrapped."""
        if self._original_schedule is not None:
            _keras_compat.set_raw_learning_rate(
                _keras_compat.innermost_optimizer(model.optimizer),
                self._original_schedule,
            )
            self._original_schedule = None


def _find_layerwise(optimizer):
    for part in _keras_compat.optimizer_parts(optimizer):
        if isinstance(part, LayerwiseOptimizer):
            return part
    return None


def _validate_stages(stages):
    if not isinstance(stages, dict) or not stages:
        raise ValueError(
            "Invalid value received for argument `stages`. Expected a "
            "non-empty dict {epoch: selector or (selector, lr_factor)}. "
            f"Received: stages={stages!r}"
        )
    validated = {}
    for epoch, value in stages.items():
        if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral):
            raise ValueError(
                "Invalid value received for argument `stages`. Epoch keys "
                f"must be ints >= 0. Received: epoch={epoch!r}"
            )
        if epoch < 0:
            raise ValueError(
                "Invalid value received for argument `stages`. Epoch keys "
                f"must be >= 0. Received: epoch={epoch}"
            )
        selector, lr_factor = value, 1.0
        if isinstance(value, tuple):
            if len(value) != 2:
                raise ValueError(
                    "Invalid value received for argument `stages`. A tuple "
                    "stage must be (selector, lr_factor); use a list for a "
                    f"union of selectors. Received: {epoch}: {value!r}"
                )
            selector, lr_factor = value
            check_number(f"stages[{epoch}] lr_factor", lr_factor, above=0)
        validated[int(epoch)] = (selector, float(lr_factor))
    return validated
