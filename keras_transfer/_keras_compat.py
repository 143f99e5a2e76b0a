"""The one place where keras-transfer touches private Keras attributes.

Keras has no public API for a few things transfer learning needs: rebuilding
an optimizer for a new set of trainable variables inside one `fit`, swapping
the learning rate of a schedule-driven optimizer and back, walking a layer's
sub-layers, reading the epoch `BackupAndRestore` restored, and telling the JAX
trainer that a callback changed the model's state. Every such access lives in
this module; each function names the Keras source file (relative to
`keras/src/`) whose internals it relies on, and `check_assumptions()` verifies
all of them against the installed Keras (the test suite runs it, so an
upgrade that breaks one fails loudly, naming the Keras version).

Nothing outside this module reads, writes or replaces a private attribute or
method of a Keras object.
"""

import keras

# Private names this module relies on, by the Keras source file defining them.
KERAS_INTERNALS = {
    "optimizers/base_optimizer.py": (
        "BaseOptimizer._learning_rate",
        "BaseOptimizer._iterations",
        "BaseOptimizer._variables",
        "BaseOptimizer._trainable_variables",
        "BaseOptimizer._trainable_variables_indices",
        "BaseOptimizer._track_variable",
        "BaseOptimizer._tracker",
        "BaseOptimizer._var_key",
        "BaseOptimizer._backend_update_step",
        "BaseOptimizer._apply_weight_decay",
        "BaseOptimizer._get_current_learning_rate",
    ),
    "layers/layer.py": (
        "Layer._flatten_layers",
        "Layer._trainable_variables",
    ),
    "ops/operation.py": ("Operation._inbound_nodes",),
    "trainers/trainer.py + callbacks/backup_and_restore.py": (
        "Trainer._initial_epoch",
    ),
    "backend/jax/trainer.py": ("JAXTrainer._jax_state_synced",),
    "utils/tracking.py": ("DotNotTrackScope", "Tracker.config", "Tracker.stored_ids"),
}


# --- Optimizers: keras/src/optimizers/base_optimizer.py ---------------------


def optimizer_parts(optimizer):
    """The optimizer followed by its `inner_optimizer` chain.

    `LossScaleOptimizer` (keras/src/optimizers/loss_scale_optimizer.py) and
    `keras_transfer.optimizers.LayerwiseOptimizer` wrap another optimizer in
    the public attribute `inner_optimizer`.
    """
    parts = [optimizer]
    while hasattr(parts[-1], "inner_optimizer"):
        parts.append(parts[-1].inner_optimizer)
    return parts


def innermost_optimizer(optimizer):
    """Follows `inner_optimizer` links to the optimizer that does updates."""
    return optimizer_parts(optimizer)[-1]


def raw_learning_rate(optimizer):
    """What the optimizer reads its rate from: a Variable, schedule or callable.

    `BaseOptimizer._learning_rate`. The public `learning_rate` property
    evaluates it, and its setter cannot put a Variable back once a schedule
    was set, so swapping a rate temporarily needs the raw attribute.
    """
    return optimizer._learning_rate


def set_raw_learning_rate(optimizer, learning_rate):
    """Sets `BaseOptimizer._learning_rate` without the setter's checks."""
    optimizer._learning_rate = learning_rate


def reset_iterations(optimizer):
    """Sets the step counter (`BaseOptimizer._iterations`) to 0.

    The public `iterations` is `_iterations // gradient_accumulation_steps`
    when accumulating, so it cannot be assigned to.
    """
    optimizer._iterations.assign(0)


def built_variables(optimizer):
    """The trainable variables `optimizer.build` last received.

    `BaseOptimizer._trainable_variables`.
    """
    return list(optimizer._trainable_variables)


def variable_key(optimizer, variable):
    """The optimizer's stable key of a model variable (`_var_key`)."""
    return optimizer._var_key(variable)


def replace_update_methods(optimizer, update_step, weight_decay, current_lr):
    """Replaces three per-instance update methods of `optimizer`.

    Each argument is a function taking the original bound method and
    returning its replacement, for `BaseOptimizer._backend_update_step`
    (`(grads, variables, learning_rate)`), `_apply_weight_decay`
    (`(variables)`) and `_get_current_learning_rate` (`()`). Keras calls them
    from `apply` (keras/src/optimizers/base_optimizer.py) on every backend.
    """
    originals = (
        optimizer._backend_update_step,
        optimizer._apply_weight_decay,
        optimizer._get_current_learning_rate,
    )
    optimizer._backend_update_step = update_step(originals[0])
    optimizer._apply_weight_decay = weight_decay(originals[1])
    optimizer._get_current_learning_rate = current_lr(originals[2])


def intercept_load_own_variables(optimizer, handler):
    """Routes `optimizer.load_own_variables(store)` to `handler(store, original)`.

    `BaseOptimizer.load_own_variables` skips (with only a warning) a saved
    state whose variable count differs; `StagedUnfreezing` keeps such state
    until the stages are re-applied. Undo with `release_load_own_variables`.
    """
    original = optimizer.load_own_variables

    def load_own_variables(store):
        return handler(store, original)

    optimizer.load_own_variables = load_own_variables


def release_load_own_variables(optimizer):
    """Removes an `intercept_load_own_variables` replacement, if any."""
    if "load_own_variables" in vars(optimizer):
        del optimizer.load_own_variables


def rebuild_optimizer(optimizer, variables, distribute_strategy=None):
    """Rebuilds a built `optimizer` for `variables`, keeping state by slot name.

    Keras optimizers create their per-variable slots (momentum, Adam's
    `m`/`v`, EMA averages, gradient accumulators) in `build(var_list)` and
    refuse variables they were not built with. This re-runs `build` on the
    *same* instance and carries every piece of state over: `iterations` and
    the learning-rate variable are kept as they are, and each new slot takes
    the value of the old slot with the same name (Keras names a slot
    `<variable path>_<slot name>`). Slots of new variables start at their
    initial value (zeros); slots of variables that left the list are dropped.

    Args:
        optimizer: A built `keras.optimizers.Optimizer`, possibly a wrapper
            with an `inner_optimizer`.
        variables: The new list of trainable `keras.Variable`s.
        distribute_strategy: On TensorFlow, the strategy whose scope the new
            slot variables are created in (`model.distribute_strategy`).

    Returns:
        The number of optimizer variables that took over an old value.
    """
    old = [v for v in optimizer.variables if not _is_kept(optimizer, v)]
    by_name = {}
    for variable in old:
        if variable.name in by_name:
            raise ValueError(
                "Cannot rebuild the optimizer while keeping its state: two "
                f"optimizer variables are both named '{variable.name}', so "
                "their model variables cannot be told apart. Give the "
                "model's layers unique names."
            )
        by_name[variable.name] = variable
    for part in optimizer_parts(optimizer):
        _forget_build(part)
    if distribute_strategy is not None:
        with distribute_strategy.scope():
            optimizer.build(list(variables))
    else:
        optimizer.build(list(variables))
    carried = 0
    for variable in optimizer.variables:
        previous = by_name.get(variable.name)
        if previous is None or previous is variable:
            continue
        if tuple(previous.shape) != tuple(variable.shape):
            raise ValueError(
                f"Cannot carry optimizer state '{variable.name}' over: its "
                f"shape changed from {tuple(previous.shape)} to "
                f"{tuple(variable.shape)}."
            )
        variable.assign(previous.value)
        carried += 1
    return carried


def _constructor_variables(optimizer):
    """The variables an optimizer creates in `__init__`, not in `build`."""
    kept = [optimizer._iterations]
    if isinstance(optimizer._learning_rate, keras.Variable):
        kept.append(optimizer._learning_rate)
    return kept


def _is_kept(optimizer, variable):
    return any(
        variable is kept
        for part in optimizer_parts(optimizer)
        for kept in _constructor_variables(part)
    )


def _forget_build(optimizer):
    """Undoes `BaseOptimizer.build`, keeping the constructor's variables."""
    kept = _constructor_variables(optimizer)
    # A fresh list rather than `del optimizer._variables[:]`: on TensorFlow the
    # attribute is a tracking `ListWrapper`, which refuses to be saved (a
    # SavedModel export of the model) once an element was deleted. The
    # optimizer's `Tracker` appends to the list object it was given, so it is
    # pointed at the new one.
    from keras.src.utils import tracking  # DotNotTrackScope: keras/src/utils/tracking.py

    is_variable, _ = optimizer._tracker.config["variables"]
    with tracking.DotNotTrackScope():  # A plain (TensorFlow: tracked) list, as __init__ makes.
        optimizer._variables = []
    optimizer._tracker.config["variables"] = (is_variable, optimizer._variables)
    optimizer._tracker.stored_ids["variables"] = set()
    for variable in kept:
        optimizer._track_variable(variable)
    optimizer._trainable_variables = []
    optimizer._trainable_variables_indices = {}
    optimizer.built = False


# --- Layers: keras/src/layers/layer.py --------------------------------------


def direct_sublayers(layer):
    """The layers a layer tracks directly (`Layer._flatten_layers`).

    `keras.Model.layers` lists them for models; a plain composite layer (a
    head holding Dense layers) has no public equivalent.
    """
    return list(layer._flatten_layers(include_self=False, recursive=False))


def all_sublayers(layer, include_self=True):
    """Every layer below `layer`, depth first (`Layer._flatten_layers`)."""
    return list(layer._flatten_layers(include_self=include_self))


def created_trainable_variables(layer):
    """Variables created trainable below `layer`, frozen or not.

    `layer.trainable_weights` hides the weights of frozen layers; Keras
    keeps them all in each layer's `_trainable_variables` (the `trainable`
    setter walks the same list).
    """
    variables, seen = [], set()
    for sublayer in all_sublayers(layer):
        for variable in sublayer._trainable_variables:
            if id(variable) not in seen:
                seen.add(id(variable))
                variables.append(variable)
    return variables


def call_inputs(layer):
    """The input tensors of every symbolic call of `layer` (`Operation._inbound_nodes`).

    For a functional model nested in another, `layer.input` is the nested
    model's own `Input`, not the tensor the outer graph calls it on, which
    AdaBN needs. One list of input `KerasTensor`s per call, in call order
    (each `Node.input_tensors`, keras/src/ops/node.py).
    """
    return [list(node.input_tensors) for node in layer._inbound_nodes]


# --- Trainers: keras/src/trainers/trainer.py, keras/src/backend/jax/trainer.py


def restored_epoch(model):
    """The epoch `BackupAndRestore` restored, or `None`.

    `keras.callbacks.BackupAndRestore.on_train_begin` sets
    `model._initial_epoch` (keras/src/callbacks/backup_and_restore.py), and
    every backend's `fit` starts from it.
    """
    return getattr(model, "_initial_epoch", None)


def resync_jax_state(model):
    """Makes the JAX trainer re-read every variable at its next batch.

    The JAX `fit` (keras/src/backend/jax/trainer.py) carries the state in
    Python values between batches and re-reads the variables only when
    `_jax_state_synced` is true; a callback that changed variables or the
    optimizer's variable list must set it. A no-op on other backends.
    """
    if keras.backend.backend() == "jax":
        model._jax_state_synced = True


# --- Verification -------------------------------------------------------------


def check_assumptions():
    """Verifies every private Keras name this module uses, on this Keras.

    Raises:
        RuntimeError: naming the Keras version and each broken assumption.
    """
    problems = []

    def expect(what, probe):
        try:
            held = probe()
        except Exception as error:  # A missing name raises; report it.
            held = False
            what = f"{what} ({type(error).__name__}: {error})"
        if not held:
            problems.append(what)

    optimizer = keras.optimizers.Adam(1e-3)
    variable = keras.Variable(keras.ops.zeros((2,)), name="probe")
    expect(
        "BaseOptimizer._learning_rate holds the learning-rate Variable",
        lambda: isinstance(raw_learning_rate(optimizer), keras.Variable),
    )
    expect(
        "BaseOptimizer._iterations is the step Variable",
        lambda: isinstance(optimizer._iterations, keras.Variable),
    )
    for name in (
        "_track_variable",
        "_var_key",
        "_backend_update_step",
        "_apply_weight_decay",
        "_get_current_learning_rate",
    ):
        expect(
            f"BaseOptimizer.{name} is a method",
            lambda name=name: callable(getattr(optimizer, name)),
        )

    def build_and_rebuild():
        optimizer.build([variable])
        assert built_variables(optimizer) == [variable]
        assert isinstance(optimizer._trainable_variables_indices, dict)
        assert optimizer._variables == optimizer.variables
        assert optimizer._tracker.config["variables"][1] is optimizer._variables
        rebuild_optimizer(optimizer, [variable])
        assert optimizer._tracker.config["variables"][1] is optimizer._variables
        # iterations, learning rate, and Adam's m and v of the one variable.
        return len(optimizer.variables) == 4

    expect(
        "BaseOptimizer.build fills _trainable_variables, "
        "_trainable_variables_indices and _variables, and a rebuild keeps "
        "iterations and the learning rate",
        build_and_rebuild,
    )

    layer = keras.layers.Dense(1)
    layer.build((None, 2))
    inputs = keras.Input((2,))
    model = keras.Model(inputs, layer(inputs))
    expect(
        "Layer._trainable_variables lists the created trainable variables",
        lambda: [v.path for v in created_trainable_variables(layer)]
        == [v.path for v in layer.trainable_variables],
    )
    expect(
        "Layer._flatten_layers(recursive=False) lists a model's layers",
        lambda: direct_sublayers(model) == model.layers,
    )
    outer_inputs = keras.Input((2,))
    keras.Model(outer_inputs, model(outer_inputs))
    expect(
        "Operation._inbound_nodes lists the call of a nested model in the outer graph",
        lambda: [c[0] is outer_inputs for c in call_inputs(model)] == [True],
    )
    expect(
        "Trainer._initial_epoch exists (BackupAndRestore sets it)",
        lambda: hasattr(model, "_initial_epoch"),
    )
    if keras.backend.backend() == "jax":
        expect(
            "JAXTrainer._jax_state_synced exists",
            lambda: hasattr(model, "_jax_state_synced"),
        )
    if problems:
        raise RuntimeError(
            "keras-transfer relies on Keras internals that Keras "
            f"{keras.__version__} ({keras.backend.backend()} backend) does "
            "not provide as expected: " + "; ".join(problems) + ". See "
            "keras_transfer/_keras_compat.py for the Keras source files "
            "involved."
        )
