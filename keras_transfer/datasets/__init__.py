"""keras_transfer.datasets: offline built-ins, tf.data pipelines, paired batches."""

from keras_transfer.datasets.builtin import list_builtins
from keras_transfer.datasets.builtin import load_builtin
from keras_transfer.datasets.dataset_info import DatasetInfo
from keras_transfer.datasets.epochs import EpochSync
from keras_transfer.datasets.paired import PairedArrays
from keras_transfer.datasets.paired import paired_dataset
from keras_transfer.datasets.pipeline import describe
from keras_transfer.datasets.pipeline import find_unreadable_images
from keras_transfer.datasets.pipeline import labels
from keras_transfer.datasets.pipeline import load
