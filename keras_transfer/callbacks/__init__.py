"""keras_transfer.callbacks: staged unfreezing inside one `fit` (or one `fit` per stage), per-step schedules."""

from keras_transfer.callbacks.fit_staged import fit_staged
from keras_transfer.callbacks.per_step_schedule import PerStepSchedule
from keras_transfer.callbacks.staged_unfreezing import StagedUnfreezing
