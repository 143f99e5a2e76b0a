"""keras_transfer.losses: domain alignment and target self-training losses.

Alignment (source vs target rows): CORAL, MMD. Self-training (target rows
only): entropy minimisation, minimum class confusion (MCC), FixMatch
pseudo-label consistency. Label smoothing for integer labels:
`SparseCategoricalCrossentropy`. The `*Loss` classes read a mixed batch of
`keras_transfer.datasets.paired_dataset` (domain indicator as `y_true`).
"""

from keras_transfer.losses.coral import CoralLoss
from keras_transfer.losses.coral import coral_loss
from keras_transfer.losses.entropy import EntropyLoss
from keras_transfer.losses.entropy import entropy_loss
from keras_transfer.losses.fixmatch import FixMatchLoss
from keras_transfer.losses.fixmatch import fixmatch_loss
from keras_transfer.losses.mcc import MCCLoss
from keras_transfer.losses.mcc import mcc_loss
from keras_transfer.losses.mmd import MMDLoss
from keras_transfer.losses.mmd import mmd_loss
from keras_transfer.losses.sparse_categorical_crossentropy import (
    SparseCategoricalCrossentropy,
)
