import numbers

import keras
from keras import ops

from keras_transfer.schedules._common import float_step
from keras_transfer.schedules._common import WrapsSchedule
from keras_transfer.schedules._common import serialize_schedule


@keras.saving.register_keras_serializable(package="keras_transfer")
class StepOffset(WrapsSchedule, keras.optimizers.schedules.LearningRateSchedule):
    """Starts a learning rate schedule at a later optimizer step.

    An optimizer feeds its schedule the step counter `iterations`, which
    keeps counting across `fit` calls. To run a schedule from its start in
    a run that begins at step `offset` (a second `fit` of a trained model,
    a new unfreezing stage), wrap it:

    ```python
    def step_offset(step):
        return schedule(step - offset)
    ```

    Args:
        schedule: A `keras.optimizers.schedules.LearningRateSchedule`.
        offset: Integer. The optimizer step at which `schedule` sees step
            0 (negative: the schedule starts `-offset` steps in).
        name: String. Name of the schedule. Defaults to `"StepOffset"`.

    Example:

    ```python
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile(keras.optimizers.Adam(1e-3), "mse")
    x, y = np.random.rand(8, 2), np.random.rand(8, 1)
    model.fit(x, y, batch_size=2, verbose=0)  # first stage: 4 steps

    # Second stage: a cosine decay that starts from its top at step 4.
    optimizer = model.optimizer
    schedule = keras_transfer.schedules.StepOffset(
        keras.optimizers.schedules.CosineDecay(1e-3, decay_steps=1000),
        offset=int(optimizer.iterations),
    )
    print(float(schedule(4)), float(schedule(504)))  # 0.001 0.0005
    optimizer.learning_rate = schedule
    model.compile(optimizer, "mse")  # rebuild the train step for the new rate
    model.fit(x, y, batch_size=2, verbose=0)
    ```
    """

    def __init__(self, schedule, offset, name="StepOffset"):
        super().__init__()
        if not isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
            raise ValueError(
                "Invalid value received for argument `schedule`. Expected a "
                "`keras.optimizers.schedules.LearningRateSchedule`. "
                f"Received: schedule={schedule!r}"
            )
        self.schedule = schedule
        if isinstance(offset, bool) or not isinstance(offset, numbers.Integral):
            raise ValueError(
                "Invalid value received for argument `offset`. Expected an "
                f"integer. Received: offset={offset!r}"
            )
        self.offset = int(offset)
        self.name = name

    def __call__(self, step):
        return self.schedule(ops.subtract(float_step(step), float(self.offset)))

    def get_config(self):
        return {
            "schedule": serialize_schedule(self.schedule),
            "offset": self.offset,
            "name": self.name,
        }
