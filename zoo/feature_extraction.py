"""`feature_extraction/*`: a frozen pretrained backbone under a trainable MLP head.

The cheap end of transfer learning: only the head trains (the backbone stays
frozen, BatchNormalization in inference mode), so an epoch costs one forward
pass through the backbone. Use it with few labels or little compute.
"""

from keras_transfer.zoo.image_classification import application_task_fields
from keras_transfer.zoo.registry import Recipe
from keras_transfer.zoo.registry import TaskSpec
from keras_transfer.zoo.registry import register_task

HEAD_ONLY = Recipe(
    optimizer="adam",
    learning_rate=1e-3,
    warmup_epochs=0,
    schedule="cosine",
    early_stopping_patience=3,
)

VARIANTS = (
    "resnet50",
    "efficientnetb0",
    "efficientnetv2b0",
    "mobilenetv3small",
    "convnext_tiny",
    "densenet121",
)

for variant in VARIANTS:
    fields = application_task_fields(variant)
    register_task(
        TaskSpec(
            name=f"feature_extraction/{variant}",
            builder="classifier",
            **fields,
            description=f"Frozen {fields['backbone']} + MLP head (256 units); only the head trains.",
            head={"hidden_units": (256,), "dropout": 0.3},
            trainable=False,
            recipe=HEAD_ONLY,
        )
    )
