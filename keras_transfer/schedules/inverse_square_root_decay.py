import keras
from keras import ops

from keras_transfer._validation import check_int
from keras_transfer._validation import check_number
from keras_transfer.schedules._common import float_step
from keras_transfer.schedules._common import ramp


@keras.saving.register_keras_serializable(package="keras_transfer")
class InverseSquareRootDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Inverse square root decay with an optional linear warmup.

    The Transformer schedule: the rate is held (or warmed up) until
    `timescale` steps, then falls as one over the square root of the step:

    ```python
    def inverse_square_root_decay(step):
        if step < warmup_steps:
            return initial_learning_rate * step / warmup_steps
        return initial_learning_rate * sqrt(timescale / max(step, timescale))
    ```

    `timescale` defaults to `max(warmup_steps, 1)`, so with a warmup this is
    the schedule of Vaswani et al. (linear rise to the peak
    `initial_learning_rate` at `warmup_steps`, then `1/sqrt(step)` decay) and
    without one T5's `1/sqrt(max(step, timescale))` (with
    `initial_learning_rate = 1/sqrt(timescale)`).

    Args:
        initial_learning_rate: Float > 0. The peak learning rate, reached at
            `warmup_steps` and held until `timescale`.
        warmup_steps: Integer >= 0. Steps of linear warmup from 0. Defaults
            to `0` (no warmup).
        timescale: Integer >= `max(warmup_steps, 1)`. Step at which the decay
            starts. Defaults to `None`, meaning `max(warmup_steps, 1)`.
        name: String. Name of the schedule. Defaults to
            `"InverseSquareRootDecay"`.

    Example:

    ```python
    # Vaswani et al.: warm up for 4000 steps, then lr ~ 1/sqrt(step).
    schedule = keras_transfer.schedules.InverseSquareRootDecay(
        initial_learning_rate=7e-4, warmup_steps=4000
    )
    print([float(schedule(step)) for step in (0, 2000, 4000, 16000)])
    # [0.0, 0.00035, 0.0007, 0.00035]

    # T5: lr = 1 / sqrt(max(step, 10000)).
    t5 = keras_transfer.schedules.InverseSquareRootDecay(
        initial_learning_rate=0.01, timescale=10000
    )
    print([float(t5(step)) for step in (0, 10000, 40000)])
    # [0.01, 0.01, 0.005]
    optimizer = keras.optimizers.Adam(learning_rate=schedule)
    ```

    Reference:
        - [Vaswani et al., 2017](https://arxiv.org/abs/1706.03762)
        - [Raffel et al., 2020](https://arxiv.org/abs/1910.10683)
    """

    def __init__(
        self,
        initial_learning_rate,
        warmup_steps=0,
        timescale=None,
        name="InverseSquareRootDecay",
    ):
        super().__init__()
        self.initial_learning_rate = check_number(
            "initial_learning_rate", initial_learning_rate, above=0
        )
        self.warmup_steps = check_int("warmup_steps", warmup_steps, minimum=0)
        if timescale is None:
            timescale = max(self.warmup_steps, 1)
        self.timescale = check_int(
            "timescale", timescale, minimum=max(self.warmup_steps, 1)
        )
        self.name = name

    def __call__(self, step):
        step = float_step(step)
        decayed = self.initial_learning_rate * ops.sqrt(
            self.timescale / ops.maximum(step, self.timescale)
        )
        if self.warmup_steps == 0:
            return decayed
        warmup = ramp(0.0, self.initial_learning_rate, step / self.warmup_steps)
        return ops.where(step < self.warmup_steps, warmup, decayed)

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "warmup_steps": self.warmup_steps,
            "timescale": self.timescale,
            "name": self.name,
        }
