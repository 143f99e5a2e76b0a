import keras
from keras import ops

from keras_transfer._validation import check_int
from keras_transfer._validation import check_number
from keras_transfer.schedules._common import float_step


@keras.saving.register_keras_serializable(package="keras_transfer")
class DANNDecay(keras.optimizers.schedules.LearningRateSchedule):
    """The learning rate annealing of DANN (Ganin et al., 2016).

    ```python
    def dann_decay(step):
        p = min(max(step / total_steps, 0), 1)
        return initial_learning_rate / (1 + alpha * p) ** beta
    ```

    With the defaults the rate falls to about 16% of its start by
    `total_steps` and stays there afterwards.

    Args:
        initial_learning_rate: Float > 0. The learning rate at step 0.
        total_steps: Integer > 0. Number of optimizer steps of training
            (the `p = 1` point).
        alpha: Float >= 0. Speed of the decay. Defaults to `10.0`.
        beta: Float >= 0. Exponent of the decay. Defaults to `0.75`.
        name: String. Name of the schedule. Defaults to `"DANNDecay"`.

    Example:

    ```python
    epochs, steps_per_epoch = 10, 100
    schedule = keras_transfer.schedules.DANNDecay(
        initial_learning_rate=0.01, total_steps=epochs * steps_per_epoch
    )
    print([float(schedule(step)) for step in (0, 500, 1000)])
    # [0.01, 0.002608, 0.001656]
    optimizer = keras.optimizers.SGD(learning_rate=schedule, momentum=0.9)
    ```

    Reference:
        - [Ganin et al., 2016](https://arxiv.org/abs/1505.07818)
    """

    def __init__(
        self,
        initial_learning_rate,
        total_steps,
        alpha=10.0,
        beta=0.75,
        name="DANNDecay",
    ):
        super().__init__()
        self.initial_learning_rate = check_number(
            "initial_learning_rate", initial_learning_rate, above=0
        )
        self.total_steps = check_int("total_steps", total_steps, minimum=1)
        self.alpha = check_number("alpha", alpha, minimum=0)
        self.beta = check_number("beta", beta, minimum=0)
        self.name = name

    def __call__(self, step):
        progress = ops.clip(float_step(step) / self.total_steps, 0.0, 1.0)
        return self.initial_learning_rate / ops.power(
            1.0 + self.alpha * progress, self.beta
        )

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "total_steps": self.total_steps,
            "alpha": self.alpha,
            "beta": self.beta,
            "name": self.name,
        }
