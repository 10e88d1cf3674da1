"""The :class:`Initializer`: a named, parametrized rule that turns a shape into a distribution.

An initializer does no drawing itself. ``resolve(shape, fans=..., layout=..., role=...)`` returns
a :mod:`~initlab.core.distributions` object (e.g. ``Normal(0, 0.05)``); a backend draws it.
``sample`` is the NumPy reference path.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .distributions import Distribution
from .fans import LAYOUTS, check_fans, fans, to_torch_shape
from .validation import InitlabTypeError, check_choice, check_shape, error_message, fail

ROLES = ("weight", "bias")

# Version of the NumPy sampling stream: which bit generator, how seeds become streams and how
# each distribution consumes it. Bump it whenever the same seed would give different numbers;
# ``to_dict`` records it so that a change of stream is never silent.
# v2: the catalog's `orthogonal` (and delta_orthogonal) default to "householder", drawn through
# LAPACK's dorgqr (v1: "qr", and a Python loop for "householder").
STREAM_VERSION = "numpy-pcg64-f64-v2"


@dataclass(frozen=True)
class Context:
    """What an initializer is asked to resolve: a shape, its layout and role, optional fans."""

    shape: tuple[int, ...]
    layout: str = "torch"
    role: str = "weight"
    given_fans: tuple[int, int] | None = None
    initializer: str = ""

    def fans(self) -> tuple[int, int]:
        """``(fan_in, fan_out)``: the given fans, else computed from the shape and layout."""
        if self.given_fans is not None:
            return self.given_fans
        try:
            fan_in, fan_out = fans(self.shape, self.layout)
        except ValueError as exc:
            raise fail(
                "shape",
                f"has {len(self.shape)} dimension(s), and `{self.initializer}` needs fan_in/fan_out "
                "(computed from at least 2 dimensions)",
                self.shape,
                "pass `fans=(fan_in, fan_out)` of the layer (how a bias gets its layer's fan_in), "
                "or use an initializer that needs no fans.",
            ) from exc
        if fan_in == 0 or fan_out == 0:
            raise fail(
                "shape", f"has no elements, so `{self.initializer}`'s fans are 0 (fan_in="
                f"{fan_in}, fan_out={fan_out}) and its formula is undefined", self.shape,
                "zero-element tensors need no initialization: Initializer.sample and "
                "initlab.torch return them unchanged; or pass `fans=` of the layer.")
        return fan_in, fan_out


@dataclass(frozen=True, eq=False)
class Initializer:
    """A named initializer with its parameters.

    Attributes
    ----------
    name : registry name (``initlab.get(name, **params)`` rebuilds it).
    params : the parameters it was built with (JSON-able).
    resolver : ``Context -> Distribution``.
    needs_fans : whether it reads fan_in/fan_out.
    scaling : ``(scale, mode, distribution)`` when it is a preset of the variance-scaling core
        (Var = scale / n(mode)); lets a framework adapter redo the framework's own float
        arithmetic on the exact variance (bit-for-bit equality), else None.
    """

    name: str
    params: Mapping[str, Any]
    resolver: Callable[[Context], Distribution] = field(repr=False)
    needs_fans: bool = False
    random: bool = True
    scaling: tuple[float, str, str] | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.name}({args})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Initializer):
            return NotImplemented
        return self.name == other.name and dict(self.params) == dict(other.params)

    def __hash__(self) -> int:
        return hash((self.name, json.dumps(dict(self.params), sort_keys=True, default=str)))

    # ------------------------------------------------------------------ resolution
    def resolve(self, shape, *, fans: tuple[int, int] | None = None, layout: str = "torch",
                role: str = "weight") -> Distribution:
        """The concrete distribution for a tensor of ``shape`` (see :mod:`.distributions`)."""
        shape = check_shape(shape)
        given = _check_context(layout, role, fans)
        return self.resolver(Context(shape, layout, role, given, self.name))

    def check_empty(self, shape, *, fans: tuple[int, int] | None = None, layout: str = "torch",
                    role: str = "weight") -> None:
        """The checks a zero-element tensor still gets before it is returned unchanged: its
        context, and the rank a structured kind needs (eye 2-D, dirac 3- to 5-D, orthogonal and
        sparse at least / exactly 2-D), as torch's ``eye_``/``dirac_``/``orthogonal_``/``sparse_``
        raise. A fan-based initializer without given fans is skipped, as torch's
        ``kaiming_*`` are: its fans of 0 have no formula."""
        shape = check_shape(shape)
        given = _check_context(layout, role, fans)
        if self.needs_fans and given is None:
            return
        dist = self.resolver(Context(shape, layout, role, given, self.name))
        dist.check_shape(shape if dist.is_elementwise else to_torch_shape(shape, layout))

    # ------------------------------------------------------------------ sampling (NumPy)
    def sample(self, shape, *, seed, dtype="float32", layout: str = "torch",
               fans: tuple[int, int] | None = None, role: str = "weight") -> np.ndarray:
        """Draw an array of ``shape`` with NumPy.

        ``seed``: a non-negative int (a fresh PCG64 stream, so the same seed gives the same array
        bit for bit with the same initlab and NumPy versions) or a ``numpy.random.Generator``
        (consumed). Values are drawn in float64 and cast to ``dtype`` (float32 or float64).
        """
        from .sampling import draw, make_rng

        shape = check_shape(shape)
        np_dtype = _float_dtype(dtype)
        rng = make_rng(seed)
        if 0 in shape:  # before the formula: a fan of 0 has no std (the documented no-op)
            self.check_empty(shape, fans=fans, layout=layout, role=role)
            warnings.warn(
                f"Initializing zero-element tensors is a no-op (shape {shape}).", UserWarning,
                stacklevel=2)
            return np.zeros(shape, dtype=np_dtype)
        dist = self.resolve(shape, fans=fans, layout=layout, role=role)
        return draw(dist, shape, rng, np_dtype, layout)

    # ------------------------------------------------------------------ serialization
    def to_dict(self) -> dict[str, Any]:
        """JSON-able description: ``{"name", "params", "stream"}``; see :func:`initlab.from_dict`."""
        from .._version import __version__

        return {"name": self.name, "params": dict(self.params), "stream": STREAM_VERSION,
                "initlab": __version__}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def _check_context(layout, role, fans) -> tuple[int, int] | None:
    check_choice(layout, "layout", LAYOUTS)
    check_choice(role, "role", ROLES)
    return check_fans(fans) if fans is not None else None


def _float_dtype(dtype) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise InitlabTypeError(error_message(
            "dtype", "must be a NumPy floating dtype ('float32' or 'float64')", dtype,
            "pass dtype='float32' or 'float64'; low-precision types are the frameworks' business "
            "(initlab.torch samples bf16/fp16 in float32 and casts).")) from None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise fail("dtype", "must be float32 or float64 for NumPy sampling", str(dt),
                   "pass dtype='float32' or 'float64'; for bf16/fp16 use initlab.torch, which "
                   "samples in float32 and casts.")
    return dt
