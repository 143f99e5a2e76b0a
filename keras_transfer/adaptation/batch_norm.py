"""AdaBN: re-estimate BatchNormalization statistics on the target domain."""

import keras
import numpy as np

from keras_transfer import _keras_compat
from keras_transfer._validation import check_int


def _probe(model, tensor):
    """A callable from `model`'s inputs to one of its internal tensors."""
    if any(tensor is given for given in model.inputs):
        return _identity
    return keras.Model(_inputs(model), tensor).predict_on_batch


def _inputs(model):
    """`model.inputs`, unwrapped when there is one (as the model is called)."""
    return model.inputs[0] if len(model.inputs) == 1 else model.inputs


def _identity(values):
    return values


def _batch_norm_paths(model, path=()):
    """`(layer, probes)` for every BatchNormalization below `model`, in call order.

    `probes` is the chain of models that maps the top model's inputs to the
    layer's input: one per nesting level (a functional or Sequential model
    inside another is reached through its input in the outer graph).
    """
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            yield layer, path + (_probe(model, _single_input(layer, model)),)
        elif isinstance(layer, keras.Model) and _has_batch_norm(layer):
            yield from _batch_norm_paths(
                layer, path + (_probe(model, _single_input(layer, model)),)
            )
        elif _has_batch_norm(layer):
            raise ValueError(
                "Invalid value received for argument `model`. AdaBN needs "
                "BatchNormalization layers it can reach through functional "
                f"or Sequential models; layer {layer.name!r} "
                f"({type(layer).__name__}) holds some inside its own `call`. "
                "Received: model with that layer"
            )


def _single_input(layer, model):
    """The input `layer` receives in `model`'s own graph (called once there)."""
    connected = []
    for tensors in _keras_compat.call_inputs(layer):
        try:
            keras.Model(_inputs(model), tensors[0])
        except ValueError:  # A call in another graph (e.g. a nested model's own).
            continue
        connected.append(tensors[0])
    if len(connected) != 1:
        raise ValueError(
            "Invalid value received for argument `model`. AdaBN reads each "
            "BatchNormalization's input in the model graph, but layer "
            f"{layer.name!r} is called {len(connected)} times in {model.name!r} "
            "(shared, or not connected). Pass a classifier that calls it "
            "once (e.g. `model.classifier`). Received: model with that layer"
        )
    return connected[0]


def _has_batch_norm(layer):
    return any(
        isinstance(sub, keras.layers.BatchNormalization)
        for sub in _keras_compat.all_sublayers(layer, include_self=False)
    )


def _channel_moments(probes, x, axis, batch_size):
    """Mean and (biased) variance per channel of the probed tensor, float64.

    Chunks are merged with Chan et al.'s pairwise update, so the result is
    the statistic of the whole set, not a mean of batch statistics.
    """
    count, mean, m2 = 0, 0.0, 0.0
    for start in range(0, len(x), batch_size):
        values = x[start : start + batch_size]
        for probe in probes:
            values = probe(values)
        values = np.moveaxis(keras.ops.convert_to_numpy(values), axis, -1)
        values = values.reshape(-1, values.shape[-1]).astype("float64")
        n = len(values)
        batch_mean = values.mean(axis=0)
        batch_m2 = ((values - batch_mean) ** 2).sum(axis=0)
        delta = batch_mean - mean
        total = count + n
        mean = mean + delta * n / total
        m2 = m2 + batch_m2 + delta**2 * count * n / total
        count = total
    return mean, m2 / count


def adapt_batch_norm(model, x_target, batch_size=128):
    """AdaBN: set every BatchNormalization's moving statistics to the target's.

    For each BatchNormalization layer, in the order the model calls them, the
    layer's inputs on all of `x_target` are computed in inference mode (with
    the layers before it already adapted) and its moving mean and variance
    are set to their mean and variance per channel:

    ```python
    moving_mean = mean(inputs, axis=all but the channel axis)
    moving_variance = var(inputs, axis=all but the channel axis)   # biased, as BN
    ```

    Nothing else changes: no weight, no optimizer state, no other variable.
    The model then normalises target inputs with target statistics, which
    removes a shift in the first and second moments of every normalised
    feature at no training cost. BatchNormalization layers frozen with
    `keras_transfer.freeze` are adapted too (that is the point). Cost: one
    inference pass over `x_target` up to each BN layer.

    Args:
        model: A `keras.Model` (functional or Sequential, nested models
            allowed) with BatchNormalization layers, each called once.
        x_target: Array of unlabelled target inputs `(n, ...)`.
        batch_size: Integer >= 1. Rows per inference batch. Defaults to
            `128`.

    Returns:
        The number of BatchNormalization layers adapted (>= 1).

    Example:

    ```python
    x_source, y_source = keras_transfer.datasets.load_builtin("digits", "train", 16)
    x_target, y_target = keras_transfer.datasets.load_builtin("digits-m", "test", 16)
    classifier = keras.Sequential([
        keras_transfer.models.cnn_features((16, 16, 3)),  # or a pretrained backbone
        keras.layers.Dense(10),
    ])
    classifier.compile("adam", keras.losses.SparseCategoricalCrossentropy(
        from_logits=True), metrics=["accuracy"])
    classifier.fit(x_source[:128], y_source[:128], epochs=1)
    keras_transfer.adaptation.adapt_batch_norm(classifier, x_target)  # 2 BN layers
    classifier.evaluate(x_target, y_target)  # target inputs, target statistics
    ```

    Reference:
        - [Li et al., 2016](https://arxiv.org/abs/1603.04779)
    """
    check_int("batch_size", batch_size, minimum=1)
    if not isinstance(model, keras.Model):
        raise ValueError(
            "Invalid value received for argument `model`. Expected a "
            f"keras.Model. Received: model={type(model).__name__}"
        )
    x_target = np.asarray(x_target)
    if len(x_target) < 2:
        raise ValueError(
            "Invalid value received for argument `x_target`. Expected at least "
            f"2 rows to estimate a variance. Received: x_target with shape {x_target.shape}"
        )
    paths = list(_batch_norm_paths(model))
    if not paths:
        raise ValueError(
            "Invalid value received for argument `model`. AdaBN needs at least "
            f"one BatchNormalization layer; model {model.name!r} has none."
        )
    for layer, probes in paths:
        mean, variance = _channel_moments(probes, x_target, layer.axis, batch_size)
        layer.moving_mean.assign(mean.astype(layer.moving_mean.dtype))
        layer.moving_variance.assign(variance.astype(layer.moving_variance.dtype))
    return len(paths)
