"""initlab's catalog as JAX initializers: ``init(key, shape, dtype=jnp.float32)``.

Every catalog entry (``initlab.names()``) is available as ``initlab.jax.get(name, **params)`` and
as a function of the same name (``initlab.jax.he_normal()``), usable directly as Flax's
``kernel_init=`` / ``bias_init=`` (linen and nnx) and inside ``jax.jit``::

    import flax.linen as nn
    import initlab.jax as ij

    layer = nn.Dense(256, kernel_init=ij.he_normal(), bias_init=ij.zeros())

Meaning: the same name and parameters give the same distribution as ``initlab.get(name).sample``
(NumPy), ``initlab.torch.init_`` and ``initlab.keras`` for the same fans. initlab's ``*_normal``
presets are *untruncated* (like torch's); JAX's own ``jax.nn.initializers.he_normal`` etc. are
truncated at +-2 std with the 0.87962566103423978 correction, which initlab spells
``variance_scaling(2.0, "fan_in", "truncated_normal")`` (docs/frameworks.md has the full table).

Fan convention (JAX's): ``in_axis=-2, out_axis=-1`` (kernels ``(*kernel, in, out)``),
``fan_in = shape[in_axis] * receptive_field``, ``fan_out = shape[out_axis] * receptive_field``,
receptive field = product of the remaining axes except ``batch_axis``. ``in_axis``/``out_axis``
may be sequences of axes (their sizes multiply). Axes in ``batch_axis`` hold independent
initializations: elementwise kinds draw the whole tensor at once; structured kinds (orthogonal,
identity, dirac, delta_orthogonal, sparse, martens_sparse) draw one kernel per batch index.
``layout="torch"`` / ``"torch_transposed"`` switch to the core's torch conventions instead
(``in_axis``/``out_axis``/``batch_axis`` then don't apply). ``fans=(fan_in, fan_out)`` overrides
the computed fans (how a bias gets its layer's fans with ``role="bias"``).

Randomness only from ``key`` (``jax.random``); see :mod:`initlab.backends.jax_backend` for how
each kind is drawn and why sharded creation gives the same values as unsharded.
Zero-size shapes return an empty array (no warning, unlike the NumPy/torch paths: JAX code is
traced, and a warning at trace time would say nothing useful).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

try:
    import jax
    import jax.numpy as jnp
    import numpy as np
except ImportError as exc:  # pragma: no cover - exercised only without jax
    raise ImportError(
        "initlab.jax needs JAX: pip install 'initlab[jax]' (or pip install jax)."
    ) from exc

from .backends import jax_backend
from .core.fans import LAYOUTS, check_fans
from .core.initializer import ROLES, Initializer
from .core.registry import adapter_factory, names
from .core.registry import get as _core_get
from .core.validation import (
    InitlabError,
    InitlabTypeError,
    check_choice,
    check_shape,
    error_message,
    fail,
)

__all__ = ["JaxInitializer", "get", "wrap", "names", "compute_fans", *names()]

_DEFAULT_IN, _DEFAULT_OUT = -2, -1


# ============================================================================== validation


def check_key(key: Any) -> None:
    """A JAX PRNG key: a typed key (``jax.random.key``, shape ``()``) or a raw ``uint32`` key
    (``jax.random.PRNGKey``, shape ``(2,)`` for Threefry, ``(4,)`` for rbg)."""
    fix = ("pass a single key, e.g. jax.random.key(0) or a split of one (Flax passes its own); "
           "initlab.jax never uses hidden global random state.")
    dtype = getattr(key, "dtype", None)
    shape = getattr(key, "shape", None)
    if dtype is None or shape is None or isinstance(key, (bool, numbers.Number)):
        raise InitlabTypeError(error_message("key", "must be a JAX PRNG key", key, fix))
    if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        if shape != ():
            raise fail("key", "must be a single key (shape ()), not a batch of keys",
                       f"key array of shape {shape}", fix)
        return
    if np.dtype(dtype) == np.uint32 and len(shape) == 1 and shape[0] in (2, 4):
        return
    raise InitlabTypeError(error_message(
        "key", "must be a JAX PRNG key (a typed key or a raw uint32 array of shape (2,))",
        f"array of dtype {dtype} and shape {tuple(shape)}", fix))


def _check_dtype(dtype: Any) -> jnp.dtype:
    try:
        dt = jnp.dtype(dtype)
    except TypeError:
        raise InitlabTypeError(error_message(
            "dtype", "must be a floating dtype", dtype,
            "pass jnp.float32, jnp.bfloat16, jnp.float16 or jnp.float64.")) from None
    if not jnp.issubdtype(dt, jnp.floating):
        raise fail("dtype", "must be a floating dtype (initial weights are real numbers)", str(dt),
                   "pass jnp.float32, jnp.bfloat16, jnp.float16 or jnp.float64; cast afterwards "
                   "if you really need another type.")
    if dt == jnp.float64 and not jax.config.jax_enable_x64:
        raise fail("dtype", "can only be float64 when JAX's x64 mode is on", str(dt),
                   "run jax.config.update('jax_enable_x64', True) first, or pass jnp.float32.")
    return dt


def _axes(value: Any, name: str) -> tuple[int, ...]:
    items = (value,) if isinstance(value, numbers.Integral) else value
    try:
        axes = tuple(items)
    except TypeError:
        raise InitlabTypeError(error_message(name, "must be an int or a sequence of ints", value,
                                             "pass e.g. -2 or (0, 1).")) from None
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, numbers.Integral):
            raise InitlabTypeError(error_message(name, "must be an int or a sequence of ints",
                                                 value, "pass e.g. -2 or (0, 1)."))
    return tuple(int(a) for a in axes)


def _normalize(axes: tuple[int, ...], ndim: int, name: str, shape) -> tuple[int, ...]:
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise fail("shape", f"has {ndim} dimension(s), too few for `{name}`={a} (JAX's fan "
                       "convention reads fan_in and fan_out from these axes)", shape,
                       "pass a weight of at least 2 dimensions, `fans=(fan_in, fan_out)` of the "
                       "layer (e.g. for a bias), or other `in_axis`/`out_axis`.")
        out.append(a % ndim)
    return tuple(out)


# ============================================================================== fans


def compute_fans(shape, in_axis=_DEFAULT_IN, out_axis=_DEFAULT_OUT,
                 batch_axis=()) -> tuple[int, int]:
    """``(fan_in, fan_out)`` with JAX's convention (``jax.nn.initializers``' ``_compute_fans``).

    fan_in = prod(shape[in_axis]) * rf, fan_out = prod(shape[out_axis]) * rf, rf = product of the
    axes in none of in_axis, out_axis, batch_axis.

    >>> compute_fans((3, 3, 16, 32))
    (144, 288)
    """
    shape = check_shape(shape)
    in_axes, out_axes, batch_axes = _split_axes(shape, in_axis, out_axis, batch_axis)
    rf = math.prod(shape[i] for i in range(len(shape))
                   if i not in in_axes + out_axes + batch_axes)
    return (math.prod(shape[i] for i in in_axes) * rf, math.prod(shape[i] for i in out_axes) * rf)


def _split_axes(shape, in_axis, out_axis, batch_axis):
    ndim = len(shape)
    in_axes = _normalize(_axes(in_axis, "in_axis"), ndim, "in_axis", shape)
    out_axes = _normalize(_axes(out_axis, "out_axis"), ndim, "out_axis", shape)
    batch_axes = _normalize(_axes(batch_axis, "batch_axis"), ndim, "batch_axis", shape)
    every = in_axes + out_axes + batch_axes
    if not in_axes or not out_axes or len(set(every)) != len(every):
        raise fail("in_axis/out_axis/batch_axis",
                   "must be non-empty (in, out) and name distinct axes",
                   {"in_axis": in_axis, "out_axis": out_axis, "batch_axis": batch_axis},
                   "give each axis one role, e.g. in_axis=-2, out_axis=-1.")
    return in_axes, out_axes, batch_axes


# ============================================================================== the initializer


@dataclass(frozen=True)
class JaxInitializer:
    """An initlab :class:`~initlab.core.initializer.Initializer` as a JAX initializer.

    ``init(key, shape, dtype=jnp.float32, out_sharding=None) -> jax.Array``: the signature of
    ``jax.nn.initializers`` (and what Flax calls). Hashable and comparable, so it can sit in a
    Flax linen module's fields.
    """

    initializer: Initializer
    layout: str = "jax"
    in_axis: int | tuple[int, ...] = _DEFAULT_IN
    out_axis: int | tuple[int, ...] = _DEFAULT_OUT
    batch_axis: int | tuple[int, ...] = ()
    fans: tuple[int, int] | None = None
    role: str = "weight"

    def __post_init__(self):
        check_choice(self.layout, "layout", LAYOUTS)
        check_choice(self.role, "role", ROLES)
        for name in ("in_axis", "out_axis", "batch_axis"):
            value = getattr(self, name)
            axes = _axes(value, name)  # validates; a sequence is stored as a (hashable) tuple
            if not isinstance(value, numbers.Integral):
                object.__setattr__(self, name, axes)
        if self.fans is not None:
            object.__setattr__(self, "fans", check_fans(self.fans))
        if self.layout != "jax" and (self.in_axis != _DEFAULT_IN or self.out_axis != _DEFAULT_OUT
                                     or self.batch_axis != ()):
            raise fail("layout", "must be 'jax' when `in_axis`, `out_axis` or `batch_axis` is "
                       "given (the torch layouts fix which axes are in and out)", self.layout,
                       "drop layout= (JAX's convention is the default) or drop the axes.")

    def __repr__(self) -> str:
        return f"initlab.jax.{self.initializer!r}"

    # -------------------------------------------------------------------------------- call
    def __call__(self, key, shape, dtype=jnp.float32, out_sharding=None) -> jax.Array:
        check_key(key)
        shape = check_shape(shape)
        dtype = _check_dtype(jnp.float32 if dtype is None else dtype)
        if 0 in shape:  # nothing to draw (and no fans to compute)
            return jnp.zeros(shape, dtype)
        if self.layout != "jax":
            dist = self.initializer.resolve(shape, fans=self.fans, layout=self.layout,
                                            role=self.role)
            return jax_backend.draw(key, dist, shape, dtype, self.layout, out_sharding)
        return self._call_jax(key, shape, dtype, out_sharding)

    def _call_jax(self, key, shape, dtype, out_sharding) -> jax.Array:
        try:
            in_axes, out_axes, batch_axes = _split_axes(shape, self.in_axis, self.out_axis,
                                                        self.batch_axis)
        except InitlabError as exc:
            if len(shape) >= 2:
                raise
            # a bias or a scalar: the shape gives no fans. Elementwise initializers that need
            # none (zeros, normal, ...) or that get `fans=` work; the core names the fix otherwise
            dist = self.initializer.resolve(shape, fans=self.fans, layout="jax", role=self.role)
            if not dist.iid:
                raise exc from None
            return jax_backend.draw(key, dist, shape, dtype, "jax", out_sharding)
        kernel_axes = tuple(i for i in range(len(shape)) if i not in in_axes + out_axes + batch_axes)
        # canonical kernel shape (*kernel, in, out): JAX's layout, as the core understands it
        kshape = (*(shape[i] for i in kernel_axes), math.prod(shape[i] for i in in_axes),
                  math.prod(shape[i] for i in out_axes))
        dist = self.initializer.resolve(kshape, fans=self.fans, layout="jax", role=self.role)
        if dist.iid:  # elementwise: one draw over the tensor's own shape (sharding-invariant)
            return jax_backend.draw(key, dist, shape, dtype, "jax", out_sharding)
        perm = (*batch_axes, *kernel_axes, *in_axes, *out_axes)
        n_batch = math.prod(shape[i] for i in batch_axes)
        if batch_axes:
            keys = jax.random.split(key, n_batch)
            x = jax.vmap(lambda k: jax_backend.draw(k, dist, kshape, dtype, "jax"))(keys)
        else:
            x = jax_backend.draw(key, dist, kshape, dtype, "jax")
        x = x.reshape(tuple(shape[i] for i in perm))
        x = jnp.transpose(x, np.argsort(perm))
        if out_sharding is not None:
            x = jax.sharding.reshard(x, out_sharding)
        return x


# ============================================================================== constructors


def wrap(initializer: Initializer, *, layout: str = "jax", in_axis=_DEFAULT_IN,
         out_axis=_DEFAULT_OUT, batch_axis=(), fans=None, role: str = "weight") -> JaxInitializer:
    """Turn an initlab :class:`Initializer` into a JAX initializer (see :class:`JaxInitializer`)."""
    if not isinstance(initializer, Initializer):
        raise InitlabTypeError(error_message(
            "initializer", "must be an initlab Initializer", initializer,
            "build one with initlab.get(name, **params), or call initlab.jax.get(name)."))
    return JaxInitializer(initializer, layout, in_axis, out_axis, batch_axis, fans, role)


def get(init: str | Initializer, *, layout: str = "jax", in_axis=_DEFAULT_IN,
        out_axis=_DEFAULT_OUT, batch_axis=(), fans=None, role: str = "weight",
        **params: Any) -> JaxInitializer:
    """The catalog initializer ``init`` (a name, or an :class:`Initializer`) as a JAX initializer.

    ``initlab.jax.get("he_normal")(jax.random.key(0), (784, 256))`` draws N(0, 2 / 784) for a
    Dense kernel ``(in, out)``. Parameters after ``role`` go to the catalog entry
    (``initlab.jax.get("orthogonal", gain=2.0)``).
    """
    return wrap(_core_get(init, **params), layout=layout, in_axis=in_axis, out_axis=out_axis,
                batch_axis=batch_axis, fans=fans, role=role)


def _named(name: str):
    return adapter_factory(
        name, get, {"layout": "jax", "in_axis": _DEFAULT_IN, "out_axis": _DEFAULT_OUT,
                    "batch_axis": (), "fans": None, "role": "weight"},
        returns="JaxInitializer",
        doc=f"``initlab.{name}`` as a JAX initializer ``init(key, shape, dtype)``; ``layout``, "
            f"``in_axis``, ``out_axis``, ``batch_axis``, ``fans``, ``role`` as in "
            f":func:`initlab.jax.get`.")


for _name in names():
    globals()[_name] = _named(_name)


def __getattr__(name: str):  # entries registered after import (e.g. by initlab.theory)
    if name in names():
        globals()[name] = _named(name)
        return globals()[name]
    raise AttributeError(f"module 'initlab.jax' has no attribute {name!r}")
