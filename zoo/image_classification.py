"""`image_classification/*`: pretrained image backbones fine-tuned with a softmax head.

Every `keras.applications` family the zoo supports, plus the KerasHub image
presets that load by name. The recipe trains the head on the frozen backbone,
then unfreezes the top quarter of the model's layers at epoch 3
(BatchNormalization stays in inference mode) while the cosine schedule has
already lowered the learning rate.
"""

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

# variant: (keras.applications name, default image side, smallest image side)
APPLICATIONS = {
    "resnet50": ("ResNet50", 224, 32),
    "resnet101": ("ResNet101", 224, 32),
    "resnet50v2": ("ResNet50V2", 224, 32),
    "efficientnetb0": ("EfficientNetB0", 224, 32),
    "efficientnetb1": ("EfficientNetB1", 240, 32),
    "efficientnetb2": ("EfficientNetB2", 260, 32),
    "efficientnetb3": ("EfficientNetB3", 300, 32),
    "efficientnetv2b0": ("EfficientNetV2B0", 224, 32),
    "efficientnetv2s": ("EfficientNetV2S", 384, 32),
    "mobilenetv2": ("MobileNetV2", 224, 32),
    "mobilenetv3small": ("MobileNetV3Small", 224, 32),
    "mobilenetv3large": ("MobileNetV3Large", 224, 32),
    "convnext_tiny": ("ConvNeXtTiny", 224, 32),
    "convnext_small": ("ConvNeXtSmall", 224, 32),
    "densenet121": ("DenseNet121", 224, 32),
    "xception": ("Xception", 299, 71),
    "inceptionv3": ("InceptionV3", 299, 75),
    "vgg16": ("VGG16", 224, 32),
    "nasnetmobile": ("NASNetMobile", 224, 32),
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

for variant, (application, side, min_side) in APPLICATIONS.items():
    register_task(
        TaskSpec(
            name=f"image_classification/{variant}",
            builder="classifier",
            backbone=application,
            input_shape=(side, side, 3),
            min_input_size=min_side,
            source=f"keras.applications.{application} (ImageNet-1k)",
            description=f"{application} fine-tuned: frozen, then top 25% unfrozen at epoch 3.",
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
