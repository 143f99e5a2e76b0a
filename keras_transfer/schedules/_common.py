"""The step conversion, the ramp and the wrapped-schedule config shared by the schedules."""

import keras
from keras import ops


def float_step(step):
    """The optimizer step (an int or float tensor, or a number) as float32."""
    return ops.cast(ops.convert_to_tensor(step), "float32")


def ramp(start, end, fraction):
    """Linear interpolation from `start` (fraction 0) to `end` (fraction 1)."""
    return start + (end - start) * fraction


def serialize_schedule(schedule):
    """A wrapped schedule as a config value (a float rate stays a float)."""
    if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        return keras.saving.serialize_keras_object(schedule)
    return schedule


class WrapsSchedule:
    """`from_config` of a schedule whose `schedule` argument is a schedule or a rate."""

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config["schedule"], dict):
            config["schedule"] = keras.saving.deserialize_keras_object(config["schedule"])
        return cls(**config)
