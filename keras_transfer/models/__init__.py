"""keras_transfer.models: ready-to-fit classifiers and the models they are made of.

`TextClassifier` needs KerasHub (which imports TensorFlow), so it is loaded
only when asked for.
"""

from keras_transfer.models.classifier import build_classifier
from keras_transfer.models.cnn import cnn_features
from keras_transfer.models.compile import compile_args


def __getattr__(name):
    if name == "TextClassifier":
        from keras_transfer.models.text_classifier import TextClassifier

        return TextClassifier
    raise AttributeError(
        f"module 'keras_transfer.models' has no attribute {name!r}"
    )
