"""Shared machinery of the zoo: `build` and `recipe`, and the builders entries name.

An entry is a `TaskSpec` naming one of the builders in `_BUILDERS`; a builder
gets the spec and returns an uncompiled model taking raw inputs. `build` checks
the arguments, runs the builder and compiles the model with the spec's recipe.
"""

import keras

from keras_transfer.backbones import check_input_shape
from keras_transfer.heads import ClassificationHead
from keras_transfer.heads import check_class_names
from keras_transfer.heads import check_num_classes
from keras_transfer.heads import find_head
from keras_transfer.models import compile_args
from keras_transfer.zoo import recipes
from keras_transfer.zoo import registry


def build(
    name, num_classes, weights="imagenet", input_shape=None, compile=True, class_names=None
):
    """Build the zoo task `name`, compiled with its recipe so `fit` works at once.

    Args:
        name: String. A registered task name (see `list_tasks`).
        num_classes: Int >= 1. Number of classes (`1`: binary, one logit),
            as for `keras_transfer.heads.ClassificationHead`.
        weights: `"imagenet"` (the backbone's pretrained weights, which may need
            a download), `None` (random initialisation), or a path to weights.
        input_shape: Tuple or `None`. Defaults to the task's `input_shape`.
            Must be `None` for KerasHub tasks (the preset fixes its inputs).
        compile: Bool. Compile with the recipe's optimizer (weight decay,
            momentum, gradient clipping), loss (label smoothing) and metrics
            (accuracy, macro-F1). The recipe's head penalties and L2-SP are
            attached either way.
        class_names: Sequence of strings or `None`. The classes in label
            order, kept in the head's config so the saved model carries
            them (`keras_transfer.heads.ClassificationHead`). Defaults to
            `None`.

    Returns:
        A `keras.Model` taking raw inputs (uint8 images, or raw strings for
        KerasHub text tasks) and returning class logits.

    Example:

    >>> x, y = keras_transfer.datasets.load_builtin("digits", "train", 32)
    >>> model = keras_transfer.zoo.build("test/tiny_cnn", num_classes=10)
    >>> history = model.fit(
    ...     x[:32], y[:32], validation_data=(x[32:48], y[32:48]), epochs=2,
    ...     callbacks=keras_transfer.zoo.recipe("test/tiny_cnn", epochs=2))
    >>> # A pretrained task, e.g. "image_classification/efficientnetb0", builds
    >>> # the same way (weights="imagenet" by default; weights=None: random).
    """
    spec = registry.get_task(name)
    check_num_classes(num_classes)
    registry.check_requirements(spec)
    input_shape = _check_input_shape(spec, input_shape)
    class_names = check_class_names(class_names, num_classes)
    model = _BUILDERS[spec.builder](spec, num_classes, weights, input_shape)
    if class_names is not None:
        head = find_head(model)
        if head is None:
            raise ValueError(
                f"Invalid value received for argument `class_names`: task "
                f"{spec.name!r} has no classification head to keep them. "
                f"Received: class_names={class_names!r}"
            )
        head.class_names = class_names
    if spec.recipe.l2sp_alpha:
        _apply_l2sp(model, spec)
    if compile and not model.compiled:
        compile_with_recipe(model, spec.recipe)
    return model


def compile_with_recipe(model, recipe):
    """Compile `model` with the optimizer of `recipe`, its head's loss and metrics.

    The loss carries the recipe's `label_smoothing`; the metrics are accuracy
    and macro-F1 (`keras_transfer.models.compile_args`).
    """
    model.compile(
        **compile_args(
            recipes.make_optimizer(recipe),
            find_head(model),
            label_smoothing=recipe.label_smoothing,
        )
    )
    return model


def _apply_l2sp(model, spec):
    """L2-SP on the one layer of `model`, besides its head, with trainable-type weights."""
    from keras_transfer import _keras_compat
    from keras_transfer.regularizers import apply_l2sp

    backbones = [
        layer
        for layer in model.layers
        if not isinstance(layer, ClassificationHead)
        and _keras_compat.created_trainable_variables(layer)
    ]
    if len(backbones) != 1:
        raise ValueError(
            f"Invalid value received for argument `recipe`: task {spec.name!r} "
            "declares l2sp_alpha, which needs one backbone layer under the "
            f"head, but its model has {[layer.name for layer in backbones]}. "
            f"Received: l2sp_alpha={spec.recipe.l2sp_alpha}"
        )
    # beta=None: the head keeps the recipe's own head_l1/head_l2 penalties.
    apply_l2sp(model, backbones[0], alpha=spec.recipe.l2sp_alpha, beta=None)


def recipe(name, epochs, monitor="val_loss", steps_per_epoch=None):
    """The callbacks of task `name`'s recipe for a run of `epochs` epochs.

    Use them with the model `build` returned:
    `model.fit(data, epochs=E, callbacks=recipe(name, epochs=E))` trains
    with every field of the recipe: the per-step learning rate schedule
    (sized from the steps per epoch `fit` reports), the unfreezing stages,
    early stopping and `TerminateOnNaN` (see
    `keras_transfer.zoo.recipes.recipe_callbacks`).

    Args:
        name: String. A registered task name.
        epochs: Int >= 1. The `epochs` of the `fit` call. The recipe's
            warmup and unfreezing stages must fit in it.
        monitor: String. The metric early stopping watches. Defaults to
            `"val_loss"`.
        steps_per_epoch: Int or `None`. Only needed for data whose length
            `fit` does not know. Defaults to `None`.

    Returns:
        A list of Keras callbacks.
    """
    spec = registry.get_task(name)
    return recipes.recipe_callbacks(
        spec.recipe, epochs, monitor=monitor, steps_per_epoch=steps_per_epoch
    )


def _head_arguments(spec):
    """The task's head arguments with the recipe's L1/L2 kernel penalty."""
    regularizer = recipes.head_regularizer(spec.recipe)
    if regularizer is None:
        return dict(spec.head)
    return {**spec.head, "kernel_regularizer": regularizer}


def _check_input_shape(spec, input_shape):
    if spec.preset_fixes_inputs:
        if input_shape is not None:
            raise ValueError(
                f"Invalid value received for argument `input_shape`: task "
                f"{spec.name!r} uses a KerasHub preset whose preprocessor fixes "
                f"its inputs. Expected None. Received: input_shape={input_shape}"
            )
        return None
    if input_shape is None:
        return tuple(spec.input_shape)
    return check_input_shape(
        input_shape,
        spec.input_shape,
        min_size=spec.min_input_size,
        owner=f"task {spec.name!r}",
    )


def _classifier(spec, num_classes, weights, input_shape):
    """Pretrained backbone + `ClassificationHead`, preprocessing inside."""
    from keras_transfer.backbones import load_backbone
    from keras_transfer.models import build_classifier

    backbone = spec.backbone
    if spec.caches_features:
        # Pooled inside the backbone: a feature cache then holds one vector
        # per image instead of a feature map.
        backbone = load_backbone(
            backbone, weights=weights, input_shape=input_shape, pooling="avg", trainable=False
        )
    return build_classifier(
        backbone,
        num_classes,
        weights=weights,
        input_shape=input_shape,
        head=_head_arguments(spec),
        trainable=spec.trainable,
        compile=False,
        name=spec.name.replace("/", "_"),
    )


def adaptation_parts(spec, num_classes, weights, input_shape):
    """`(feature_extractor, head, optimizer)` of a `domain_adaptation/*` task.

    The pretrained backbone (preprocessing inside, as the task declares it
    trainable), a `ClassificationHead` and a fresh recipe optimizer: what
    `_adaptation` builds a method on, and what
    `keras_transfer.zoo.domain_adaptation.adapt` hands to
    `keras_transfer.adaptation.adapt`.
    """
    from keras_transfer.backbones import load_backbone

    if spec.recipe.label_smoothing:
        raise ValueError(
            f"Invalid value received for argument `recipe`: task {spec.name!r} "
            "builds a domain-adaptation model, whose label loss takes no label "
            "smoothing. Expected label_smoothing=0. "
            f"Received: label_smoothing={spec.recipe.label_smoothing}"
        )
    features, preprocessing = load_backbone(
        spec.backbone, weights=weights, input_shape=input_shape, trainable=spec.trainable
    )
    inputs = keras.Input(input_shape, name="image")
    extractor = keras.Model(
        inputs, features(preprocessing(inputs), training=False), name="features"
    )
    head = ClassificationHead(num_classes, pooling=None, **_head_arguments(spec))
    return extractor, head, recipes.make_optimizer(spec.recipe)


def _adaptation(spec, num_classes, weights, input_shape):
    """Unsupervised domain adaptation (DANN, CORAL, or the recommended path's baseline).

    Returns a compiled `keras_transfer.adaptation.AdaptationModel`: train it on
    `keras_transfer.adaptation.paired_dataset(source, target)`, evaluate and
    export its `.classifier`. A `recommended_*` task builds source-only (the
    baseline); `keras_transfer.zoo.domain_adaptation.adapt` runs the whole
    recommended path on its parts.
    """
    from keras_transfer import adaptation
    from keras_transfer.schedules import DANNLambda

    extractor, head, optimizer = adaptation_parts(spec, num_classes, weights, input_shape)
    options = dict(spec.task_kwargs)
    method = options.pop("method")
    if method == "recommended":
        return adaptation.build_source_only(extractor, head, optimizer=optimizer)
    if method == "dann":
        return adaptation.build_dann(
            extractor,
            head,
            discriminator=adaptation.default_discriminator(options.pop("discriminator_units")),
            hp_lambda=DANNLambda(total_steps=options.pop("lambda_ramp_steps")),
            optimizer=optimizer,
            **options,
        )
    return adaptation.build_coral(extractor, head, optimizer=optimizer, **options)


def _tiny_cnn(spec, num_classes, weights, input_shape):
    """`cnn_features` + a `ClassificationHead`, for tests and smoke runs."""
    from keras_transfer.models import cnn_features

    _check_no_pretrained_weights(spec, weights)
    features = cnn_features(input_shape, spec.task_kwargs.get("filters", (8, 16)))
    inputs = keras.Input(input_shape, name="image")
    head = ClassificationHead(num_classes, pooling=None, name="head", **_head_arguments(spec))
    outputs = head(features(inputs))
    return keras.Model(inputs, outputs, name=spec.name.replace("/", "_"))


def _check_no_pretrained_weights(spec, weights):
    if weights not in (None, "imagenet"):
        raise ValueError(
            f"Invalid value received for argument `weights`: task {spec.name!r} "
            f"has no pretrained weights. Received: weights={weights!r}"
        )


def _tiny_text(spec, num_classes, weights, input_shape):
    """Token ids -> embedding -> mean -> logits, for tests."""
    _check_no_pretrained_weights(spec, weights)
    inputs = keras.Input(input_shape, dtype="int32", name="token_ids")
    x = keras.layers.Embedding(spec.task_kwargs.get("vocabulary_size", 256), 16)(inputs)
    x = keras.layers.GlobalAveragePooling1D()(x)
    head = ClassificationHead(num_classes, pooling=None, name="head", **_head_arguments(spec))
    outputs = head(x)
    return keras.Model(inputs, outputs, name=spec.name.replace("/", "_"))


_BUILDERS = {
    "adaptation": _adaptation,
    "classifier": _classifier,
    "tiny_cnn": _tiny_cnn,
    "tiny_text": _tiny_text,
}
