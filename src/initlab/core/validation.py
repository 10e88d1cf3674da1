"""One validator, so every error message has the same shape.

Every message names the parameter (in backticks), the rule it broke, the value received and
what to do about it::

    `std` must be >= 0 (a standard deviation cannot be negative); got -1.0. Fix: pass std >= 0.

Modelled on scikit-learn's ``check_scalar`` and Equinox's messages.
"""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Iterable
from typing import Any, Literal, overload


class InitlabError(ValueError):
    """Base class of initlab's value errors (a ``ValueError``, so ``except ValueError`` works)."""


class InitlabTypeError(TypeError):
    """A parameter of the wrong type."""


class InitlabArgumentError(InitlabTypeError, InitlabError):
    """A wrong-typed argument where ``torch.nn.init`` raises ``ValueError`` (e.g.
    ``calculate_gain("leaky_relu", True)``): catchable as either, so drop-in code that catches
    torch's ``ValueError`` keeps working."""


class _Huge:
    """Stands for an integer too long to print (``repr(10**5000)`` raises: Python's digit
    limit), shown by its size."""

    def __init__(self, value: int):
        self.value = value

    def __repr__(self) -> str:
        sign = "-" if self.value < 0 else ""
        bits = abs(self.value).bit_length()
        return f"{sign}an integer of {bits} bits (about {sign}10**{round(bits * 0.30103)})"


def shown(value: Any) -> Any:
    """``value`` as an error message shows it: integers beyond 10**300 by their size."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) \
            and abs(int(value)).bit_length() > 1000:
        return _Huge(int(value))
    return value


def error_message(name: str, rule: str, value: Any, fix: str | None = None) -> str:
    """Format the standard message: parameter, rule, value received, fix."""
    msg = f"`{name}` {rule}; got {shown(value)!r}."
    if fix:
        msg += f" Fix: {fix}"
    return msg


def fail(name: str, rule: str, value: Any, fix: str | None = None) -> InitlabError:
    """Build (not raise) an :class:`InitlabError` in the standard form."""
    return InitlabError(error_message(name, rule, value, fix))


@overload
def check_scalar(
    value: Any, name: str, *, min_val: float | None = ..., max_val: float | None = ...,
    include_min: bool = ..., include_max: bool = ..., integer: Literal[True], finite: bool = ...,
    why: str = ..., fix: str | None = ...,
) -> int: ...
@overload
def check_scalar(
    value: Any, name: str, *, min_val: float | None = ..., max_val: float | None = ...,
    include_min: bool = ..., include_max: bool = ..., integer: Literal[False] = ...,
    finite: bool = ..., why: str = ..., fix: str | None = ...,
) -> float: ...
@overload
def check_scalar(
    value: Any, name: str, *, min_val: float | None = ..., max_val: float | None = ...,
    include_min: bool = ..., include_max: bool = ..., integer: bool, finite: bool = ...,
    why: str = ..., fix: str | None = ...,
) -> float: ...
def check_scalar(
    value: Any,
    name: str,
    *,
    min_val: float | None = None,
    max_val: float | None = None,
    include_min: bool = True,
    include_max: bool = True,
    integer: bool = False,
    finite: bool = True,
    why: str = "",
    fix: str | None = None,
) -> float:
    """Check a real scalar and return it as ``float`` (or ``int`` when ``integer=True``).

    Rejects bools, non-numbers, NaN and infinities (``finite=False`` admits +-inf, for bounds
    such as a truncation's), and values outside ``[min_val, max_val]`` (open at an end when
    ``include_min``/``include_max`` is False).
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
        try:
            value = float(value)
        except OverflowError:  # an int beyond float64's range, e.g. 10**400
            raise fail(name, f"must be a finite number within float64's range (|x| <= "
                       f"{sys.float_info.max:.6g}){why}", value,
                       fix or "pass a finite value.") from None
        if math.isnan(value) or (finite and math.isinf(value)):
            what = "a finite number" if finite else "a number or +-inf, not NaN"
            raise fail(name, f"must be {what}{why}", value, fix or "pass a finite value.")
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


# Largest dimension / fan accepted: torch sizes are int64, and no tensor has more elements.
MAX_DIM = 2**63 - 1


def check_shape(shape: Any, name: str = "shape") -> tuple[int, ...]:
    """Normalize a shape to a tuple of non-negative ints (each at most ``MAX_DIM``)."""
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
        if int(d) > MAX_DIM:
            raise fail(name, "must have dimensions of at most 2**63 - 1 (torch's int64 sizes)",
                       tuple(shown(x) for x in dims), "pass the tensor's real shape.")
        out.append(int(d))
    return tuple(out)


def check_finite_param(value: Any, name: str, *, what: str = "a parameter",
                       type_error: type[Exception] = InitlabTypeError) -> float:
    """A real, finite number (``what`` says what it is, for the message): refuses bool,
    non-numbers, NaN and infinities, which would otherwise give a silent NaN or 0. A wrong type
    raises ``type_error``.

    >>> check_finite_param(0.2, "param", what="the negative slope of leaky_relu")
    0.2
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise type_error(error_message(name, f"must be a real number ({what})", value,
                                       "pass e.g. 0.2."))
    return check_scalar(value, name, why=f" ({what})")


# Probe on which check_numeric_function evaluates an activation: covers both signs, zero and the
# range where pre-activations live (|z| <= 3 holds 99.7% of N(0, 1)).
_PROBE = (-3.0, -1.5, -0.5, 0.0, 0.5, 1.5, 3.0)


def check_numeric_function(f: Any, name: str = "activation") -> Any:
    """Check that ``f`` is a NumPy-vectorized real function: it accepts a float64 array and
    returns finite values of the same shape on a probe of [-3, 3] (``math.tanh`` raises on
    arrays, ``np.log`` gives NaN for negative inputs; both would break a Gaussian integral).
    Returns ``f``."""
    import numpy as np

    if not callable(f):
        raise InitlabTypeError(error_message(name, "must be callable (or an activation name)",
                                             type(f).__name__, "pass e.g. np.tanh or 'tanh'."))
    label = getattr(f, "__name__", type(f).__name__)
    probe = np.array(_PROBE)
    try:
        with np.errstate(all="ignore"):
            y = np.asarray(f(probe), dtype=np.float64)
    except Exception as exc:  # noqa: BLE001 - any failure means it is not array-valued
        raise InitlabTypeError(error_message(
            name, "must accept a NumPy float64 array (a vectorized function)", label,
            f"pass a vectorized function such as np.tanh instead of math.tanh, or a name "
            f"({type(exc).__name__}: {exc}).")) from None
    if y.shape != probe.shape:
        raise fail(name, "must map an array to an array of the same shape (elementwise)", label,
                   "pass an elementwise function such as np.tanh.")
    if not np.isfinite(y).all():
        bad = float(probe[~np.isfinite(y)][0])
        raise fail(name, f"must be finite on the real line (it gives {y[~np.isfinite(y)][0]} at "
                   f"z = {bad})", label,
                   "pass an activation defined for every real input (np.log and np.sqrt are not).")
    return f
