"""`test/*`: tiny tasks that build in milliseconds, for tests and smoke runs."""

from keras_transfer.zoo.registry import Recipe
from keras_transfer.zoo.registry import TaskSpec
from keras_transfer.zoo.registry import register_task

register_task(
    TaskSpec(
        name="test/tiny_cnn",
        builder="tiny_cnn",
        backbone="tiny_cnn",
        input_shape=(32, 32, 3),
        min_input_size=8,
        preprocessing="Rescaling(1/255) inside the model",
        source="random initialisation",
        trainable=True,
        description="Two conv blocks + logits head, all trainable; builds in milliseconds.",
        recipe=Recipe(
            optimizer="adam",
            learning_rate=3e-3,
            warmup_epochs=0,
            schedule="constant",
            unfreeze_stages=(),
            early_stopping_patience=5,
        ),
        large=False,
    )
)

register_task(
    TaskSpec(
        name="test/tiny_text",
        builder="tiny_text",
        backbone="tiny_text",
        input_shape=(16,),
        min_input_size=1,
        preprocessing="none: takes int token ids",
        source="random initialisation",
        trainable=True,
        description="Embedding + mean pooling + logits head over token ids, all trainable.",
        recipe=Recipe(optimizer="adam", learning_rate=1e-2, schedule="constant"),
        task_kwargs={"vocabulary_size": 256},
        large=False,
    )
)
