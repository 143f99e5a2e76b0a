import keras
from keras import ops

from keras_transfer._validation import check_int
from keras_transfer._validation import check_number
from keras_transfer.schedules._common import float_step


@keras.saving.register_keras_serializable(package="keras_transfer")
class DANNLambda:
    """The DANN ramp of the gradient reversal coefficient lambda.

    Lambda grows from 0 towards `max_value` along a sigmoid, which keeps the
    noisy domain classifier from disturbing early training:

    ```python
    def dann_lambda(step):
        p = min(max(step / total_steps, 0), 1)
        return max_value * (2 / (1 + exp(-gamma * p)) - 1)
    ```

    It is a plain serializable callable `fn(step) -> scalar tensor`, not a
    learning rate schedule (do not give it to an optimizer). The step is an
    int or float tensor (typically a step counter variable that a layer
    increments in training), so the value is computed inside the compiled
    train step on every backend. Serialize it with
    `keras.saving.serialize_keras_object`.

    Args:
        total_steps: Integer > 0. Number of training steps (the `p = 1`
            point).
        gamma: Float > 0. Steepness of the ramp. Defaults to `10.0`.
        max_value: Float > 0. The value lambda approaches. Defaults to `1.0`.

    Example:

    ```python
    ramp = keras_transfer.schedules.DANNLambda(total_steps=5000)
    float(ramp(0)), float(ramp(5000))  # (0.0, 0.9999092)
    ```

    Reference:
        - [Ganin et al., 2016](https://arxiv.org/abs/1505.07818)
    """

    def __init__(self, total_steps, gamma=10.0, max_value=1.0):
        self.total_steps = check_int("total_steps", total_steps, minimum=1)
        self.gamma = check_number("gamma", gamma, above=0)
        self.max_value = check_number("max_value", max_value, above=0)

    def __call__(self, step):
        progress = ops.clip(float_step(step) / self.total_steps, 0.0, 1.0)
        return self.max_value * (
            2.0 / (1.0 + ops.exp(-self.gamma * progress)) - 1.0
        )

    def get_config(self):
        return {
            "total_steps": self.total_steps,
            "gamma": self.gamma,
            "max_value": self.max_value,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
