"""Argument checks and the ramp shared by the schedules."""

import numbers

from keras import ops


def check_number(name, value, *, minimum=None, above=None, maximum=None):
    """Raise a `ValueError` unless `value` is a real number within bounds."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok and minimum is not None:
        ok = value >= minimum
    if ok and above is not None:
        ok = value > above
    if ok and maximum is not None:
        ok = value <= maximum
    if not ok:
        bounds = [f">= {minimum}" if minimum is not None else None]
        bounds.append(f"> {above}" if above is not None else None)
        bounds.append(f"<= {maximum}" if maximum is not None else None)
        allowed = " and ".join(b for b in bounds if b) or "finite"
        raise ValueError(
            f"Invalid value received for argument `{name}`. Expected a "
            f"number {allowed}. Received: {name}={value!r}"
        )
    return value


def check_int(name, value, *, minimum):
    """Raise a `ValueError` unless `value` is an integer >= `minimum`."""
    if (
        not isinstance(value, numbers.Integral)
        or isinstance(value, bool)
        or value < minimum
    ):
        raise ValueError(
            f"Invalid value received for argument `{name}`. Expected an "
            f"integer >= {minimum}. Received: {name}={value!r}"
        )
    return int(value)


def float_step(step):
    """The optimizer step (an int or float tensor, or a number) as float32."""
    return ops.cast(ops.convert_to_tensor(step), "float32")


def ramp(start, end, fraction):
    """Linear interpolation from `start` (fraction 0) to `end` (fraction 1)."""
    return start + (end - start) * fraction
