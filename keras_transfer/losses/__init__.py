"""keras_transfer.losses: domain alignment losses, label smoothing for sparse labels."""

from keras_transfer.losses.coral import CoralLoss
from keras_transfer.losses.coral import coral_loss
from keras_transfer.losses.mmd import MMDLoss
from keras_transfer.losses.mmd import mmd_loss
from keras_transfer.losses.sparse_categorical_crossentropy import (
    SparseCategoricalCrossentropy,
)
