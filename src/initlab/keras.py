"""initlab's catalog as Keras 3 initializers (any backend: torch, jax, tensorflow).

Every catalog entry (``initlab.names()``) is a :class:`KerasInitializer`, one generic
``keras.initializers.Initializer`` subclass parametrized by the catalog name and its parameters,
registered for Keras serialization, so a saved model that uses one loads again::

    import keras
    import initlab.keras as ik

    layer = keras.layers.Dense(256, kernel_initializer=ik.he_normal(seed=0),
                               bias_initializer=ik.zeros())

Fan convention: Keras stores kernels like JAX, ``(*kernel, in, out)``, so the default is the
core's ``layout="jax"``; ``layout="torch"`` and ``fans=(fan_in, fan_out)`` are available.
Unlike Keras's ``compute_fans``, a 1-D shape has no fans: an initializer that needs them asks
for ``fans=`` (Keras would silently use ``fan_in = fan_out = shape[0]``).

Where the numbers come from
---------------------------
Where initlab's meaning equals a Keras initializer's, the adapter makes Keras's own
``keras.random`` calls with Keras's arithmetic (:mod:`initlab.backends.keras_backend`), so the
same seed gives Keras's values bit for bit under the running Keras backend, in every dtype Keras
draws (float16, bfloat16, float32, float64). Keras's class names are here too and build their
initlab spelling (``ik.HeNormal(seed=0)`` is ``ik.variance_scaling(2.0, "fan_in",
"truncated_normal", seed=0)``; docs/frameworks.md has the table), with Keras's constructor
arguments and attributes (``.mean``, ``.stddev``, ``.minval``, ``.maxval``, ``.gain``, ...).
Kinds Keras lacks (sparse, dirac, ...) are drawn by initlab's NumPy reference sampler.

Fans: Keras stores kernels like JAX, ``(*kernel, in, out)``, so the default is the core's
``layout="jax"``. Variance-scaling entries are instances of ``keras.initializers.VarianceScaling``
(subclass :class:`KerasVarianceScaling`) with Keras's ``input_axes``/``output_axes``, so
``EinsumDense`` and ``MultiHeadAttention`` hand them the kernel's true input and output axes, as
they do Keras's own. Unlike Keras's ``compute_fans``, a 1-D shape has no fans: an initializer that
needs them asks for ``fans=`` (Keras would silently use ``fan_in = fan_out = shape[0]``).

Seeds (Keras's behaviour)
-------------------------
As Keras documents and tests: an int seed gives the *same* values on every call; ``seed=None``
picks a random int seed once, when the object is built (``keras.utils.set_random_seed`` makes it
reproducible), and the config keeps None, so a clone picks a new one; a
``keras.random.SeedGenerator`` gives new values on every call. The pitfall: two layers given the
*same* int-seeded (or unseeded) object get identical weights. Give each layer its own object (or
seed), or pass a SeedGenerator.
"""

from __future__ import annotations

import numbers
import random as python_random
from typing import Any

try:
    import keras
except ImportError as exc:  # pragma: no cover - exercised only without keras
    raise ImportError(
        "initlab.keras needs Keras 3: pip install 'initlab[keras]' (or pip install keras)."
    ) from exc
import numpy as np

from .backends import keras_backend
from .core.distributions import Constant as _ConstantKind
from .core.distributions import check_fits_integer
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

# Keras's class names -> (initlab name, fixed initlab params, Keras argument -> initlab param)
KERAS_NAMES: dict[str, tuple[str, dict, dict]] = {
    "RandomNormal": ("normal", {}, {"mean": ("mean", 0.0), "stddev": ("std", 0.05)}),
    "TruncatedNormal": ("truncated_normal", {}, {"mean": ("mean", 0.0), "stddev": ("std", 0.05)}),
    "RandomUniform": ("uniform", {}, {"minval": ("low", -0.05), "maxval": ("high", 0.05)}),
    "VarianceScaling": ("variance_scaling", {}, {
        "scale": ("scale", 1.0), "mode": ("mode", "fan_in"),
        "distribution": ("distribution", "truncated_normal")}),
    "GlorotNormal": ("variance_scaling", {"scale": 1.0, "mode": "fan_avg",
                                          "distribution": "truncated_normal"}, {}),
    "GlorotUniform": ("glorot_uniform", {}, {}),
    "HeNormal": ("variance_scaling", {"scale": 2.0, "mode": "fan_in",
                                      "distribution": "truncated_normal"}, {}),
    "HeUniform": ("variance_scaling", {"scale": 2.0, "mode": "fan_in", "distribution": "uniform"},
                  {}),
    "LecunNormal": ("variance_scaling", {"scale": 1.0, "mode": "fan_in",
                                         "distribution": "truncated_normal"}, {}),
    "LecunUniform": ("lecun_uniform", {}, {}),
    "Orthogonal": ("orthogonal", {"method": "qr"}, {"gain": ("gain", 1.0)}),   # Keras's is QR
    "Identity": ("identity", {}, {"gain": ("gain", 1.0)}),
    "Constant": ("constant", {}, {"value": ("value", 0.0)}),
    "Zeros": ("zeros", {}, {}),
    "Ones": ("ones", {}, {}),
}
# The catalog entries that write one value everywhere: the ones an integer or bool dtype takes,
# as Keras's Zeros / Ones / Constant do.
_CONSTANT_NAMES = ("zeros", "ones", "constant")
# Keras's other spellings of the same classes (initlab's catalog names keep initlab's meaning:
# "he_normal" is initlab's untruncated He normal, "HeNormal" is Keras's truncated one)
KERAS_ALIASES = {"IdentityInitializer": "Identity", "OrthogonalInitializer": "Orthogonal",
                 "random_normal": "RandomNormal", "random_uniform": "RandomUniform",
                 "zero": "Zeros", "one": "Ones", "STFTInitializer": "STFT", "stft": "STFT"}
# where Keras's constructors raise, the phrase of their message (kept inside initlab's)
_KERAS_PHRASE = {"scale": "Argument `scale` must be positive float.",
                 "mode": "Invalid `mode` argument: {}", "distribution":
                 "Invalid `distribution` argument: {}"}
# Keras attribute names of initlab parameters
_KERAS_ATTRS = {"stddev": "std", "minval": "low", "maxval": "high"}

__all__ = ["KerasInitializer", "KerasVarianceScaling", "STFT", "get", "names", *names(),
           *KERAS_NAMES]

_SEED_FIX = "pass an int >= 0, None (a random int chosen now) or a keras.random.SeedGenerator."


def _check_seed(seed: Any):
    if isinstance(seed, keras.random.SeedGenerator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise InitlabTypeError(error_message(
            "seed", "must be an int, None or a keras.random.SeedGenerator", seed, _SEED_FIX))
    if seed < 0:
        raise fail("seed", "must be >= 0", seed, _SEED_FIX)
    return int(seed)


def _check_axes(value, name):
    if value is None:
        return None
    try:
        axes = [int(a) for a in value]
    except (TypeError, ValueError):
        raise InitlabTypeError(error_message(name, "must be a list of ints or None", value,
                                             "pass e.g. [0] or [1, 2].")) from None
    return axes


@keras.saving.register_keras_serializable(package="initlab", name="KerasInitializer")
class KerasInitializer(keras.initializers.Initializer):
    """A catalog initializer as a Keras initializer: ``init(shape, dtype=None) -> tensor``.

    Parameters
    ----------
    initializer : catalog name (``"he_normal"``) or an initlab :class:`Initializer`.
    params : the catalog entry's parameters (``{"gain": 2.0}``).
    seed : int >= 0 (same values every call), None (a random int picked now) or a
        ``keras.random.SeedGenerator`` (new values every call); Keras's convention.
    layout : fan convention of the shapes it is called with (``"jax"``: Keras's ``(*k, in, out)``).
    fans : ``(fan_in, fan_out)`` overriding the computed fans (e.g. for a bias).
    role : ``"weight"`` or ``"bias"`` (e.g. ``torch_default`` biases, ``role="bias"``).
    input_axes, output_axes : Keras's: the kernel axes whose sizes multiply into fan_in and
        fan_out (EinsumDense and MultiHeadAttention set them on variance-scaling entries).
    """

    def __init__(self, initializer: str | Initializer, params: dict | None = None, seed=None,
                 layout: str = "jax", fans=None, role: str = "weight", input_axes=None,
                 output_axes=None):
        array = None
        if isinstance(initializer, Initializer):
            if params:
                raise fail("params", "cannot be given with an Initializer object", params,
                           "pass a name to build with parameters.")
            self.initializer = initializer
        else:
            if params is not None and not isinstance(params, dict):
                raise InitlabTypeError(error_message("params", "must be a dict or None", params,
                                                     "pass e.g. params={'gain': 2.0}."))
            params = dict(params or {})
            value = params.get("value")
            if initializer == "constant" and isinstance(value, dict):  # a serialized array
                value = keras.saving.deserialize_keras_object(value)
            if initializer == "constant" and getattr(value, "shape", ()) != ():
                array, params["value"] = value, 0.0  # Keras's array-valued Constant
            self.initializer = _core_get(initializer, **params)
        self._array = array
        if isinstance(seed, dict):  # a serialized SeedGenerator (from get_config)
            seed = keras.saving.deserialize_keras_object(seed)
        self._init_seed = None if seed is None else _check_seed(seed)
        self.seed = self._init_seed if seed is not None else python_random.randint(1, int(1e9))
        self.layout = check_choice(layout, "layout", LAYOUTS)
        self.fans = check_fans(fans) if fans is not None else None
        self.role = check_choice(role, "role", ROLES)
        self.input_axes = _check_axes(input_axes, "input_axes")
        self.output_axes = _check_axes(output_axes, "output_axes")

    def __repr__(self) -> str:
        return f"initlab.keras.{self.initializer!r}(seed={self.seed!r})"

    def __getattr__(self, name: str):  # Keras's attribute names: .stddev, .gain, .scale, ...
        if name.startswith("_") or name == "initializer":
            raise AttributeError(name)
        if name == "value" and self.__dict__.get("_array") is not None:
            return self._array
        params = self.initializer.params
        key = _KERAS_ATTRS.get(name, name)
        if key in params:
            return params[key]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # ---------------------------------------------------------------------------------- draw
    def _fans(self, shape):
        if self.input_axes is not None and self.output_axes is not None:
            try:
                return (int(np.prod([shape[a] for a in self.input_axes])),
                        int(np.prod([shape[a] for a in self.output_axes])))
            except IndexError:
                raise fail("input_axes/output_axes", f"must be axes of the {len(shape)}-D shape",
                           {"input_axes": self.input_axes, "output_axes": self.output_axes},
                           f"pass axes in [-{len(shape)}, {len(shape)}).") from None
        if self.fans is not None:
            return self.fans
        try:
            return core_fans(shape, self.layout)
        except InitlabError:
            return None

    def __call__(self, shape, dtype=None):
        shape = check_shape(shape)
        dtype = keras.backend.standardize_dtype(dtype or keras.config.floatx())
        if not keras.backend.is_float_dtype(dtype):
            if self.initializer.name in _CONSTANT_NAMES and (
                    keras.backend.is_int_dtype(dtype) or dtype == "bool"):
                return self._constant_of(shape, dtype)  # as Keras's Zeros / Ones / Constant
            raise fail("dtype", "must be a floating dtype (initial weights are real numbers)",
                       dtype, "pass 'float32', 'bfloat16', 'float16' or 'float64'"
                       + (" (integer and bool dtypes take zeros, ones and constant only)."
                          if keras.backend.is_int_dtype(dtype) or dtype == "bool" else "."))
        if self._array is not None:
            if tuple(self._array.shape) != shape and np.broadcast_shapes(
                    tuple(self._array.shape), shape) != shape:
                raise fail("shape", f"must be one the constant array of shape "
                           f"{tuple(self._array.shape)} broadcasts to", shape,
                           "pass the array's shape, or a scalar value.")
            return keras.ops.cast(self._array, dtype) * keras.ops.ones(shape, dtype)
        fans = self._fans(shape)
        given = fans if (self.input_axes is not None and self.output_axes is not None) \
            else self.fans
        dist = self.initializer.resolve(shape, fans=given, layout=self.layout, role=self.role)
        if 0 in shape:
            return keras.ops.zeros(shape, dtype)
        variance = None
        if self.initializer.scaling is not None and fans is not None:
            scale, mode, _ = self.initializer.scaling
            variance = scale / fan_for_mode(fans[0], fans[1], mode)
        return keras_backend.draw(dist, shape, dtype, self.seed, self.layout, variance=variance)

    def _constant_of(self, shape, dtype: str):
        """An integer or bool tensor of a constant kind, its value checked to fit exactly."""
        if self._array is not None:
            return keras.ops.cast(self._array, dtype) * keras.ops.ones(shape, dtype)
        dist = self.initializer.resolve(shape, role=self.role)
        lo, hi = (0, 1) if dtype == "bool" else (int(np.iinfo(dtype).min),
                                                 int(np.iinfo(dtype).max))
        check_fits_integer(dist, dtype, lo, hi)
        assert isinstance(dist, _ConstantKind)  # only zeros, ones and constant get here
        return keras.ops.full(shape, dist.value, dtype=dtype)

    # ------------------------------------------------------------------------- serialization
    def get_config(self) -> dict:
        params = dict(self.initializer.params)
        if self._array is not None:
            params["value"] = keras.saving.serialize_keras_object(self._array)
        return {"initializer": self.initializer.name, "params": params,
                "seed": keras.saving.serialize_keras_object(self._init_seed), "layout": self.layout,
                "fans": list(self.fans) if self.fans is not None else None, "role": self.role,
                "input_axes": self.input_axes, "output_axes": self.output_axes}

    @classmethod
    def from_config(cls, config: dict) -> KerasInitializer:
        return _make(**config)


@keras.saving.register_keras_serializable(package="initlab", name="KerasVarianceScaling")
class KerasVarianceScaling(KerasInitializer, keras.initializers.VarianceScaling):
    """A variance-scaling catalog entry: also a ``keras.initializers.VarianceScaling``, so
    Keras's layers that set ``input_axes``/``output_axes`` on those (EinsumDense,
    MultiHeadAttention) give it the kernel's real fans. Keras's ``scale``/``mode``/
    ``distribution`` attributes read initlab's parameters (``distribution`` in initlab's meaning:
    ``"normal"`` is untruncated)."""

    def get_config(self) -> dict:
        return KerasInitializer.get_config(self)


def _make(initializer, params=None, **kwargs) -> KerasInitializer:
    ini = initializer if isinstance(initializer, Initializer) else _core_get(
        initializer, **{k: v for k, v in (params or {}).items()
                        if not (initializer == "constant" and k == "value")})
    cls = KerasVarianceScaling if ini.scaling is not None else KerasInitializer
    if isinstance(initializer, Initializer):
        return cls(initializer, **kwargs)
    return cls(initializer, params, **kwargs)


def _translate(name: str, params: dict) -> dict:
    if name == "variance_scaling" and params.get("distribution") == "untruncated_normal":
        params = {**params, "distribution": "normal"}  # Keras's name for initlab's "normal"
    return params


def get(init: str | Initializer | dict | None = None, *, seed=None, layout: str = "jax",
        fans=None, role: str = "weight", input_axes=None, output_axes=None, **params: Any):
    """An initializer by Keras's conventions (``keras.initializers.get``), with initlab's names.

    * a catalog name (``"he_normal"``: initlab's meaning) or an initlab :class:`Initializer`;
      keyword parameters other than ``seed``, ``layout``, ``fans``, ``role``, ``input_axes``,
      ``output_axes`` go to the catalog entry;
    * a Keras class name (``"HeNormal"``, ``"RandomNormal"``, ``"IdentityInitializer"``,
      ``"OrthogonalInitializer"``, ``"STFT"``...): its initlab spelling, with Keras's arguments;
    * ``None`` -> None; a dict ``{"class_name", "config"}`` -> deserialized; an array or tensor
      -> an initializer returning it (the call's shape must equal the array's); any other
      callable is returned as is.
    """
    kw = {"seed": seed, "layout": layout, "fans": fans, "role": role, "input_axes": input_axes,
          "output_axes": output_axes}
    if init is None:
        return None
    if isinstance(init, dict):
        cls: Any = init.get("class_name")  # anything a config holds; unknown ones go to Keras
        keras_name = KERAS_ALIASES.get(cls, cls)
        config = init.get("config") or {}
        if (keras_name in KERAS_NAMES or keras_name == "STFT") and isinstance(config, dict) \
                and init.get("module") in (None, "keras.initializers", "keras.src.initializers"):
            # a Keras initializer's config: initlab's class of that name, as the string does
            return get(keras_name, **config)
        return keras.saving.deserialize_keras_object(init)
    if isinstance(init, Initializer):
        return _make(_core_get(init, **params), **kw)
    if isinstance(init, str):
        keras_name = KERAS_ALIASES.get(init, init)
        if keras_name == "STFT":
            return STFT(**params)
        if keras_name in KERAS_NAMES and init not in names():
            return globals()[keras_name](**params, **{k: v for k, v in kw.items()
                                                     if v is not None})
        params = _translate(init, params)
        if init == "orthogonal":
            # same-named functions follow Keras: keras.initializers.Orthogonal is QR (initlab's
            # own default, Householder, would give other values for the same seed)
            params.setdefault("method", "qr")
        return _make(init, params, **kw)
    if keras.ops.is_tensor(init) or isinstance(init, (np.ndarray, np.generic)):
        return _fixed_array(init)
    if callable(init):
        return init() if isinstance(init, type) else init
    raise InitlabTypeError(error_message(
        "init", "must be a name, an initlab Initializer, a config dict, an array, a callable or "
        "None", init, "pass e.g. 'he_normal' or 'HeNormal'."))


def _fixed_array(value):
    def initialize(shape, dtype=None):
        if tuple(check_shape(shape)) != tuple(value.shape):
            raise fail("shape", f"must be {tuple(value.shape)} for an array given as the "
                       "initializer (Keras: \"Expected `shape` to be\")", shape,
                       "call it with the array's shape.")
        return keras.ops.cast(value, keras.backend.standardize_dtype(dtype))

    return initialize


def _keras_class(keras_name: str):
    name, fixed, args = KERAS_NAMES[keras_name]

    def build(*pos, seed=None, input_axes=None, output_axes=None, layout="jax", fans=None,
              role="weight", **kwargs):
        names_ = list(args)
        if len(pos) > len(names_):
            raise InitlabTypeError(f"`{keras_name}` takes at most {len(names_)} positional "
                                   f"argument(s) ({', '.join(names_)}); got {len(pos)}.")
        given = dict(zip(names_, pos))
        for k, v in kwargs.items():
            if k not in args:
                raise InitlabTypeError(f"`{keras_name}` got an unexpected argument {k!r}; valid: "
                                       f"{', '.join([*names_, 'seed'])}.")
            if k in given:
                raise InitlabTypeError(f"`{keras_name}` got {k!r} twice.")
            given[k] = v
        params = dict(fixed)
        for karg, (ours, default) in args.items():
            params[ours] = given.get(karg, default)
        if keras_name == "TruncatedNormal":  # Keras truncates at +-2 stddev around the mean
            params["a"] = params["mean"] - 2 * params["std"]
            params["b"] = params["mean"] + 2 * params["std"]
        if keras_name == "VarianceScaling":
            dist = str(params["distribution"]).lower()
            params["distribution"] = {"normal": "truncated_normal",
                                      "untruncated_normal": "normal"}.get(dist, dist)
        kw = {"seed": seed, "layout": layout, "fans": fans, "role": role}
        if input_axes is not None or output_axes is not None:
            kw.update(input_axes=input_axes, output_axes=output_axes)
        try:
            return _make(name, params, **kw)
        except InitlabError as exc:  # keep Keras's phrase, so code matching it still works
            bad = next((k for k in _KERAS_PHRASE if str(exc).startswith(f"`{k}`")), None)
            if bad is None:
                raise
            phrase = _KERAS_PHRASE[bad].format(params.get(bad))
            raise InitlabError(f"{exc} (Keras: \"{phrase}\")") from None

    build.__name__ = build.__qualname__ = keras_name
    build.__doc__ = (f"Keras's ``keras.initializers.{keras_name}`` as initlab's ``{name}`` "
                     f"(docs/frameworks.md); Keras's arguments ({', '.join(args) or 'none'}, "
                     f"seed).")
    return build


for _kname in KERAS_NAMES:
    globals()[_kname] = _keras_class(_kname)


@keras.saving.register_keras_serializable(package="initlab", name="STFT")
class STFT(keras.initializers.Initializer):
    """Keras's STFT kernel initializer: for a kernel of shape ``(T, 1, F // 2 + 1)`` the real
    (``cos``) or imaginary (``sin``) part of exp(-2 pi i t f / F), times a window (a scipy window
    name, an array of length T, or None) divided by its L2 norm (``scaling="density"``) or sum
    (``"spectrum"``). Deterministic; computed in float64 and cast."""

    def __init__(self, side="real", window="hann", scaling="density", periodic=False):
        import scipy.signal

        self.side = check_choice(side, "side", ("real", "imag"))
        if isinstance(window, str):
            try:
                scipy.signal.get_window(window, 1)
            except ValueError as exc:
                raise fail("window", "must be a window scipy.signal.get_window knows", window,
                           "pass e.g. 'hann', 'hamming', an array of length T, or None.") from exc
        if scaling is not None:
            check_choice(scaling, "scaling", ("density", "spectrum"),
                         fix="pass None, 'density' or 'spectrum'.")
        self.window, self.scaling, self.periodic = window, scaling, bool(periodic)

    def __call__(self, shape, dtype=None):
        import scipy.signal

        shape = check_shape(shape)
        if len(shape) != 3:
            raise fail("shape", "must be (frame_length, input_channels, fft_bins) for `STFT`",
                       shape, "pass a 3-D Conv1D kernel shape.")
        frames, _, bins = shape
        dtype = keras.backend.standardize_dtype(dtype)
        t = np.arange(frames, dtype=np.float64).reshape(-1, 1, 1)
        f = (np.arange(bins, dtype=np.float64) / ((bins - 1) * 2)).reshape(1, 1, -1)
        args = -2.0 * np.pi * t * f
        kernel = np.cos(args) if self.side == "real" else np.sin(args)
        if self.window is not None:
            win = (scipy.signal.get_window(self.window, frames, self.periodic)
                   if isinstance(self.window, str) else np.asarray(self.window, np.float64))
            if win.shape != (frames,):
                raise fail("window", f"must have the kernel's frame length {frames}",
                           f"array of shape {win.shape}", "pass a window of length T.")
            win = win.reshape(-1, 1, 1)
            norm = {"density": np.sqrt(np.sum(win**2)), "spectrum": np.sum(np.abs(win)),
                    None: 1.0}[self.scaling]
            kernel = kernel * win / norm
        return keras.ops.cast(kernel * np.ones(shape), dtype)

    def get_config(self) -> dict:
        return {"side": self.side, "window": self.window, "periodic": self.periodic,
                "scaling": self.scaling}


def _named(name: str):
    return adapter_factory(
        name, get, {"seed": None, "layout": "jax", "fans": None, "role": "weight",
                    "input_axes": None, "output_axes": None},
        returns="KerasInitializer",
        doc=f"``initlab.{name}`` as a Keras initializer; ``seed``, ``layout``, ``fans``, "
            f"``role``, ``input_axes``, ``output_axes`` as in "
            f":class:`initlab.keras.KerasInitializer`.")


for _name in names():
    globals()[_name] = _named(_name)


def __getattr__(name: str):  # entries registered after import (e.g. by initlab.theory)
    if name in names():
        globals()[name] = _named(name)
        return globals()[name]
    raise AttributeError(f"module 'initlab.keras' has no attribute {name!r}")
