"""argparse ``type=`` functions every ``initlab`` command shares: each refuses a bad value with
what is wanted, the value received and a fix (argparse adds the option's name)."""

from __future__ import annotations

import argparse
import math


def whole_number(text: str) -> int:
    """argparse ``type=`` of an integer option: argparse's ``type=int`` says only "invalid int
    value"; this says what is wanted (range checks stay with the config or function, which
    knows each value's rule)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a whole number; got {text!r}. Fix: pass e.g. 10") from None


def finite_float(text: str) -> float:
    """argparse ``type=`` of a finite number (``nan``/``inf`` refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number; got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number; got {text!r}")
    return value
