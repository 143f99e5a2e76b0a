"""Freeze and unfreeze layers by selector, keeping BatchNormalization correct.

Keras 3 decides two things from `layer.trainable`:

* which variables the optimizer updates (`model.trainable_variables` only
  returns a variable when it *and every enclosing layer* are trainable), and
* whether a `BatchNormalization` layer runs in inference mode: it updates its
  moving statistics only when `training and self.trainable`.

Calling a frozen base as `base(x, training=False)` is *not* enough: once the
base is made trainable again, the outer model's `training=True` overrides the
recorded `training=False` (Keras' functional graph forwards the outer
`training` value to every layer that accepts one), and the moving statistics
start to move. So `unfreeze` leaves BatchNormalization layers frozen unless
`train_bn=True`, which is what fine-tuning recipes want.
"""

import fnmatch
import math
import re

import keras

from keras_transfer import _keras_compat

__all__ = ["freeze", "unfreeze", "select_layers", "iter_layers"]

_SELECTOR_HELP = (
    "Allowed selectors: None (every layer), a str fnmatch pattern over layer "
    "names or 'parent/child' paths ('re:<regex>' for a regular expression), "
    "an int N >= 1 (the last N layers), a float f in (0, 1] (the top fraction "
    "f of layers), or a list/tuple of these (their union)."
)


def iter_layers(model):
    """Yields `(path, layer)` for every layer below `model`, in pre-order.

    Paths join layer names with "/" from the top (the model itself is not
    yielded). Layers shared between several places are yielded once.
    """
    seen = set()

    def walk(layer, prefix):
        for child in _children(layer):
            if id(child) in seen:
                continue
            seen.add(id(child))
            path = f"{prefix}/{child.name}" if prefix else child.name
            yield path, child
            yield from walk(child, path)

    yield from walk(model, "")


def _children(layer):
    if isinstance(layer, keras.Model) and hasattr(layer, "layers"):
        return list(layer.layers)
    return _keras_compat.direct_sublayers(layer)


def _units(model):
    """The ordered layers that int/float selectors count.

    Nested models are expanded in place (a backbone inside a classifier
    contributes its own layers); any other layer, composite or not, is one
    unit. Input layers are not counted.
    """
    units = []

    def walk(layer):
        for child in _children(layer):
            if isinstance(child, keras.layers.InputLayer):
                continue
            if isinstance(child, keras.Model):
                walk(child)
            else:
                units.append(child)

    walk(model)
    seen = set()
    return [u for u in units if not (id(u) in seen or seen.add(id(u)))]


def select_layers(model, selector=None):
    """Resolves a selector to the layers of `model` it names.

    Args:
        model: A `keras.Model` (or layer). Nested models are walked.
        selector: `None` selects the model itself (every layer). A `str` is an
            fnmatch pattern matched against each layer's name and its
            "parent/child" path at any depth; prefix it with `"re:"` for a
            regular expression (full match). An `int` N selects the last N
            layers and a `float` f in (0, 1] the top fraction f (rounded up),
            counting layers in topological order with nested models
            expanded. A `keras.layers.Layer` of the model selects itself. A
            list or tuple selects the union of its items.

    Returns:
        The selected layers, without duplicates, in model order.

    Raises:
        ValueError: if the selector is malformed or selects nothing.
    """
    if selector is None:
        return [model]
    layers = []
    seen = set()
    for item in selector if isinstance(selector, (list, tuple)) else [selector]:
        matched = _select_one(model, item)
        if not matched:
            names = [path for path, _ in iter_layers(model)]
            raise ValueError(
                f"Selector {item!r} matched no layer of model "
                f"'{model.name}'. {_SELECTOR_HELP} The model has "
                f"{len(names)} layers, e.g. {names[:5] + names[-5:]}."
            )
        for layer in matched:
            if id(layer) not in seen:
                seen.add(id(layer))
                layers.append(layer)
    if isinstance(selector, (list, tuple)) and not selector:
        raise ValueError(f"Received an empty selector list. {_SELECTOR_HELP}")
    return layers


def _select_one(model, item):
    if isinstance(item, bool) or item is None:
        raise ValueError(f"Invalid selector: {item!r}. {_SELECTOR_HELP}")
    if isinstance(item, str):
        if item.startswith("re:"):
            try:
                pattern = re.compile(item[3:])
            except re.error as e:
                raise ValueError(
                    f"Invalid regular expression in selector {item!r}: {e}."
                ) from e
            match = pattern.fullmatch
        else:
            match = lambda name: fnmatch.fnmatchcase(name, item)  # noqa: E731
        return [
            layer
            for path, layer in iter_layers(model)
            if match(layer.name) or match(path)
        ]
    if isinstance(item, keras.layers.Layer):
        if not any(layer is item for _, layer in iter_layers(model)):
            raise ValueError(
                f"Layer '{item.name}' is not part of model '{model.name}'."
            )
        return [item]
    units = _units(model)
    if isinstance(item, int):
        if not 1 <= item <= len(units):
            raise ValueError(
                f"Invalid selector: {item!r}. An int selects the last N "
                f"layers and must be in [1, {len(units)}] for model "
                f"'{model.name}'."
            )
        return units[-item:]
    if isinstance(item, float):
        if not 0.0 < item <= 1.0:
            raise ValueError(
                f"Invalid selector: {item!r}. A float selects the top "
                "fraction of layers and must be in (0, 1]."
            )
        return units[-max(1, math.ceil(item * len(units))) :]
    raise ValueError(
        f"Invalid selector of type {type(item).__name__}: {item!r}. "
        f"{_SELECTOR_HELP}"
    )


def freeze(model, selector=None):
    """Makes the selected layers non-trainable.

    Frozen BatchNormalization layers run in inference mode, so their moving
    statistics stay put. Returns the layers whose `trainable` flag changed.

    Example:

    ```python
    base = keras_transfer.models.cnn_features((32, 32, 3))  # e.g. a ResNet50
    keras_transfer.freeze(base)           # the whole backbone
    keras_transfer.unfreeze(base, "*1")   # then the last block (ResNet50: "conv5_*")
    [layer.name for layer in base.layers if layer.trainable]
    # ['conv1', 'relu1', 'pool1']: BatchNormalization bn1 stays frozen
    ```
    """
    return _apply(model, select_layers(model, selector), trainable=False)


def unfreeze(model, selector=None, *, train_bn=False):
    """Makes the selected layers (and what encloses them) trainable.

    Layers that enclose a selected layer are switched on so that its
    variables reach `model.trainable_variables`; their other sublayers keep
    their state. BatchNormalization layers inside the selection stay frozen
    (inference mode, moving statistics fixed) unless `train_bn=True`.

    Args:
        model: A `keras.Model`.
        selector: Which layers; see `select_layers`. Defaults to every layer.
        train_bn: Bool. Also train BatchNormalization layers (their gamma,
            beta and moving statistics). Defaults to `False`.

    Returns:
        The layers whose `trainable` flag changed.
    """
    return _apply(
        model, select_layers(model, selector), trainable=True, train_bn=train_bn
    )


def _apply(model, selected, trainable, train_bn=False):
    order = [model] + [layer for _, layer in iter_layers(model)]
    before = {id(layer): layer.trainable for layer in order}
    desired = dict(before)
    parents = _parents(model)
    for layer in selected:
        subtree = [layer] + [sub for _, sub in iter_layers(layer)]
        for sub in subtree:
            desired[id(sub)] = trainable
            if trainable and not train_bn and _is_batch_norm(sub):
                desired[id(sub)] = False
        if trainable:
            ancestor = parents.get(id(layer))
            while ancestor is not None:
                desired[id(ancestor)] = True
                ancestor = parents.get(id(ancestor))
    # The `trainable` setter also sets every sublayer, so set every layer in
    # pre-order: each one is set last by itself and ends with its own flag.
    for layer in order:
        layer.trainable = desired[id(layer)]
    return [layer for layer in order if layer.trainable != before[id(layer)]]


def _parents(model):
    parents = {}

    def walk(layer):
        for child in _children(layer):
            if id(child) not in parents:
                parents[id(child)] = layer
                walk(child)

    walk(model)
    return parents


def _is_batch_norm(layer):
    return isinstance(layer, keras.layers.BatchNormalization)
