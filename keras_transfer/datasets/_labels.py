"""The one label-range check of the input pipelines: arrays at once, tf.data per batch.

Out-of-range labels do not fail the same way everywhere: TensorFlow's sparse
cross-entropy raises, torch raises an index error, and JAX's trains on with
a zero loss for them. So every pipeline checks labels before they reach the
model: numpy labels when the dataset is made, tf.data labels inside the
pipeline (they are only known while iterating).
"""

import numpy as np


def _message(argument, num_classes):
    return (
        f"Invalid value received for argument `{argument}`. Labels must be "
        f"class indices in [0, {num_classes}). Received: label="
    )


def check_label_array(labels, num_classes, argument):
    """Raise `ValueError` naming the first label outside `[0, num_classes)`.

    Args:
        labels: Integer numpy array.
        num_classes: Integer, or `None` to check only that labels are >= 0.
        argument: Name of the argument the labels came in, for the message.
    """
    high = np.inf if num_classes is None else num_classes
    bad = (labels < 0) | (labels >= high)
    if bad.any():
        shown = "inf" if num_classes is None else num_classes
        raise ValueError(f"{_message(argument, shown)}{labels[bad][0]}")
    return labels


def assert_labels_in_pipeline(labels, num_classes, argument):
    """`labels` (a tf tensor) with an in-graph check that they lie in range.

    Iterating an element with a bad label raises
    `tf.errors.InvalidArgumentError` whose message names the label.
    """
    import tensorflow as tf

    as_int = tf.reshape(tf.cast(labels, "int64"), [-1])
    in_range = tf.logical_and(as_int >= 0, as_int < num_classes)
    check = tf.debugging.Assert(
        tf.reduce_all(in_range),
        [
            _message(argument, num_classes),
            tf.boolean_mask(as_int, tf.logical_not(in_range))[:1],
        ],
    )
    with tf.control_dependencies([check]):
        return tf.identity(labels)
