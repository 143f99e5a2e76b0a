import fnmatch
import numbers
import re
import threading

import keras

from keras_transfer import _keras_compat
from keras_transfer._validation import check_number


@keras.saving.register_keras_serializable(package="keras_transfer")
class LayerwiseOptimizer(keras.optimizers.Optimizer):
    """Per-group learning rates (discriminative fine-tuning) for any optimizer.

    Wraps a Keras optimizer and runs its update for each group of variables
    with the learning rate multiplied by the group's factor:

    ```python
    update(variable) = inner_update(grad, variable, lr * factor(variable))
    ```

    The *update* is scaled, never the gradient, so adaptive optimizers stay
    correct: Adam's `m`/`v` see the true gradient and a group with factor
    0.1 moves exactly 0.1 times as far as with factor 1. Decoupled weight
    decay (`AdamW`) is scaled by the same factor. Each variable keeps its own
    optimizer state, created by the inner optimizer as usual.

    A variable's factor is the one of the first group whose pattern matches
    its `variable.path` (an fnmatch pattern, or `"re:<regex>"` for a full
    regular-expression match), else `default_factor`. Patterns are plain
    strings, so the optimizer serializes with `model.compile` configs and
    `.keras` files; `layer_decay_groups` builds them from a model.

    Args:
        optimizer: A `keras.optimizers.Optimizer` instance (or its string
            name) that does the updates.
        groups: List of `(pattern, factor)` pairs. `factor` is a float `>= 0`.
            Defaults to `None` (no groups).
        default_factor: Float `>= 0`. Factor of variables no group matches.
            Defaults to `1.0`.
        name: String. Name of the optimizer.

    Example:

    ```python
    inputs = keras.Input((4,))
    features = keras.layers.Dense(8, name="backbone")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, name="head")(features))
    print([v.path for v in model.trainable_variables])
    # ['backbone/kernel', 'backbone/bias', 'head/kernel', 'head/bias']

    optimizer = keras_transfer.optimizers.LayerwiseOptimizer(
        keras.optimizers.Adam(1e-3),
        groups=[("backbone/*", 0.1)],  # backbone at 1e-4, the rest at 1e-3
    )
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(np.random.rand(8, 4), np.arange(8) % 3, epochs=1, verbose=0)
    ```

    Reference:
        - [Howard and Ruder, 2018](https://arxiv.org/abs/1801.06146)
          (discriminative fine-tuning)
    """

    def __init__(self, optimizer, groups=None, default_factor=1.0, name=None):
        super().__init__(learning_rate=0.0, name=name)
        self.inner_optimizer = keras.optimizers.get(optimizer)
        self.groups = [_validate_group(group) for group in (groups or [])]
        self.default_factor = _validate_factor(default_factor, "default_factor")
        self._factors = {}
        _install_grouped_updates(
            _keras_compat.innermost_optimizer(self.inner_optimizer),
            self.factor_of_variable,
        )

    def build(self, var_list):
        self.inner_optimizer.build(var_list)
        self._factors = {
            _keras_compat.variable_key(self.inner_optimizer, v): (
                self.factor_for(v.path)
            )
            for v in var_list
        }
        super().build(var_list)

    def factor_for(self, path):
        """Returns the learning-rate factor of the variable at `path`."""
        for pattern, factor in self.groups:
            if _matches(pattern, path):
                return factor
        return self.default_factor

    def add_group(self, pattern, factor):
        """Puts a group in front of the others; takes effect at `build`."""
        self.groups.insert(0, _validate_group((pattern, factor)))

    @property
    def variables(self):
        return super().variables + self.inner_optimizer.variables

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        self.inner_optimizer.learning_rate = learning_rate

    @property
    def iterations(self):
        return self.inner_optimizer.iterations

    def apply(self, grads, trainable_variables=None):
        if not self.built:
            with keras.name_scope(self.name, caller=self):
                self.build(trainable_variables)
        self.inner_optimizer.apply(grads, trainable_variables)

    def factor_of_variable(self, variable):
        """The factor the last `build` gave `variable` (default if unknown)."""
        key = _keras_compat.variable_key(self.inner_optimizer, variable)
        return self._factors.get(key, self.default_factor)

    def finalize_variable_values(self, var_list):
        self.inner_optimizer.finalize_variable_values(var_list)

    def get_config(self):
        return {
            "name": self.name,
            "optimizer": keras.saving.serialize_keras_object(
                self.inner_optimizer
            ),
            "groups": [list(group) for group in self.groups],
            "default_factor": self.default_factor,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["optimizer"] = keras.saving.deserialize_keras_object(
            config["optimizer"], custom_objects=custom_objects
        )
        return cls(**config)


def _install_grouped_updates(optimizer, factor_of):
    """Makes `optimizer` run its update and weight decay per factor group.

    Three methods of the instance are replaced once, at construction:
    `_backend_update_step` runs once per group with `learning_rate * factor`,
    and `_apply_weight_decay` once per group while
    `_get_current_learning_rate` returns the rate times that group's factor.
    They are plain Python wrappers, so `tf.function` and `jax.jit` trace one
    update per group; the active factor is thread-local because
    `tf.distribute.MirroredStrategy` runs replicas in threads.
    """
    active = threading.local()

    def split(values, variables):
        groups = {}
        for value, variable in zip(values, variables):
            g, v = groups.setdefault(factor_of(variable), ([], []))
            g.append(value)
            v.append(variable)
        return groups

    def grouped_update_step(update_step):
        def step(grads, variables, learning_rate):
            for factor, (g, v) in split(grads, variables).items():
                update_step(g, v, learning_rate * factor)

        return step

    def grouped_weight_decay(weight_decay):
        def decay(variables):
            for factor, (_, v) in split(variables, variables).items():
                active.factor = factor
                try:
                    weight_decay(v)
                finally:
                    active.factor = 1.0

        return decay

    def scaled_learning_rate(current_lr):
        def rate():
            factor = getattr(active, "factor", 1.0)
            if factor == 1.0:
                return current_lr()
            return current_lr() * factor

        return rate

    _keras_compat.replace_update_methods(
        optimizer, grouped_update_step, grouped_weight_decay, scaled_learning_rate
    )


def layer_decay_groups(model, decay, blocks=None):
    """Layer-wise learning-rate decay groups, top block first.

    The top block trains at factor 1 and each block below at `decay` times
    the one above it (ELECTRA / BEiT layer-wise LR decay):

    ```python
    factor(block_i) = decay ** (num_blocks - 1 - i)   # i = 0 is the bottom
    ```

    Args:
        model: A built `keras.Model`.
        decay: Float in `(0, 1]`.
        blocks: List of layer selectors (see
            `keras_transfer.freezing.select_layers`), bottom to top. Defaults
            to `None`: each top-level layer that has weights is a block.

    Returns:
        A list of `(pattern, factor)` pairs for `LayerwiseOptimizer(groups=)`.

    Example:

    ```python
    model = keras.Sequential([
        keras.Input((4,)),
        keras.layers.Dense(8, name="bottom"),
        keras.layers.Dense(8, name="middle"),
        keras.layers.Dense(3, name="top"),
    ])
    groups = keras_transfer.optimizers.layer_decay_groups(model, 0.8)
    print([factor for _, factor in groups])  # top first: [1.0, 0.8, 0.64]
    optimizer = keras_transfer.optimizers.LayerwiseOptimizer("adam", groups)
    model.compile(optimizer=optimizer, loss="mse")
    ```
    """
    from keras_transfer.freezing import select_layers

    if (
        isinstance(decay, bool)
        or not isinstance(decay, numbers.Real)
        or not 0.0 < decay <= 1.0
    ):
        raise ValueError(
            "Invalid value received for argument `decay`. Expected a float "
            f"in (0, 1]. Received: decay={decay!r}"
        )
    if blocks is None:
        block_layers = [[layer] for layer in model.layers if layer.weights]
    else:
        if not isinstance(blocks, (list, tuple)) or not blocks:
            raise ValueError(
                "Invalid value received for argument `blocks`. Expected a "
                "non-empty list of layer selectors, bottom to top. "
                f"Received: blocks={blocks!r}"
            )
        block_layers = [select_layers(model, block) for block in blocks]
    owner = {}
    groups = []
    num_blocks = len(block_layers)
    for index, layers in enumerate(block_layers):
        paths = []
        for layer in layers:
            for variable in layer.weights:
                if variable.path in owner and owner[variable.path] != index:
                    raise ValueError(
                        f"Variable '{variable.path}' belongs to blocks "
                        f"{owner[variable.path]} and {index}; blocks must "
                        f"not overlap. Received: blocks={blocks!r}"
                    )
                owner[variable.path] = index
                paths.append(variable.path)
        if paths:
            groups.append(
                (
                    exact_paths_pattern(paths),
                    float(decay) ** (num_blocks - 1 - index),
                )
            )
    return groups[::-1]


def exact_paths_pattern(paths):
    """A `"re:"` pattern that matches exactly the given variable paths."""
    unique = list(dict.fromkeys(paths))
    return "re:(?:" + "|".join(re.escape(p) for p in unique) + ")"


def _matches(pattern, path):
    if pattern.startswith("re:"):
        return re.fullmatch(pattern[3:], path) is not None
    return fnmatch.fnmatchcase(path, pattern)


def _validate_factor(factor, argument):
    return float(check_number(argument, factor, minimum=0))


def _validate_group(group):
    if not isinstance(group, (list, tuple)) or len(group) != 2:
        raise ValueError(
            "Invalid value received for argument `groups`. Each group must be "
            f"a (pattern, factor) pair. Received: {group!r}"
        )
    pattern, factor = group
    if not isinstance(pattern, str) or not pattern:
        raise ValueError(
            "Invalid value received for argument `groups`. A group's pattern "
            "must be a non-empty str (fnmatch over variable paths, or "
            f"'re:<regex>'). Received: pattern={pattern!r}"
        )
    if pattern.startswith("re:"):
        try:
            re.compile(pattern[3:])
        except re.error as e:
            raise ValueError(
                f"Invalid regular expression in group pattern {pattern!r}: {e}."
            ) from e
    return (pattern, _validate_factor(factor, "factor"))
