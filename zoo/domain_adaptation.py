"""`domain_adaptation/*`: unsupervised domain adaptation over pretrained backbones.

`dann_<backbone>` trains a domain discriminator behind a gradient reversal
layer whose lambda ramps up along the DANN sigmoid (Ganin et al. 2016,
https://arxiv.org/abs/1505.07818); `coral_<backbone>` aligns the second-order
statistics of source and target features (Sun & Saenko 2016,
https://arxiv.org/abs/1607.01719). Both return a compiled
`keras_transfer.adaptation.AdaptationModel`: fit it on
`keras_transfer.adaptation.paired_dataset(source=(x, y), target=x_target)`,
then evaluate and export `model.classifier`.
"""

from keras_transfer.zoo.image_classification import application_task_fields
from keras_transfer.zoo.registry import Recipe
from keras_transfer.zoo.registry import TaskSpec
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
