"""One validator, so every error message has the same shape.

Every message names the parameter (in backticks), the rule it broke, the value received and
what to do about it::

    `std` must be >= 0 (a standard deviation cannot be negative); got -1.0. Fix: pass std >= 0.

Modelled on scikit-learn's ``check_scalar`` and Equinox's messages.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any


class InitlabError(ValueError):
    """Base class of initlab's value errors (a ``ValueError``, so ``except ValueError`` works)."""


class InitlabTypeError(TypeError):
    """A parameter of the wrong type."""


def error_message(name: str, rule: str, value: Any, fix: str | None = None) -> str:
    """Format the standard message: parameter, rule, value received, fix."""
    msg = f"`{name}` {rule}; got {value!r}."
    if fix:
        msg += f" Fix: {fix}"
    return msg


def fail(name: str, rule: str, value: Any, fix: str | None = None) -> InitlabError:
    """Build (not raise) an :class:`InitlabError` in the standard form."""
    return InitlabError(error_message(name, rule, value, fix))


def check_scalar(
    value: Any,
    name: str,
    *,
    min_val: float | None = None,
    max_val: float | None = None,
    include_min: bool = True,
    include_max: bool = True,
    integer: bool = False,
    why: str = "",
    fix: str | None = None,
) -> float:
    """Check a real scalar and return it as ``float`` (or ``int`` when ``integer=True``).

    Rejects bools, non-numbers, NaN and infinities, and values outside ``[min_val, max_val]``
    (open at an end when ``include_min``/``include_max`` is False).
    """
    kind = "an integer" if integer else "a real number"
    if isinstance(value, bool) or not isinstance(value, numbers.Real if not integer else numbers.Integral):
        # numpy / torch 0-d scalars: accept via float()/int() when they are genuinely numeric
        try:
            import numpy as np

            if isinstance(value, np.generic) and (
                np.issubdtype(type(value), np.integer)
                if integer
                else np.issubdtype(type(value), np.number)
            ):
                value = value.item()
            else:
                raise TypeError
        except TypeError:
            raise InitlabTypeError(
                error_message(name, f"must be {kind}", value, fix or f"pass {kind}.")
            ) from None
    if integer:
        value = int(value)
    else:
        value = float(value)
        if math.isnan(value) or math.isinf(value):
            raise fail(name, f"must be a finite number{why}", value, fix or "pass a finite value.")
    if min_val is not None:
        bad = value < min_val if include_min else value <= min_val
        if bad:
            op = ">=" if include_min else ">"
            raise fail(name, f"must be {op} {min_val}{why}", value, fix or f"pass {name} {op} {min_val}.")
    if max_val is not None:
        bad = value > max_val if include_max else value >= max_val
        if bad:
            op = "<=" if include_max else "<"
            raise fail(name, f"must be {op} {max_val}{why}", value, fix or f"pass {name} {op} {max_val}.")
    return value


def check_choice(value: Any, name: str, choices: Iterable[str], *, fix: str | None = None) -> str:
    """Check that ``value`` is one of ``choices`` (strings); the error lists them all."""
    options = list(choices)
    if not isinstance(value, str) or value not in options:
        listed = ", ".join(repr(c) for c in options)
        raise fail(name, f"must be one of {listed}", value, fix or f"pass one of {listed}.")
    return value


def check_shape(shape: Any, name: str = "shape") -> tuple[int, ...]:
    """Normalize a shape to a tuple of non-negative ints."""
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (int(shape),)
    try:
        dims = tuple(shape)
    except TypeError:
        raise InitlabTypeError(
            error_message(name, "must be a tuple of non-negative integers", shape, "pass e.g. (out, in).")
        ) from None
    out = []
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, numbers.Integral) or int(d) < 0:
            raise fail(name, "must be a tuple of non-negative integers", shape, "pass e.g. (out, in).")
        out.append(int(d))
    return tuple(out)
