"""keras_transfer.callbacks."""

from keras_transfer.callbacks.staged_unfreezing import StagedUnfreezing
