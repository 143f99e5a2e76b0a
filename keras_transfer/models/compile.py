"""The one function that assembles `model.compile` arguments for classifiers."""

import keras

from keras_transfer.heads import ClassificationHead


def compile_args(optimizer, head=None):
    """`optimizer`, `loss` and `metrics` for a classifier, as `compile` kwargs.

    Every compiled classifier in keras-transfer (`build_classifier`, the
    text classifier, zoo models, the label branch of the domain-adaptation
    models, the demo) gets its loss and metrics here, so they always match
    the head's outputs.

    Args:
        optimizer: A `keras.optimizers.Optimizer` instance or identifier.
        head: The model's `keras_transfer.heads.ClassificationHead`, or `None`
            for multi-class logits (sparse integer labels).

    Returns:
        A dict with `optimizer`, `loss` (the head's loss) and `metrics` (an
        accuracy named `"accuracy"` that reads the head's outputs).

    Example:

    ```python
    head = keras_transfer.heads.ClassificationHead(3, pooling=None)
    inputs = keras.Input((8,))
    model = keras.Model(inputs, head(inputs))
    model.compile(**keras_transfer.models.compile_args("adam", head))
    ```
    """
    if head is None:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    elif isinstance(head, ClassificationHead):
        loss, metrics = head.loss(), head.default_metrics()
    else:
        raise ValueError(
            "Invalid value received for argument `head`. Expected None or a "
            f"keras_transfer.heads.ClassificationHead. Received: head={head!r}"
        )
    return {"optimizer": optimizer, "loss": loss, "metrics": metrics}


def default_optimizer(trainable_backbone):
    """The "auto" optimizer of a classifier: Adam, smaller steps when fine-tuning.

    Args:
        trainable_backbone: Whether the backbone is being trained.

    Returns:
        `keras.optimizers.Adam(1e-5)` if so, else `Adam(1e-3)`.
    """
    return keras.optimizers.Adam(1e-5 if trainable_backbone else 1e-3)
