import math
import numbers

import keras
from keras import ops

from keras_transfer._validation import check_int
from keras_transfer._validation import check_number
from keras_transfer.schedules._common import float_step
from keras_transfer.schedules._common import ramp
from keras_transfer.schedules._common import WrapsSchedule
from keras_transfer.schedules._common import serialize_schedule


@keras.saving.register_keras_serializable(package="keras_transfer")
class LinearWarmup(WrapsSchedule, keras.optimizers.schedules.LearningRateSchedule):
    """Puts a linear warmup in front of any learning rate schedule.

    Keras' `CosineDecay` has a warmup of its own; this wrapper gives one to
    every other schedule, e.g. `CosineDecayRestarts` (SGDR), `ExponentialDecay`
    or a constant learning rate. During the first `warmup_steps` steps the
    rate rises linearly from `initial_learning_rate` to `schedule(0)`; after
    that the wrapped schedule runs as if training had started at the end of
    the warmup:

    ```python
    def linear_warmup(step):
        if step < warmup_steps:
            target = schedule(0)
            return initial_learning_rate + (
                target - initial_learning_rate
            ) * step / warmup_steps
        return schedule(step - warmup_steps)
    ```

    Args:
        schedule: A `keras.optimizers.schedules.LearningRateSchedule`, or a
            float for a constant learning rate after the warmup.
        warmup_steps: Integer > 0. Number of optimizer steps of warmup.
        initial_learning_rate: Float >= 0. The learning rate at step 0.
            Defaults to `0.0`.
        name: String. Name of the schedule. Defaults to `"LinearWarmup"`.

    Example:

    SGDR (cosine decay with warm restarts) after 500 steps of warmup:

    ```python
    sgdr = keras.optimizers.schedules.CosineDecayRestarts(
        initial_learning_rate=1e-3, first_decay_steps=1000
    )
    schedule = keras_transfer.schedules.LinearWarmup(sgdr, warmup_steps=500)
    print([float(schedule(step)) for step in (0, 250, 500, 1000, 1500)])
    # [0.0, 0.0005, 0.001, 0.0005, 0.001]  (restart at step 1500)
    optimizer = keras.optimizers.SGD(learning_rate=schedule, momentum=0.9)
    ```

    Reference:
        - [Goyal et al., 2017](https://arxiv.org/abs/1706.02677)
        - [Loshchilov & Hutter, 2017](https://arxiv.org/abs/1608.03983)
    """

    def __init__(
        self,
        schedule,
        warmup_steps,
        initial_learning_rate=0.0,
        name="LinearWarmup",
    ):
        super().__init__()
        is_schedule = isinstance(
            schedule, keras.optimizers.schedules.LearningRateSchedule
        )
        is_rate = (
            isinstance(schedule, numbers.Real)
            and not isinstance(schedule, bool)
            and math.isfinite(schedule)
            and schedule > 0
        )
        if not (is_schedule or is_rate):
            raise ValueError(
                "Invalid value received for argument `schedule`. Expected a "
                "`keras.optimizers.schedules.LearningRateSchedule` or a "
                f"finite float > 0. Received: schedule={schedule!r}"
            )
        self.schedule = schedule
        self.warmup_steps = check_int("warmup_steps", warmup_steps, minimum=1)
        self.initial_learning_rate = check_number(
            "initial_learning_rate", initial_learning_rate, minimum=0
        )
        self.name = name

    def _wrapped(self, step):
        if isinstance(
            self.schedule, keras.optimizers.schedules.LearningRateSchedule
        ):
            return ops.cast(self.schedule(step), "float32")
        return ops.convert_to_tensor(self.schedule, "float32")

    def __call__(self, step):
        step = float_step(step)
        warmup = ramp(
            self.initial_learning_rate,
            self._wrapped(ops.zeros_like(step)),
            step / self.warmup_steps,
        )
        after = self._wrapped(ops.maximum(step - self.warmup_steps, 0.0))
        return ops.where(step < self.warmup_steps, warmup, after)

    def get_config(self):
        return {
            "schedule": serialize_schedule(self.schedule),
            "warmup_steps": self.warmup_steps,
            "initial_learning_rate": self.initial_learning_rate,
            "name": self.name,
        }
