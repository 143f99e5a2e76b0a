"""`image_classification/*`: pretrained image backbones fine-tuned with a logits head.

The head is a `ClassificationHead` without activation; the softmax is in the loss.

Every `keras.applications` family the zoo supports, plus the KerasHub image
presets that load by name. The recipe trains the head on the frozen backbone,
then unfreezes the top quarter of the model's layers at epoch 3
(BatchNormalization stays in inference mode) while the cosine schedule has
already lowered the learning rate.
"""

from keras_transfer.backbones import application_spec
from keras_transfer.zoo.registry import Recipe
from keras_transfer.zoo.registry import TaskSpec
from keras_transfer.zoo.registry import register_task

FINE_TUNE = Recipe(
    optimizer="adamw",
    learning_rate=1e-3,
    weight_decay=1e-4,
    warmup_epochs=1,
    schedule="cosine",
    unfreeze_stages=((3, 0.25),),
    early_stopping_patience=3,
)

# Zoo variant names; sizes and preprocessing come from the one table of
# backbone facts (`keras_transfer.backbones`).
VARIANTS = (
    "resnet50",
    "resnet101",
    "resnet50v2",
    "efficientnetb0",
    "efficientnetb1",
    "efficientnetb2",
    "efficientnetb3",
    "efficientnetv2b0",
    "efficientnetv2s",
    "mobilenetv2",
    "mobilenetv3small",
    "mobilenetv3large",
    "convnext_tiny",
    "convnext_small",
    "densenet121",
    "xception",
    "inceptionv3",
    "vgg16",
    "nasnetmobile",
)


def application_task_fields(variant):
    """`TaskSpec` fields of a `keras.applications` variant, from the backbone table."""
    spec = application_spec(variant)
    side = spec.default_size
    return {
        "backbone": spec.name,
        "input_shape": (side, side, 3),
        "min_input_size": spec.min_size,
        "source": f"keras.applications.{spec.name} (ImageNet-1k)",
    }


# variant: KerasHub preset (weights from Kaggle; `weights=None` builds offline).
HUB_PRESETS = {
    "hub_resnet_50": "resnet_50_imagenet",
    "hub_resnet_v2_50": "resnet_v2_50_imagenet",
    "hub_efficientnet_b0": "efficientnet_b0_ra_imagenet",
    "hub_mobilenet_v3_small": "mobilenet_v3_small_100_imagenet",
    "hub_densenet_121": "densenet_121_imagenet",
    "hub_vit_base_patch16_224": "vit_base_patch16_224_imagenet",
}

for variant in VARIANTS:
    fields = application_task_fields(variant)
    register_task(
        TaskSpec(
            name=f"image_classification/{variant}",
            builder="classifier",
            **fields,
            description=f"{fields['backbone']} fine-tuned: frozen, then top 25% unfrozen at epoch 3.",
            head={"dropout": 0.2},
            recipe=FINE_TUNE,
        )
    )

for variant, preset in HUB_PRESETS.items():
    register_task(
        TaskSpec(
            name=f"image_classification/{variant}",
            builder="classifier",
            backbone=preset,
            input_shape=(224, 224, 3),
            source=f"KerasHub preset {preset!r}",
            description=f"KerasHub {preset} fine-tuned: frozen, then top 25% unfrozen.",
            head={"dropout": 0.2},
            recipe=FINE_TUNE,
            requirements=("keras_hub",),
        )
    )
