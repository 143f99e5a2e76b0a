"""keras_transfer.callbacks: staged unfreezing inside one `fit`, or one `fit` per stage."""

from keras_transfer.callbacks.fit_staged import fit_staged
from keras_transfer.callbacks.staged_unfreezing import StagedUnfreezing
