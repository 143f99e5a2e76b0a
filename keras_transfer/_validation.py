"""Argument checks shared by the core: errors name the argument, value and range."""

import math
import numbers


def check_number(name, value, *, minimum=None, above=None, maximum=None, below=None):
    """Raise a `ValueError` unless `value` is a finite real number within bounds.

    Python and numpy numbers are accepted; `bool`, NaN and infinities are not.
    """
    ok = (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )
    if ok and minimum is not None:
        ok = value >= minimum
    if ok and above is not None:
        ok = value > above
    if ok and maximum is not None:
        ok = value <= maximum
    if ok and below is not None:
        ok = value < below
    if not ok:
        bounds = [f">= {minimum}" if minimum is not None else None]
        bounds.append(f"> {above}" if above is not None else None)
        bounds.append(f"<= {maximum}" if maximum is not None else None)
        bounds.append(f"< {below}" if below is not None else None)
        allowed = " and ".join(b for b in bounds if b)
        raise ValueError(
            f"Invalid value received for argument `{name}`. Expected a "
            f"finite number{' ' + allowed if allowed else ''}. "
            f"Received: {name}={value!r}"
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
