"""Rebuilds a built Keras optimizer for a new set of trainable variables.

Keras optimizers create their per-variable slots (momentum, Adam's `m`/`v`,
EMA averages, gradient accumulators) in `build(var_list)` and refuse
variables they were not built with. `rebuild_optimizer` re-runs `build` on
the *same* optimizer instance for a new variable list and carries every piece
of state over: `iterations` and the learning-rate variable are kept as they
are, and each new slot takes the value of the old slot with the same name
(Keras names a slot `<variable path>_<slot name>`, so the name identifies the
model variable and the slot). Slots of variables that are new start at their
initial value (zeros); slots of variables that left the list are dropped.
"""

import keras


def rebuild_optimizer(optimizer, variables, distribute_strategy=None):
    """Rebuilds `optimizer` for `variables`, keeping state by slot name.

    Args:
        optimizer: A built `keras.optimizers.Optimizer`, possibly a wrapper
            with an `inner_optimizer` (`LossScaleOptimizer`,
            `keras_transfer.optimizers.LayerwiseOptimizer`).
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


def innermost_optimizer(optimizer):
    """Follows `inner_optimizer` links to the optimizer that does updates."""
    return optimizer_parts(optimizer)[-1]


def optimizer_parts(optimizer):
    """The optimizer followed by its `inner_optimizer` chain."""
    parts = [optimizer]
    while hasattr(parts[-1], "inner_optimizer"):
        parts.append(parts[-1].inner_optimizer)
    return parts


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
    kept = _constructor_variables(optimizer)
    del optimizer._variables[:]
    for variable in kept:
        optimizer._track_variable(variable)
    optimizer._trainable_variables = []
    optimizer._trainable_variables_indices = {}
    optimizer.built = False
