from keras import ops


def domain_weights(y_true, y_pred):
    """Splits a mixed batch into source and target row weights.

    `y_true` is the domain indicator (0 source, 1 target) of shape `(n,)` or
    `(n, 1)`; returns float32 features `(n, d)` and the two `(n,)` weights.
    """
    features = ops.reshape(ops.cast(y_pred, "float32"), (ops.shape(y_pred)[0], -1))
    target = ops.cast(ops.reshape(y_true, (-1,)) > 0.5, "float32")
    return features, 1.0 - target, target


def stack_domains(source, target):
    """Concatenates two feature batches and returns their row weights."""
    source = ops.cast(source, "float32")
    target = ops.cast(target, "float32")
    source = ops.reshape(source, (ops.shape(source)[0], -1))
    target = ops.reshape(target, (ops.shape(target)[0], -1))
    features = ops.concatenate([source, target], axis=0)
    source_weights = ops.concatenate(
        [ops.ones((ops.shape(source)[0],)), ops.zeros((ops.shape(target)[0],))]
    )
    return features, source_weights, 1.0 - source_weights
