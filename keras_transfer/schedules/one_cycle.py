import math

import keras
from keras import ops

from keras_transfer._validation import check_int
from keras_transfer._validation import check_number
from keras_transfer.schedules._common import float_step
from keras_transfer.schedules._common import ramp

_ANNEAL_STRATEGIES = ("cos", "linear")


@keras.saving.register_keras_serializable(package="keras_transfer")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """The one-cycle learning rate policy (Smith, 2018).

    Same values as PyTorch's `torch.optim.lr_scheduler.OneCycleLR` (two
    phases, `three_phase=False`) at every step: the rate anneals from
    `max_learning_rate / div_factor` up to `max_learning_rate` over the first
    `pct_start` of training, then down to
    `max_learning_rate / (div_factor * final_div_factor)`. Both phases use
    `anneal_strategy`. Steps past `total_steps` keep the final rate.

    ```python
    def one_cycle(step):
        initial = max_learning_rate / div_factor
        final = initial / final_div_factor
        peak_step = pct_start * total_steps - 1
        step = min(step, total_steps - 1)
        if step <= peak_step:
            return anneal(initial, max_learning_rate, step / peak_step)
        return anneal(
            max_learning_rate,
            final,
            (step - peak_step) / (total_steps - 1 - peak_step),
        )

    def anneal(start, end, fraction):  # anneal_strategy="cos"
        return end + (start - end) / 2 * (1 + cos(pi * fraction))
    ```

    Momentum cycling (part of the paper and of `OneCycleLR`) is not done:
    Keras optimizers take a float momentum.

    Args:
        max_learning_rate: Float > 0. The peak learning rate.
        total_steps: Integer > 1. Number of optimizer steps of training.
        pct_start: Float in (0, 1). Fraction of the steps spent rising.
            `pct_start * total_steps` must exceed 1. Defaults to `0.3`.
        div_factor: Float >= 1. The start rate is
            `max_learning_rate / div_factor`. Defaults to `25.0`.
        final_div_factor: Float >= 1. The final rate is the start rate
            divided by this. Defaults to `1e4`.
        anneal_strategy: `"cos"` or `"linear"`. Defaults to `"cos"`.
        name: String. Name of the schedule. Defaults to `"OneCycle"`.

    Example:

    ```python
    epochs, steps_per_epoch = 10, 10
    schedule = keras_transfer.schedules.OneCycle(
        max_learning_rate=1e-3, total_steps=epochs * steps_per_epoch
    )
    print([float(schedule(step)) for step in (0, 30, 100)])
    # [4e-05, 0.0009995, 4e-09]: up to the peak at 30%, then down
    optimizer = keras.optimizers.AdamW(learning_rate=schedule)
    ```

    Reference:
        - [Smith, 2018](https://arxiv.org/abs/1803.09820)
        - [Smith & Topin, 2017](https://arxiv.org/abs/1708.07120)
    """

    def __init__(
        self,
        max_learning_rate,
        total_steps,
        pct_start=0.3,
        div_factor=25.0,
        final_div_factor=1e4,
        anneal_strategy="cos",
        name="OneCycle",
    ):
        super().__init__()
        self.max_learning_rate = check_number(
            "max_learning_rate", max_learning_rate, above=0
        )
        self.total_steps = check_int("total_steps", total_steps, minimum=2)
        self.pct_start = check_number("pct_start", pct_start, above=0)
        if pct_start >= 1 or pct_start * total_steps <= 1:
            raise ValueError(
                "Invalid value received for argument `pct_start`. Expected a "
                "fraction in (0, 1) with `pct_start * total_steps > 1` (at "
                f"least one step of rise). Received: pct_start={pct_start} "
                f"with total_steps={total_steps}"
            )
        self.div_factor = check_number("div_factor", div_factor, minimum=1)
        self.final_div_factor = check_number(
            "final_div_factor", final_div_factor, minimum=1
        )
        if anneal_strategy not in _ANNEAL_STRATEGIES:
            raise ValueError(
                "Invalid value received for argument `anneal_strategy`. "
                f"Expected one of {_ANNEAL_STRATEGIES}. "
                f"Received: anneal_strategy={anneal_strategy!r}"
            )
        self.anneal_strategy = anneal_strategy
        self.name = name

    def _anneal(self, start, end, fraction):
        if self.anneal_strategy == "linear":
            return ramp(start, end, fraction)
        return end + (start - end) / 2 * (1 + ops.cos(math.pi * fraction))

    def __call__(self, step):
        initial = self.max_learning_rate / self.div_factor
        final = initial / self.final_div_factor
        peak_step = self.pct_start * self.total_steps - 1
        step = ops.minimum(float_step(step), self.total_steps - 1)
        rising = self._anneal(initial, self.max_learning_rate, step / peak_step)
        falling = self._anneal(
            self.max_learning_rate,
            final,
            (step - peak_step) / (self.total_steps - 1 - peak_step),
        )
        return ops.where(step <= peak_step, rising, falling)

    def get_config(self):
        return {
            "max_learning_rate": self.max_learning_rate,
            "total_steps": self.total_steps,
            "pct_start": self.pct_start,
            "div_factor": self.div_factor,
            "final_div_factor": self.final_div_factor,
            "anneal_strategy": self.anneal_strategy,
            "name": self.name,
        }
