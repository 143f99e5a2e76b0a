"""`domain_adaptation/*`: unsupervised domain adaptation over pretrained backbones.

`recommended_<backbone>` is the path to start with: `adapt(name, ...)` below
runs `keras_transfer.adaptation.adapt` on the task's backbone and head
(source-only, AdaBN, MMD, MCC, DANN from the same weights, scored without
target labels, source-only kept unless one is predicted to beat it);
`build(name)` on it gives the source-only baseline model.

`dann_<backbone>` trains a domain discriminator behind a gradient reversal
layer whose lambda ramps up along the DANN sigmoid (Ganin et al. 2016,
https://arxiv.org/abs/1505.07818); `coral_<backbone>` aligns the second-order
statistics of source and target features (Sun & Saenko 2016,
https://arxiv.org/abs/1607.01719). Both return a compiled
`keras_transfer.adaptation.AdaptationModel`: fit it on
`keras_transfer.adaptation.paired_dataset(source=(x, y), target=x_target)`,
then evaluate and export `model.classifier`.
"""

import numpy as np

from keras_transfer.zoo.builders import adaptation_parts
from keras_transfer.zoo.image_classification import application_task_fields
from keras_transfer.zoo.registry import Recipe
from keras_transfer.zoo.registry import TaskSpec
from keras_transfer.zoo.registry import check_requirements
from keras_transfer.zoo.registry import get_task
from keras_transfer.zoo.registry import register_task

ADAPT = Recipe(
    optimizer="adam",
    learning_rate=1e-4,
    warmup_epochs=0,
    schedule="cosine",
    early_stopping_patience=None,  # No target labels, so nothing honest to monitor.
)

BACKBONES = ("resnet50", "efficientnetb0", "mobilenetv3small")

METHODS = {
    "recommended": (
        "the recommended path: adapt() tries source-only, AdaBN, MMD, MCC, DANN and keeps "
        "the best by DEV (guarded), or source-only.",
        {"method": "recommended"},
    ),
    "dann": (
        "DANN: gradient-reversed domain discriminator, lambda ramped over 5000 steps.",
        {"method": "dann", "discriminator_units": (256,), "lambda_ramp_steps": 5000},
    ),
    "coral": (
        "Deep CORAL: align source/target feature covariances.",
        {"method": "coral", "domain_loss_weight": 1.0},
    ),
}

for method, (description, options) in METHODS.items():
    for variant in BACKBONES:
        fields = application_task_fields(variant)
        register_task(
            TaskSpec(
                name=f"domain_adaptation/{method}_{variant}",
                builder="adaptation",
                **fields,
                description=f"{fields['backbone']} + {description}",
                head={"dropout": 0.2},
                trainable=True,
                recipe=ADAPT,
                task_kwargs=options,
            )
        )


def adapt(name, num_classes, source, target, weights="imagenet", input_shape=None, **kwargs):
    """Run the recommended domain adaptation on a zoo task's backbone and head.

    Builds the task's feature extractor (pretrained backbone, preprocessing
    inside) and `ClassificationHead`, then calls
    `keras_transfer.adaptation.adapt` with the task's recipe optimizer.

    Args:
        name: A `domain_adaptation/*` task, e.g.
            `"domain_adaptation/recommended_mobilenetv3small"`.
        num_classes: Integer >= 2.
        source: Tuple `(x, y)` of raw images and integer labels.
        target: Array of unlabelled raw target images.
        weights: `"imagenet"` or `None`. Defaults to `"imagenet"`.
        input_shape: Tuple or `None` (the shape of the source rows).
        **kwargs: Passed to `keras_transfer.adaptation.adapt` (`epochs`,
            `budget`, `batch_size`, `seed`, `target_test`, ...).

    Returns:
        A `keras_transfer.adaptation.AdaptationResult`.

    Example:

    ```python
    from keras_transfer.zoo import domain_adaptation
    x_source, y_source = keras_transfer.datasets.load_builtin("digits", "train", 32)
    x_target, _ = keras_transfer.datasets.load_builtin("digits-m", "train", 32)
    x_test, y_test = keras_transfer.datasets.load_builtin("digits-m", "test", 32)
    result = domain_adaptation.adapt(
        "domain_adaptation/recommended_mobilenetv3small", 10,
        (x_source[:100], y_source[:100]), x_target[:100],
        weights=None,  # the default, "imagenet", in real use
        # A smoke run: source-only alone, one step. In real use: all the data,
        # every candidate (no budget) and epochs=10+.
        budget=1, epochs=1, batch_size=160)
    print(result.report)
    result.classifier.evaluate(x_test[:32], y_test[:32])
    ```
    """
    from keras_transfer import adaptation
    from keras_transfer.backbones import check_input_shape

    spec = get_task(name)
    if spec.builder != "adaptation":
        raise ValueError(
            "Invalid value received for argument `name`. Expected a "
            f"domain_adaptation/* task. Received: name={name!r}"
        )
    check_requirements(spec)
    input_shape = check_input_shape(
        input_shape or np.shape(source[0])[1:], spec.input_shape,
        min_size=spec.min_input_size, owner=f"task {spec.name!r}",
    )
    features, head, optimizer = adaptation_parts(spec, num_classes, weights, input_shape)
    kwargs.setdefault("optimizer", optimizer)
    return adaptation.adapt(features, head, source, target, **kwargs)
