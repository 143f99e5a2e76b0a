"""The one function that assembles `model.compile` arguments for classifiers."""

import keras

from keras_transfer._validation import check_number
from keras_transfer.heads import ClassificationHead
from keras_transfer.losses import SparseCategoricalCrossentropy
from keras_transfer.metrics import SparseF1Score


def compile_args(optimizer, head=None, label_smoothing=0.0):
    """`optimizer`, `loss` and `metrics` for a classifier, as `compile` kwargs.

    Every compiled classifier in keras-transfer (`build_classifier`, the
    text classifier, zoo models, the label branch of the domain-adaptation
    models, the demo) gets its loss and metrics here, so they always match
    the head's outputs.

    Args:
        optimizer: A `keras.optimizers.Optimizer` instance or identifier.
        head: The model's `keras_transfer.heads.ClassificationHead`, or `None`
            for multi-class logits (sparse integer labels).
        label_smoothing: Float in `[0, 1)`. Smooths the loss's targets:
            Keras' `BinaryCrossentropy(label_smoothing=)` for binary and
            multi-label heads (targets `y * (1 - s) + s / 2`),
            `keras_transfer.losses.SparseCategoricalCrossentropy` for
            integer labels (targets `one_hot(y) * (1 - s) + s / K`).
            Defaults to `0.0`: the head's own loss.

    Returns:
        A dict with `optimizer`, `loss` (the head's loss) and `metrics`: an
        accuracy named `"accuracy"` and a macro-averaged F1 named
        `"macro_f1"` (`keras_transfer.metrics.SparseF1Score` for integer
        labels and binary heads, `keras.metrics.F1Score` for multi-label
        heads), both reading the head's outputs.

    Example:

    ```python
    head = keras_transfer.heads.ClassificationHead(3, pooling=None)
    inputs = keras.Input((8,))
    model = keras.Model(inputs, head(inputs))
    model.compile(**keras_transfer.models.compile_args("adam", head))
    ```
    """
    check_number("label_smoothing", label_smoothing, minimum=0, below=1)
    if head is None:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
        multi_label, threshold = False, 0.0
    elif isinstance(head, ClassificationHead):
        loss, metrics = head.loss(), head.default_metrics()
        multi_label = head.num_classes > 1 and head.activation == "sigmoid"
        threshold = 0.0 if head.from_logits else 0.5
    else:
        raise ValueError(
            "Invalid value received for argument `head`. Expected None or a "
            f"keras_transfer.heads.ClassificationHead. Received: head={head!r}"
        )
    if label_smoothing and isinstance(loss, keras.losses.BinaryCrossentropy):
        loss = keras.losses.BinaryCrossentropy(
            from_logits=loss.from_logits, label_smoothing=label_smoothing
        )
    elif label_smoothing:
        loss = SparseCategoricalCrossentropy(
            from_logits=loss.from_logits, label_smoothing=label_smoothing
        )
    if multi_label:
        f1 = keras.metrics.F1Score(average="macro", threshold=0.5, name="macro_f1")
    else:
        f1 = SparseF1Score(average="macro", threshold=threshold, name="macro_f1")
    return {"optimizer": optimizer, "loss": loss, "metrics": metrics + [f1]}


def default_optimizer(trainable_backbone):
    """The "auto" optimizer of a classifier: Adam, smaller steps when fine-tuning.

    Args:
        trainable_backbone: Whether the backbone is being trained.

    Returns:
        `keras.optimizers.Adam(1e-5)` if so, else `Adam(1e-3)`.
    """
    return keras.optimizers.Adam(1e-5 if trainable_backbone else 1e-3)
