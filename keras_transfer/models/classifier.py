"""Ready-to-fit transfer classifiers: raw inputs -> backbone -> head."""

import keras

from keras_transfer.backbones import Backbone
from keras_transfer.backbones import load_backbone
from keras_transfer.heads import ClassificationHead
from keras_transfer.models.compile import compile_args
from keras_transfer.models.compile import default_optimizer


def build_classifier(
    backbone,
    num_classes,
    *,
    weights="imagenet",
    input_shape=None,
    head=None,
    trainable=False,
    compile=True,
    name=None,
):
    """Builds a compiled classifier that takes raw inputs.

    Images: a functional model `raw images (0..255) -> preprocessing ->
    feature model (inference mode, so BatchNormalization statistics never
    move) -> head`. KerasHub text backbones: a
    `keras_transfer.models.TextClassifier` (a KerasHub `Task`)
    whose `fit`/`predict` take raw strings on every backend.

    Args:
        backbone: Backbone name or preset handle, as for
            `keras_transfer.backbones.load_backbone`, or a `Backbone` it
            returned (then `weights`, `input_shape` and `trainable` are
            ignored: the backbone is used as loaded).
        num_classes: Integer >= 1, the number of classes (`1`: binary).
        weights: As for `load_backbone`. Defaults to `"imagenet"`.
        input_shape: Shape of one raw image, e.g. `(224, 224, 3)`. Defaults
            to `None` (any size).
        head: `None`, a dict of `ClassificationHead` keyword arguments, or
            a `ClassificationHead`. Defaults to `None` (average pooling,
            linear classifier, logits).
        trainable: Boolean, whether the backbone is trained. Defaults to
            `False` (frozen: only the head learns).
        compile: Boolean. If `True`, compile with Adam (learning rate
            `1e-3` for a frozen backbone, `1e-5` otherwise), the head's loss
            and an accuracy metric, so `fit` works at once. Defaults to
            `True`.
        name: Optional model name.

    Returns:
        A `keras.Model`.

    Example:

    ```python
    images, labels = keras_transfer.datasets.load_builtin("digits", "train")
    model = keras_transfer.models.build_classifier(
        "mobilenet",
        num_classes=10,
        input_shape=(32, 32, 3),  # e.g. (224, 224, 3) in real use
        weights=None,  # weights="imagenet" (the default) in real use
    )
    model.fit(images[:16], labels[:16], batch_size=8, epochs=1)
    ```
    """
    loaded = (
        backbone
        if isinstance(backbone, Backbone)
        else load_backbone(
            backbone,
            weights=weights,
            input_shape=input_shape,
            pooling=None,
            trainable=trainable,
        )
    )
    trainable = loaded.feature_model.trainable
    if loaded.info.modality == "text":
        from keras_transfer.models.text_classifier import TextClassifier

        return TextClassifier(
            backbone=loaded.info.hub_backbone,
            head=_make_head(head, num_classes, pooling=None),
            preprocessor=loaded.preprocessing,
            trainable_backbone=trainable,
            compile=compile,
            name=name,
        )
    pooled = len(loaded.feature_model.output_shape) == 2
    head = _make_head(head, num_classes, pooling=None if pooled else "avg")
    inputs = keras.Input(loaded.info.input_shape, name="images")
    x = loaded.preprocessing(inputs)
    x = loaded.feature_model(x, training=False)
    model = keras.Model(inputs, head(x), name=name)
    if compile:
        model.compile(**compile_args(default_optimizer(trainable), head))
    return model


def _make_head(head, num_classes, pooling):
    if head is None:
        head = {}
    if isinstance(head, dict):
        return ClassificationHead(num_classes, **{"pooling": pooling, **head})
    if not isinstance(head, ClassificationHead):
        raise ValueError(
            "Invalid value received for argument `head`. Expected None, a "
            "dict of ClassificationHead arguments, or a ClassificationHead. "
            f"Received: head={head!r}"
        )
    if head.num_classes != num_classes:
        raise ValueError(
            "Invalid value received for argument `head`: its num_classes "
            f"({head.num_classes}) differs from num_classes={num_classes}."
        )
    return head
