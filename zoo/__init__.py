"""The keras-transfer model zoo: task names mapped to ready-built transfer models.

Example:

>>> import keras_transfer.zoo as zoo
>>> zoo.list_tasks("image_classification/efficientnet*")
>>> model = zoo.build("image_classification/efficientnetb0", num_classes=5)
>>> model.fit(train_ds, validation_data=val_ds, epochs=10,
...           callbacks=zoo.recipe("image_classification/efficientnetb0", epochs=10))
"""

from keras_transfer.zoo import domain_adaptation  # noqa: F401  (registers tasks)
from keras_transfer.zoo import feature_extraction  # noqa: F401
from keras_transfer.zoo import image_classification  # noqa: F401
from keras_transfer.zoo import text_classification  # noqa: F401
from keras_transfer.zoo import tiny  # noqa: F401
from keras_transfer.zoo.builders import build
from keras_transfer.zoo.builders import recipe
from keras_transfer.zoo.registry import Recipe
from keras_transfer.zoo.registry import TaskSpec
from keras_transfer.zoo.registry import check_requirements
from keras_transfer.zoo.registry import get_task
from keras_transfer.zoo.registry import list_tasks
from keras_transfer.zoo.registry import register_task
