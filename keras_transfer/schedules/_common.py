"""The step conversion and the ramp shared by the schedules."""

from keras import ops


def float_step(step):
    """The optimizer step (an int or float tensor, or a number) as float32."""
    return ops.cast(ops.convert_to_tensor(step), "float32")


def ramp(start, end, fraction):
    """Linear interpolation from `start` (fraction 0) to `end` (fraction 1)."""
    return start + (end - start) * fraction
