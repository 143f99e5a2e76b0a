"""Shared machinery of the zoo: `build` and `recipe`, and the builders entries name.

An entry is a `TaskSpec` naming one of the builders in `_BUILDERS`; a builder
gets the spec and returns an uncompiled model taking raw inputs. `build` checks
the arguments, runs the builder and compiles the model with the spec's recipe.
"""

import math

import keras

from keras_transfer.backbones import check_input_shape
from keras_transfer.heads import ClassificationHead
from keras_transfer.heads import check_num_classes
from keras_transfer.models import compile_args
from keras_transfer.zoo import registry


def build(name, num_classes, weights="imagenet", input_shape=None, compile=True):
    """Build the zoo task `name`, compiled with its recipe so `fit` works at once.

    Args:
        name: String. A registered task name (see `list_tasks`).
        num_classes: Int >= 1. Number of classes (`1`: binary, one logit),
            as for `keras_transfer.heads.ClassificationHead`.
        weights: `"imagenet"` (the backbone's pretrained weights, which may need
            a download), `None` (random initialisation), or a path to weights.
        input_shape: Tuple or `None`. Defaults to the task's `input_shape`.
            Must be `None` for KerasHub tasks (the preset fixes its inputs).
        compile: Bool. Compile with the recipe's optimizer, loss and metrics.

    Returns:
        A `keras.Model` taking raw inputs (uint8 images, or raw strings for
        KerasHub text tasks) and returning class logits.

    Example:

    >>> model = keras_transfer.zoo.build(
    ...     "image_classification/efficientnetb0", num_classes=5)
    >>> model.fit(train_ds, validation_data=val_ds, epochs=10,
    ...           callbacks=keras_transfer.zoo.recipe(
    ...               "image_classification/efficientnetb0", epochs=10))
    """
    spec = registry.get_task(name)
    check_num_classes(num_classes)
    registry.check_requirements(spec)
    input_shape = _check_input_shape(spec, input_shape)
    model = _BUILDERS[spec.builder](spec, num_classes, weights, input_shape)
    if compile and not model.compiled:
        compile_with_recipe(model, spec.recipe)
    return model


def recipe_optimizer(recipe):
    """A fresh optimizer as `recipe` declares it."""
    config = {"learning_rate": recipe.learning_rate}
    if recipe.weight_decay is not None:
        config["weight_decay"] = recipe.weight_decay
    return keras.optimizers.get({"class_name": recipe.optimizer, "config": config})


def compile_with_recipe(model, recipe):
    """Compile `model` with the optimizer of `recipe` and its head's loss."""
    model.compile(**compile_args(recipe_optimizer(recipe), _find_head(model)))
    return model


def _find_head(model):
    heads = [
        layer for layer in model.layers if isinstance(layer, ClassificationHead)
    ]
    return heads[-1] if heads else None


def recipe(name, epochs, monitor="val_loss"):
    """The callbacks of task `name`'s recipe for a run of `epochs` epochs.

    Returns a list: `keras_transfer.callbacks.StagedUnfreezing` when the recipe
    has unfreezing stages, a `LearningRateScheduler` (linear warmup, then
    cosine decay or constant), and `EarlyStopping(restore_best_weights=True)` on
    `monitor` when the recipe asks for it (so `fit` needs validation data then).
    """
    spec = registry.get_task(name)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(
            "Invalid value received for argument `epochs`: expected an int >= 1. "
            f"Received: epochs={epochs!r}"
        )
    plan = spec.recipe
    callbacks = []
    if plan.unfreeze_stages:
        from keras_transfer.callbacks import StagedUnfreezing

        # First: it may rebuild the optimizer, which the scheduler then sets.
        callbacks.append(StagedUnfreezing(stages=dict(plan.unfreeze_stages)))
    callbacks.append(
        keras.callbacks.LearningRateScheduler(
            lambda epoch: epoch_learning_rate(plan, epoch, epochs)
        )
    )
    if plan.early_stopping_patience is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor,
                patience=plan.early_stopping_patience,
                restore_best_weights=True,
            )
        )
    return callbacks


def epoch_learning_rate(plan, epoch, epochs):
    """Learning rate of `plan` at `epoch` (0-based) of a run of `epochs` epochs.

    ```python
    if epoch < warmup: lr = peak * (epoch + 1) / (warmup + 1)
    elif schedule == "cosine":
        lr = peak * 0.5 * (1 + cos(pi * (epoch - warmup) / (epochs - warmup)))
    else: lr = peak
    ```
    """
    peak = plan.learning_rate
    if epoch < plan.warmup_epochs:
        return peak * (epoch + 1) / (plan.warmup_epochs + 1)
    if plan.schedule == "cosine":
        progress = (epoch - plan.warmup_epochs) / max(1, epochs - plan.warmup_epochs)
        return peak * 0.5 * (1.0 + math.cos(math.pi * progress))
    return peak


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
    from keras_transfer.models import build_classifier

    return build_classifier(
        spec.backbone,
        num_classes,
        weights=weights,
        input_shape=input_shape,
        head=spec.head,
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

    features, preprocessing = load_backbone(
        spec.backbone, weights=weights, input_shape=input_shape, trainable=spec.trainable
    )
    inputs = keras.Input(input_shape, name="image")
    extractor = keras.Model(
        inputs, features(preprocessing(inputs), training=False), name="features"
    )
    head = ClassificationHead(num_classes, pooling=None, **spec.head)
    return extractor, head, recipe_optimizer(spec.recipe)


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
    head = ClassificationHead(num_classes, pooling=None, name="head", **spec.head)
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
    head = ClassificationHead(num_classes, pooling=None, name="head", **spec.head)
    outputs = head(x)
    return keras.Model(inputs, outputs, name=spec.name.replace("/", "_"))


_BUILDERS = {
    "adaptation": _adaptation,
    "classifier": _classifier,
    "tiny_cnn": _tiny_cnn,
    "tiny_text": _tiny_text,
}
