"""`feature_extraction/*`: a frozen pretrained backbone under a trainable MLP head.

The cheap end of transfer learning: only the head trains (the backbone stays
frozen, BatchNormalization in inference mode, its output pooled). The
backbone's features never change, so train these tasks on cached features:
the backbone runs once, then every epoch costs only the head.

```python
model = keras_transfer.zoo.build("feature_extraction/resnet50", num_classes=5)
keras_transfer.features.fit_cached(
    model, train_ds, validation_data=val_ds, cache_dir="cache/flowers", epochs=10,
    callbacks=keras_transfer.zoo.recipe("feature_extraction/resnet50", epochs=10))
keras_transfer.export(model, "exported/")  # the whole model, raw images in
```

`keras-transfer fit feature_extraction/<variant>` does this by default (in
memory; `--cache DIR` keeps the features on disk for the next run). A cache
holds one view per image, so training data is not augmented; plain
`model.fit` trains end to end instead (with augmentation, if the data has it).
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
