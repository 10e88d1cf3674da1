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

Same values as JAX: where initlab's meaning equals JAX's (``variance_scaling``, ``orthogonal``,
``delta_orthogonal``, ``constant``, ``zeros``, ``ones``, ``normal``, ``uniform``,
``truncated_normal`` and every JAX preset through its initlab spelling in docs/frameworks.md),
the same key gives JAX's values bit for bit in every dtype JAX draws (bf16, f16, f32, f64,
complex64/128): samples are drawn in the output dtype, with JAX's calls and float arithmetic.
JAX's argument names work too: factory ``dtype=`` (the default dtype of the call),
``column_axis`` (orthogonal, delta_orthogonal), ``stddev`` (normal, truncated_normal, whose
``lower``/``upper`` are then in units of ``stddev`` as in JAX), ``scale`` (orthogonal,
delta_orthogonal: the gain; uniform: U[0, scale)). Positional arguments keep initlab's order.

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
from .core.distributions import Constant, DeltaOrthogonal, check_fits_integer
from .core.fans import LAYOUTS, check_fans, fan_for_mode
from .core.fans import fans as core_fans
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

# JAX's argument names accepted by the per-name functions (translated in `get`), and where JAX
# raises, the phrase of its message (kept inside initlab's message so code matching it works).
_JAX_ARGS: dict[str, tuple[str, ...]] = {
    "normal": ("stddev",), "truncated_normal": ("stddev", "lower", "upper"),
    "uniform": ("scale",), "orthogonal": ("scale", "column_axis"),
    "delta_orthogonal": ("scale", "column_axis"),
}
_JAX_PHRASE = {
    "orthogonal": "orthogonal initializer requires at least a 2D shape",
    "delta_orthogonal_ndim": "Delta orthogonal initializer requires a 3D, 4D or 5D shape.",
    "delta_orthogonal_fans": "`fan_in` must be less or equal than `fan_out`.",
}


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


def default_dtype() -> jnp.dtype:
    """JAX's default float dtype: float32, or float64 when x64 mode is on."""
    return jnp.dtype(jax.dtypes.canonicalize_dtype(jnp.float64))


# The catalog entries that write one value everywhere (Constant): the ones an integer or boolean
# dtype takes, as jax.nn.initializers.zeros / ones / constant do.
_CONSTANT_NAMES = ("zeros", "ones", "constant")


def _check_dtype(dtype: Any, *, integer_ok: bool = False) -> jnp.dtype:
    """A floating or complex dtype; with ``integer_ok`` (a constant kind: zeros, ones, constant,
    as jax.nn.initializers' accept) also an integer or boolean one."""
    fix = ("pass jnp.float32, jnp.bfloat16, jnp.float16, jnp.float64, jnp.complex64 or "
           "jnp.complex128.")
    try:
        dt = jnp.dtype(dtype)
    except TypeError:
        raise InitlabTypeError(error_message("dtype", "must be a floating or complex dtype",
                                             dtype, fix)) from None
    if integer_ok and (jnp.issubdtype(dt, jnp.integer) or dt == jnp.bool_):
        return dt
    if not jnp.issubdtype(dt, jnp.inexact):
        raise fail("dtype", "must be a floating or complex dtype (initial weights are real or "
                   "complex numbers)", str(dt), fix + " Cast afterwards if you need another type.")
    x64 = jax.config.jax_enable_x64  # type: ignore[attr-defined]  # the stub lacks the flags
    if dt in (jnp.float64, jnp.complex128) and not x64:
        raise fail("dtype", "can only be 64-bit (float64, complex128) when JAX's x64 mode is on",
                   str(dt), "run jax.config.update('jax_enable_x64', True) first, or pass "
                   "jnp.float32 / jnp.complex64.")
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
    axes in none of in_axis, out_axis, batch_axis; an empty ``in_axis``/``out_axis`` counts 1.
    With the default ``in_axis`` a 0-D or 1-D shape has no fans (JAX raises there too).

    >>> compute_fans((3, 3, 16, 32))
    (144, 288)
    """
    shape = check_shape(shape)
    _check_default_in_axis(shape, in_axis)
    in_axes, out_axes, batch_axes = _split_axes(shape, in_axis, out_axis, batch_axis)
    rf = math.prod(shape[i] for i in range(len(shape))
                   if i not in in_axes + out_axes + batch_axes)
    return (math.prod(shape[i] for i in in_axes) * rf, math.prod(shape[i] for i in out_axes) * rf)


def _check_default_in_axis(shape, in_axis) -> None:
    if isinstance(in_axis, numbers.Integral) and in_axis == _DEFAULT_IN and len(shape) <= 1:
        n = len(shape)
        raise fail("shape", f"has {n} dimension(s), too few for the default `in_axis`=-2 (JAX: "
                   f"\"Can't compute input and output sizes of a {n}-dimensional weights tensor "
                   "with default in_axis. Must be at least 2D or specify in_axis explicitly.\")",
                   shape, "pass a weight of at least 2 dimensions, explicit axes (e.g. "
                   "in_axis=0, out_axis=[] for a vector of inputs), or `fans=(fan_in, fan_out)` "
                   "of the layer (e.g. for a bias).")


def _split_axes(shape, in_axis, out_axis, batch_axis):
    ndim = len(shape)
    in_axes = _normalize(_axes(in_axis, "in_axis"), ndim, "in_axis", shape)
    out_axes = _normalize(_axes(out_axis, "out_axis"), ndim, "out_axis", shape)
    batch_axes = _normalize(_axes(batch_axis, "batch_axis"), ndim, "batch_axis", shape)
    every = in_axes + out_axes + batch_axes
    if len(set(every)) != len(every):
        raise fail("in_axis/out_axis/batch_axis",
                   "must name distinct axes (an empty sequence means a size of 1, as in JAX; an "
                   "axis in two roles would make JAX's receptive field fractional)",
                   {"in_axis": in_axis, "out_axis": out_axis, "batch_axis": batch_axis},
                   "give each axis one role, e.g. in_axis=-2, out_axis=-1.")
    return in_axes, out_axes, batch_axes


# ============================================================================== the initializer


@dataclass(frozen=True)
class JaxInitializer:
    """An initlab :class:`~initlab.core.initializer.Initializer` as a JAX initializer.

    ``init(key, shape, dtype=None, out_sharding=None) -> jax.Array``: the signature of
    ``jax.nn.initializers`` (and what Flax calls); ``dtype=None`` means the factory's ``dtype``,
    else JAX's default float dtype. Hashable and comparable, so it can sit in a Flax linen
    module's fields. ``column_axis`` (orthogonal kinds): the axis whose vectors are orthonormal;
    None means the out axis (JAX's default -1).
    """

    initializer: Initializer
    layout: str = "jax"
    in_axis: int | tuple[int, ...] = _DEFAULT_IN
    out_axis: int | tuple[int, ...] = _DEFAULT_OUT
    batch_axis: int | tuple[int, ...] = ()
    fans: tuple[int, int] | None = None
    role: str = "weight"
    dtype: Any = None
    column_axis: int | None = None

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
        if self.dtype is not None:
            object.__setattr__(self, "dtype", _check_dtype(self.dtype))
        if self.column_axis is not None and (isinstance(self.column_axis, bool) or not
                                             isinstance(self.column_axis, numbers.Integral)):
            raise InitlabTypeError(error_message("column_axis", "must be an int or None",
                                                 self.column_axis, "pass e.g. column_axis=-1."))
        if self.layout != "jax" and (self.in_axis != _DEFAULT_IN or self.out_axis != _DEFAULT_OUT
                                     or self.batch_axis != () or self.column_axis is not None):
            raise fail("layout", "must be 'jax' when `in_axis`, `out_axis`, `batch_axis` or "
                       "`column_axis` is given (the torch layouts fix which axes are in and out)",
                       self.layout, "drop layout= (JAX's convention is the default) or drop the "
                       "axes.")

    def __repr__(self) -> str:
        return f"initlab.jax.{self.initializer!r}"

    # -------------------------------------------------------------------------------- call
    def __call__(self, key, shape, dtype=None, out_sharding=None) -> jax.Array:
        check_key(key)
        shape = check_shape(shape)
        if dtype is None:
            dtype = self.dtype if self.dtype is not None else default_dtype()
        dtype = _check_dtype(dtype, integer_ok=self.initializer.name in _CONSTANT_NAMES)
        self._check_jax_rules(shape)
        if 0 in shape:  # nothing to draw (and no fans to compute)
            return jnp.zeros(shape, dtype)
        if not jnp.issubdtype(dtype, jnp.inexact):  # an integer/bool array of a constant kind
            dist = self._resolve(shape, self.fans, self.layout)
            if isinstance(dist, Constant):
                lo, hi = (0, 1) if dtype == jnp.bool_ else (int(jnp.iinfo(dtype).min),
                                                            int(jnp.iinfo(dtype).max))
                check_fits_integer(dist, str(dtype), lo, hi)
            return jnp.full(shape, dist.value, dtype, device=out_sharding)
        if self.layout != "jax":
            dist = self._resolve(shape, self.fans, self.layout)
            fans = self.fans if self.fans is not None else _layout_fans(shape, self.layout)
            return jax_backend.draw(key, dist, shape, dtype, self.layout, out_sharding,
                                    variance=self._variance(fans))
        return self._call_jax(key, shape, dtype, out_sharding)

    def _check_jax_rules(self, shape) -> None:
        """Where jax.nn.initializers raises for the same name, raise with its phrase."""
        name = self.initializer.name
        if self.layout != "jax":
            return
        if name == "orthogonal" and len(shape) < 2:
            raise fail("shape", f"must have at least 2 dimensions for `orthogonal` (JAX: "
                       f"\"{_JAX_PHRASE['orthogonal']}\")", shape,
                       "orthogonal matrices need rows and columns; use another initializer for "
                       "1-D.")
        if name == "delta_orthogonal":
            if len(shape) not in (3, 4, 5):
                raise fail("shape", "must be 3-, 4- or 5-D (a conv kernel) for `delta_orthogonal`"
                           f" (JAX: \"{_JAX_PHRASE['delta_orthogonal_ndim']}\")", shape,
                           "for 2-D matrices use `orthogonal`.")
            if self._jax_delta_recipe() and shape[-1] < shape[-2]:
                raise fail("shape", f"must have in <= out channels for `delta_orthogonal` "
                           f"(in={shape[-2]}, out={shape[-1]}; JAX: "
                           f"\"{_JAX_PHRASE['delta_orthogonal_fans']}\")", shape,
                           "an (in, out) matrix with in > out cannot have orthonormal rows; use "
                           "`orthogonal` on the flattened kernel instead.")

    def _jax_delta_recipe(self) -> bool:
        return (self.in_axis == _DEFAULT_IN and self.out_axis == _DEFAULT_OUT
                and self.batch_axis == ())

    def _resolve(self, shape, fans, layout):
        return self.initializer.resolve(shape, fans=fans, layout=layout, role=self.role)

    def _variance(self, fans) -> float | None:
        """The exact Var = scale / n of a variance-scaling preset (None for other entries)."""
        scaling = self.initializer.scaling
        if scaling is None or fans is None:
            return None
        scale, mode, _ = scaling
        return scale / fan_for_mode(fans[0], fans[1], mode)

    def _call_jax(self, key, shape, dtype, out_sharding) -> jax.Array:
        try:
            if self.fans is None and self.initializer.needs_fans:
                _check_default_in_axis(shape, self.in_axis)
            in_axes, out_axes, batch_axes = _split_axes(shape, self.in_axis, self.out_axis,
                                                        self.batch_axis)
        except InitlabError as exc:
            if len(shape) >= 2 or (self.initializer.needs_fans and self.fans is None):
                raise
            # a bias or a scalar with the default axes: the shape gives no fans. Elementwise
            # initializers that need none (zeros, normal, ...) or that get `fans=` work
            dist = self._resolve(shape, self.fans, "jax")
            if not dist.iid:
                raise exc from None
            return jax_backend.draw(key, dist, shape, dtype, "jax", out_sharding,
                                    variance=self._variance(self.fans))
        kernel_axes = tuple(i for i in range(len(shape)) if i not in in_axes + out_axes + batch_axes)
        rf = math.prod(shape[i] for i in kernel_axes)
        fans = self.fans or (math.prod(shape[i] for i in in_axes) * rf,
                             math.prod(shape[i] for i in out_axes) * rf)
        # canonical kernel shape (*kernel, in, out): JAX's layout, as the core understands it
        kshape = (*(shape[i] for i in kernel_axes), math.prod(shape[i] for i in in_axes),
                  math.prod(shape[i] for i in out_axes))
        dist = self._resolve(kshape, fans, "jax")
        variance = self._variance(fans)
        if dist.iid:  # elementwise: one draw over the tensor's own shape (sharding-invariant)
            return jax_backend.draw(key, dist, shape, dtype, "jax", out_sharding,
                                    variance=variance)
        column = self._column_axis(out_axes, len(shape))
        if isinstance(dist, DeltaOrthogonal):  # JAX applies column_axis to the (in, out) matrix
            column = -1 if self.column_axis is None else self.column_axis
        if not batch_axes and column is not None and (
                not isinstance(dist, DeltaOrthogonal) or self._jax_delta_recipe()):
            # JAX's own recipes (orthogonal / delta_orthogonal) on the tensor's own shape; other
            # structured kinds fall through to the layout-generic path inside `draw`
            return jax_backend.draw(key, dist, shape, dtype, "jax", out_sharding,
                                    column_axis=column)
        perm = (*batch_axes, *kernel_axes, *in_axes, *out_axes)
        n_batch = math.prod(shape[i] for i in batch_axes)

        def one(k):
            return jax_backend.draw(k, dist, kshape, dtype, "jax", column_axis=-1)

        if batch_axes:
            x = jax.vmap(one)(jax.random.split(key, n_batch))
        else:
            x = one(key)
        x = x.reshape(tuple(shape[i] for i in perm))
        x = jnp.transpose(x, np.argsort(perm).tolist())
        if out_sharding is not None:
            x = jax.sharding.reshard(x, out_sharding)
        return x

    def _column_axis(self, out_axes, ndim) -> int | None:
        if self.column_axis is not None:
            if not -ndim <= self.column_axis < ndim:
                raise fail("column_axis", f"must be an axis of the {ndim}-D shape",
                           self.column_axis, f"pass an int in [-{ndim}, {ndim}).")
            return self.column_axis % ndim
        return out_axes[0] if len(out_axes) == 1 else None


def _layout_fans(shape, layout):
    try:
        return core_fans(shape, layout)
    except InitlabError:
        return None


# ============================================================================== constructors


def wrap(initializer: Initializer, *, layout: str = "jax", in_axis=_DEFAULT_IN,
         out_axis=_DEFAULT_OUT, batch_axis=(), fans=None, role: str = "weight", dtype=None,
         column_axis=None) -> JaxInitializer:
    """Turn an initlab :class:`Initializer` into a JAX initializer (see :class:`JaxInitializer`)."""
    if not isinstance(initializer, Initializer):
        raise InitlabTypeError(error_message(
            "initializer", "must be an initlab Initializer", initializer,
            "build one with initlab.get(name, **params), or call initlab.jax.get(name)."))
    return JaxInitializer(initializer, layout, in_axis, out_axis, batch_axis, fans, role, dtype,
                          column_axis)


def _translate(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """JAX's argument names -> initlab's (``stddev`` -> ``std``, ``scale`` -> ``gain``, ...)."""
    given = {k: params.pop(k) for k in _JAX_ARGS.get(name, ()) if params.get(k) is not None}
    params = {k: v for k, v in params.items() if k not in _JAX_ARGS.get(name, ())}
    if not given:
        return params

    def clash(jax_name, ours):
        if ours in params:
            raise fail(jax_name, f"cannot be given together with initlab's `{ours}` (the same "
                       "parameter under JAX's name)", given[jax_name],
                       f"pass only one of `{jax_name}` (JAX's name) and `{ours}`.")

    if name in ("normal", "truncated_normal") and "stddev" in given:
        clash("stddev", "std")
        params["std"] = given["stddev"]
    if name == "truncated_normal" and ({"lower", "upper"} & given.keys()):
        if "stddev" not in given:
            raise fail("lower/upper", "are JAX's bounds in units of `stddev` and need it",
                       {k: given[k] for k in ("lower", "upper") if k in given},
                       "pass stddev= too, or initlab's absolute bounds a= and b=.")
    if name == "truncated_normal" and "stddev" in given:
        for jax_name, ours, default in (("lower", "a", -2.0), ("upper", "b", 2.0)):
            clash("stddev", ours)
            params[ours] = given.get(jax_name, default) * params["std"]
    if name == "uniform" and "scale" in given:
        clash("scale", "high")
        clash("scale", "low")
        params["low"], params["high"] = 0.0, given["scale"]
    if name in ("orthogonal", "delta_orthogonal") and "scale" in given:
        clash("scale", "gain")
        params["gain"] = given["scale"]
    return params


def _concrete(value: Any, name: str) -> Any:
    """A 0-d JAX/NumPy array parameter (``uniform(jnp.array(1.0))``) as its Python number."""
    if getattr(value, "shape", None) != () or isinstance(value, (numbers.Number, str)):
        return value
    try:
        return value.item()
    except Exception:  # a tracer: initlab resolves parameters in Python, before tracing
        raise fail(name, "must be a concrete number (initlab resolves parameters in Python, "
                   "outside jit)", type(value).__name__,
                   "pass a Python float, or build the initializer outside the traced "
                   "function.") from None


def get(init: str | Initializer, *, layout: str = "jax", in_axis=_DEFAULT_IN,
        out_axis=_DEFAULT_OUT, batch_axis=(), fans=None, role: str = "weight", dtype=None,
        column_axis=None, **params: Any) -> JaxInitializer:
    """The catalog initializer ``init`` (a name, or an :class:`Initializer`) as a JAX initializer.

    ``initlab.jax.get("he_normal")(jax.random.key(0), (784, 256))`` draws N(0, 2 / 784) for a
    Dense kernel ``(in, out)``. Parameters after ``column_axis`` go to the catalog entry
    (``initlab.jax.get("orthogonal", gain=2.0)``); JAX's names for them work too
    (``get("normal", stddev=0.02)``, ``get("orthogonal", scale=2.0)``). ``dtype`` is the default
    dtype of the calls, as the ``dtype=`` of JAX's factories.
    """
    params = {k: _concrete(v, k) for k, v in params.items()}
    if isinstance(init, str):
        params = _translate(init, params)
        if init == "orthogonal":
            # same-named functions follow JAX: jax.nn.initializers.orthogonal is QR (initlab's
            # own default, Householder, would give other values for the same key)
            params.setdefault("method", "qr")
    return wrap(_core_get(init, **params), layout=layout, in_axis=in_axis, out_axis=out_axis,
                batch_axis=batch_axis, fans=fans, role=role, dtype=dtype,
                column_axis=column_axis)


def _named(name: str):
    jax_args = {k: None for k in _JAX_ARGS.get(name, ()) if k != "column_axis"}
    extras = {"layout": "jax", "in_axis": _DEFAULT_IN, "out_axis": _DEFAULT_OUT,
              "batch_axis": (), "fans": None, "role": "weight", "dtype": None,
              "column_axis": None, **jax_args}
    return adapter_factory(
        name, _build, extras, returns="JaxInitializer",
        doc=f"``initlab.{name}`` as a JAX initializer ``init(key, shape, dtype)``; ``layout``, "
            f"``in_axis``, ``out_axis``, ``batch_axis``, ``fans``, ``role``, ``dtype``, "
            f"``column_axis`` as in :func:`initlab.jax.get`"
            + (f"; JAX's {', '.join(map(repr, jax_args))} accepted" if jax_args else "") + ".")


def _build(name, **kwargs):
    return get(name, **{k: v for k, v in kwargs.items()
                        if not (k in _JAX_ARGS.get(name, ()) and v is None)})


for _name in names():
    globals()[_name] = _named(_name)


def __getattr__(name: str):  # entries registered after import (e.g. by initlab.theory)
    if name in names():
        globals()[name] = _named(name)
        return globals()[name]
    raise AttributeError(f"module 'initlab.jax' has no attribute {name!r}")
