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
Values are drawn by initlab's NumPy reference sampler (:meth:`Initializer.sample`, float32 or
float64, on the host) and converted to a backend tensor of the requested dtype. So the same
initializer and seed give the same weights bit for bit under every Keras backend, and the first
call equals ``initlab.get(name, **params).sample(shape, seed=seed, layout="jax")``. The cost:
weights are built in host memory in float64 first (8 bytes per element) and copied to the
device; for very large embeddings on an accelerator prefer the framework's own path
(``initlab.jax``, ``initlab.torch``).

Seeds, and Keras's pitfall
--------------------------
Keras's own initializers seeded with an int (or None) return the *same* values on every call, so
two layers given the same initializer object get identical weights. initlab counts calls instead:

* ``seed=int``: call k (0, 1, 2, ...) of this object uses the NumPy stream
  ``SeedSequence(seed)`` for k = 0 and its spawned child ``SeedSequence(seed, spawn_key=(k-1,))``
  for k >= 1, i.e. independent streams (O'Neill's SeedSequence design). Rebuilding the model with
  a fresh initializer object (or from its config) restarts the count, so a model built the same
  way twice gets the same weights, and two layers sharing the object get different ones.
* ``seed=None`` (default): each call draws its stream's seed from Keras's global seed generator,
  so ``keras.utils.set_random_seed(s)`` makes the model reproducible, as with Keras's own layers.
* ``seed=keras.random.SeedGenerator(...)``: each call draws its stream's seed from that
  generator.
"""

from __future__ import annotations

import numbers
from typing import Any

try:
    import keras
except ImportError as exc:  # pragma: no cover - exercised only without keras
    raise ImportError(
        "initlab.keras needs Keras 3: pip install 'initlab[keras]' (or pip install keras)."
    ) from exc
import numpy as np

from .core.fans import LAYOUTS, check_fans
from .core.initializer import ROLES, Initializer
from .core.registry import adapter_factory, names
from .core.registry import get as _core_get
from .core.validation import InitlabTypeError, check_choice, check_shape, error_message, fail

__all__ = ["KerasInitializer", "get", "names", *names()]

_SEED_FIX = ("pass an int >= 0, None (Keras's global seed generator) or a "
             "keras.random.SeedGenerator.")


def _check_seed(seed: Any):
    if seed is None or isinstance(seed, keras.random.SeedGenerator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise InitlabTypeError(error_message(
            "seed", "must be an int, None or a keras.random.SeedGenerator", seed, _SEED_FIX))
    if seed < 0:
        raise fail("seed", "must be >= 0", seed, _SEED_FIX)
    return int(seed)


@keras.saving.register_keras_serializable(package="initlab", name="KerasInitializer")
class KerasInitializer(keras.initializers.Initializer):
    """A catalog initializer as a Keras initializer: ``init(shape, dtype=None) -> tensor``.

    Parameters
    ----------
    initializer : catalog name (``"he_normal"``) or an initlab :class:`Initializer`.
    params : the catalog entry's parameters (``{"gain": 2.0}``).
    seed : int >= 0, None or ``keras.random.SeedGenerator``; see the module docstring for how
        calls get independent streams.
    layout : fan convention of the shapes it is called with (``"jax"``: Keras's ``(*k, in, out)``).
    fans : ``(fan_in, fan_out)`` overriding the computed fans (e.g. for a bias).
    role : ``"weight"`` or ``"bias"`` (e.g. ``torch_default`` biases, ``role="bias"``).
    """

    def __init__(self, initializer: str | Initializer, params: dict | None = None, seed=None,
                 layout: str = "jax", fans=None, role: str = "weight"):
        if isinstance(initializer, Initializer):
            if params:
                raise fail("params", "cannot be given with an Initializer object", params,
                           "pass a name to build with parameters.")
            self.initializer = initializer
        else:
            if params is not None and not isinstance(params, dict):
                raise InitlabTypeError(error_message("params", "must be a dict or None", params,
                                                     "pass e.g. params={'gain': 2.0}."))
            self.initializer = _core_get(initializer, **(params or {}))
        if isinstance(seed, dict):  # a serialized SeedGenerator (from get_config)
            seed = keras.saving.deserialize_keras_object(seed)
        self.seed = _check_seed(seed)
        self.layout = check_choice(layout, "layout", LAYOUTS)
        self.fans = check_fans(fans) if fans is not None else None
        self.role = check_choice(role, "role", ROLES)
        self.calls = 0  # how many tensors this object has drawn (see the module docstring)

    def __repr__(self) -> str:
        return f"initlab.keras.{self.initializer!r}(seed={self.seed!r})"

    # ---------------------------------------------------------------------------------- draw
    def _next_rng(self) -> np.random.Generator:
        k = self.calls
        self.calls += 1
        if isinstance(self.seed, int):
            ss = (np.random.SeedSequence(self.seed) if k == 0
                  else np.random.SeedSequence(self.seed, spawn_key=(k - 1,)))
        else:  # None: Keras's global seed generator; or the given SeedGenerator
            words = keras.random.randint((4,), 0, 2**31 - 1, seed=self.seed, dtype="int32")
            ss = np.random.SeedSequence([int(w) for w in words])
        return np.random.Generator(np.random.PCG64(ss))

    def __call__(self, shape, dtype=None):
        shape = check_shape(shape)
        dtype = keras.backend.standardize_dtype(dtype or keras.config.floatx())
        if not keras.backend.is_float_dtype(dtype):
            raise fail("dtype", "must be a floating dtype (initial weights are real numbers)",
                       dtype, "pass 'float32', 'bfloat16', 'float16' or 'float64'.")
        np_dtype = "float64" if dtype == "float64" else "float32"
        arr = self.initializer.sample(shape, seed=self._next_rng(), dtype=np_dtype,
                                      layout=self.layout, fans=self.fans, role=self.role)
        return keras.ops.cast(keras.ops.convert_to_tensor(arr), dtype)

    # ------------------------------------------------------------------------- serialization
    def get_config(self) -> dict:
        seed = (keras.saving.serialize_keras_object(self.seed)
                if isinstance(self.seed, keras.random.SeedGenerator) else self.seed)
        return {"initializer": self.initializer.name, "params": dict(self.initializer.params),
                "seed": seed, "layout": self.layout,
                "fans": list(self.fans) if self.fans is not None else None, "role": self.role}

    @classmethod
    def from_config(cls, config: dict) -> KerasInitializer:
        return cls(**config)


def get(init: str | Initializer, *, seed=None, layout: str = "jax", fans=None,
        role: str = "weight", **params: Any) -> KerasInitializer:
    """The catalog initializer ``init`` (name or :class:`Initializer`) as a Keras initializer.

    ``initlab.keras.get("orthogonal", gain=2.0, seed=0)``; keyword parameters other than
    ``seed``, ``layout``, ``fans``, ``role`` go to the catalog entry.
    """
    if isinstance(init, Initializer):
        return KerasInitializer(_core_get(init, **params), seed=seed, layout=layout, fans=fans,
                                role=role)
    return KerasInitializer(init, params, seed=seed, layout=layout, fans=fans, role=role)


def _named(name: str):
    return adapter_factory(
        name, get, {"seed": None, "layout": "jax", "fans": None, "role": "weight"},
        returns="KerasInitializer",
        doc=f"``initlab.{name}`` as a Keras initializer; ``seed``, ``layout``, ``fans``, ``role`` "
            f"as in :class:`initlab.keras.KerasInitializer`.")


for _name in names():
    globals()[_name] = _named(_name)


def __getattr__(name: str):  # entries registered after import (e.g. by initlab.theory)
    if name in names():
        globals()[name] = _named(name)
        return globals()[name]
    raise AttributeError(f"module 'initlab.keras' has no attribute {name!r}")
