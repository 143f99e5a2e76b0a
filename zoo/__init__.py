"""The keras-transfer model zoo: task names mapped to ready-built transfer models.

Example:

>>> import keras_transfer.zoo as zoo
>>> zoo.list_tasks("image_classification/efficientnet*")
['image_classification/efficientnetb0', ...]
>>> # Build a task, then fit it with its recipe's callbacks. The tiny offline
>>> # task "test/tiny_cnn" keeps this fast; a pretrained one such as
>>> # "image_classification/efficientnetb0" works the same way (it downloads
>>> # ImageNet weights; its recipe unfreezes at epoch 3, so it needs epochs > 3).
>>> x, y = keras_transfer.datasets.load_builtin("digits", "train", 32)
>>> model = zoo.build("test/tiny_cnn", num_classes=10)
>>> history = model.fit(x[:32], y[:32], validation_data=(x[32:48], y[32:48]),
...                     epochs=2, callbacks=zoo.recipe("test/tiny_cnn", epochs=2))
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
