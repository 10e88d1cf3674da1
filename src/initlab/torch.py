"""PyTorch front end: ``init_`` for any catalog entry, and torch.nn.init drop-ins.

Every function fills a tensor in place and returns it, the way ``torch.nn.init`` does:

* the drop-ins (``uniform_``, ``normal_``, ``trunc_normal_``, ``constant_``, ``ones_``,
  ``zeros_``, ``eye_``, ``dirac_``, ``xavier_uniform_``, ``xavier_normal_``,
  ``kaiming_uniform_``, ``kaiming_normal_``, ``orthogonal_``, ``sparse_``, ``calculate_gain``)
  have torch.nn.init's names, signatures, defaults and semantics (``trunc_normal_``'s ``a``/``b``
  are absolute values and ``std`` is the parent normal's; ``kaiming_normal_`` is untruncated);
* the extras (``lecun_normal_``, ``he_normal_``, ``glorot_uniform_``, ``variance_scaling_``,
  ``delta_orthogonal_``, ``martens_sparse_``, ``torch_default_``, ...) follow the same
  conventions; any registered initializer ``name`` is also reachable as ``initlab.torch.name_``
  and through :func:`init_`.

Conventions (all functions): ``generator=`` is the last positional argument (``None``: torch's
default generator for the tensor's device, exactly as torch does; a generator on another device
type is an error); the draw runs under ``no_grad`` on the tensor's device and dtype (bfloat16 and
float16 are sampled in float32 and cast; truncated bounds hold after the cast); zero-element
tensors warn and are returned; random initializers refuse integer and boolean tensors (constant
ones accept them); nothing is written when an error is raised.

Same stream as torch: for float32 tensors, ``normal_``, ``uniform_``, ``xavier_*_``,
``kaiming_*_`` and ``orthogonal_(..., method="qr")`` give exactly torch.nn.init's values for the
same generator state (same draw, same std/bound); ``trunc_normal_`` (inverse CDF instead of
rejection), ``sparse_`` (mask from the generator) and the default ``orthogonal_`` (Householder)
give the same *distribution* from a different stream.

Fans follow torch's convention: weights are ``(out, in, *kernel)``, fan_in = in * prod(kernel),
fan_out = out * prod(kernel) (see :func:`initlab.fans`). No formula lives here: each function
builds a catalog :class:`~initlab.Initializer` and lets the core resolve the distribution.
"""

from __future__ import annotations

from typing import Any

import torch

from .backends.torch_backend import _warn_zero_elements, check_target, draw_
from .core import presets
from .core.distributions import DEFAULT_ORTHOGONAL_METHOD
from .core.gains import calculate_gain
from .core.initializer import Initializer
from .core.registry import _REGISTRY, get, names
from .core.validation import check_scalar, fail

__all__ = [
    "init_", "calculate_gain",
    # torch.nn.init drop-ins
    "uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_", "dirac_",
    "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_",
    "sparse_",
    # initlab extras
    "lecun_normal_", "lecun_uniform_", "glorot_normal_", "glorot_uniform_", "he_normal_",
    "he_uniform_", "variance_scaling_", "truncated_normal_", "uniform_std_", "small_normal_",
    "rbm_normal_", "torch_default_", "nielsen_default_", "nielsen_large_", "identity_",
    "delta_orthogonal_", "looks_linear_", "martens_sparse_", "ORTHOGONAL_METHOD",
    "STREAM_VERSION",
]

# Method of the drop-in ``orthogonal_``: the core's one default (Stewart's Householder method draws
# exactly the same Haar distribution as torch's QR + sign fix and measured faster on CPU).
ORTHOGONAL_METHOD = DEFAULT_ORTHOGONAL_METHOD

# Version of what initlab.torch draws for a given generator state (recorded by apply's report
# next to the random source's version). v2: the catalog's `orthogonal` (init_(t, "orthogonal"),
# plans, LSUV) is Householder like orthogonal_ (v1: QR there, Householder here).
STREAM_VERSION = "initlab-torch-v2"


def init_(tensor: torch.Tensor, init: str | Initializer, *, generator: torch.Generator | None = None,
          fans: tuple[int, int] | None = None, role: str = "weight", layout: str = "torch",
          **params: Any) -> torch.Tensor:
    """Fill ``tensor`` in place from a catalog name (with ``params``) or an ``Initializer``.

    The core resolves the distribution with ``init.resolve(tuple(tensor.shape), fans=fans,
    layout=layout, role=role)`` and :func:`initlab.backends.torch_backend.draw_` draws it.
    ``fans=(fan_in, fan_out)`` gives a tensor its layer's fans (how a bias gets its fan_in);
    ``role="bias"`` selects an initializer's bias rule (e.g. ``nielsen_default``).

    >>> w = torch.empty(256, 784)
    >>> _ = init_(w, "he_normal", generator=torch.Generator().manual_seed(0))
    >>> b = torch.empty(256)
    >>> _ = init_(b, "torch_default", fans=(784, 256), role="bias")
    """
    return _init(tensor, get(init, **params), generator, fans=fans, role=role, layout=layout)


def _init(tensor, ini: Initializer, generator, *, fans=None, role="weight", layout="torch",
          stacklevel: int = 2, sink: list | None = None) -> torch.Tensor:
    """Validate, then resolve and draw. ``stacklevel`` points the zero-element warning at the
    user's call (2: the caller of the function that called ``_init``); ``sink`` receives the
    draw's measured ``(mean, std)`` (see ``draw_``)."""
    check_target(tensor, ini.random, generator, complex_ok=True)  # draw_ checks the kind
    if tensor.numel() == 0:
        ini.check_empty(tuple(tensor.shape), fans=fans, layout=layout, role=role)
        _warn_zero_elements(tensor.shape, stacklevel + 1)
        return tensor
    dist = ini.resolve(tuple(tensor.shape), fans=fans, layout=layout, role=role)
    return draw_(tensor, dist, generator, layout=layout, sink=sink)


def _named(name: str, tensor, generator, fans=None, role="weight", **params) -> torch.Tensor:
    # the preset function itself (the core validates every parameter); skipping the registry's
    # signature introspection keeps the per-call overhead near torch's
    factory = getattr(presets, name)
    return _init(tensor, factory(**params), generator, fans=fans, role=role, stacklevel=3)


# ============================================================================ torch drop-ins


def uniform_(tensor: torch.Tensor, a: float = 0.0, b: float = 1.0,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """Fill with U(a, b) (torch ``nn.init.uniform_``).

    >>> _ = uniform_(torch.empty(3, 5), -0.1, 0.1)
    """
    a = check_scalar(a, "a")
    b = check_scalar(b, "b")
    if a > b:
        raise _fail_order("a", a, "b", b, "<=")
    return _named("uniform", tensor, generator, low=a, high=b)


def normal_(tensor: torch.Tensor, mean: float = 0.0, std: float = 1.0,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """Fill with N(mean, std^2) (torch ``nn.init.normal_``)."""
    return _named("normal", tensor, generator, mean=mean, std=std)


def trunc_normal_(tensor: torch.Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0,
                  b: float = 2.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Fill with N(mean, std^2) truncated to [a, b] (torch ``nn.init.trunc_normal_``).

    As in torch, ``a`` and ``b`` are absolute values and ``std`` is the parent normal's (the
    result's std is smaller: 0.8796 * std for [-2 std, 2 std]). Drawn by inverse CDF
    (t ~ U(erf(alpha / sqrt 2), erf(beta / sqrt 2)), x = mean + sqrt(2) std erfinv(t)) in place,
    with no redraw loop and no temporary; every value lies in [a, b] after rounding to the
    tensor's dtype (pytorch issue 155588 is about float32 values outside the bounds).
    """
    return _named("truncated_normal", tensor, generator, mean=mean, std=std, a=a, b=b)


def constant_(tensor: torch.Tensor, val: float) -> torch.Tensor:
    """Fill with ``val`` (torch ``nn.init.constant_``); integer/bool tensors accepted."""
    val = check_scalar(val, "val")
    return _named("constant", tensor, None, value=val)


def ones_(tensor: torch.Tensor) -> torch.Tensor:
    """Fill with 1 (torch ``nn.init.ones_``)."""
    return _named("ones", tensor, None)


def zeros_(tensor: torch.Tensor) -> torch.Tensor:
    """Fill with 0 (torch ``nn.init.zeros_``)."""
    return _named("zeros", tensor, None)


def eye_(tensor: torch.Tensor) -> torch.Tensor:
    """Fill a 2-D tensor with the identity (ones on the main diagonal; torch ``nn.init.eye_``).
    Preserves the identity of the inputs in ``Linear`` layers (as many as possible)."""
    return _named("identity", tensor, None)


def dirac_(tensor: torch.Tensor, groups: int = 1) -> torch.Tensor:
    """Fill a 3-, 4- or 5-D conv weight with the Dirac delta (torch ``nn.init.dirac_``): the
    conv passes its first ``out/groups`` input channels of each group through unchanged."""
    return _named("dirac", tensor, None, groups=groups)


def xavier_uniform_(tensor: torch.Tensor, gain: float = 1.0,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """U(-r, r), r = gain * sqrt(6 / (fan_in + fan_out)) (torch ``nn.init.xavier_uniform_``).
    Glorot & Bengio 2010, "Understanding the difficulty of training deep feedforward neural
    networks"."""
    return _named("glorot_uniform", tensor, generator, gain=gain)


def xavier_normal_(tensor: torch.Tensor, gain: float = 1.0,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out)) (torch ``nn.init.xavier_normal_``).
    Glorot & Bengio 2010."""
    return _named("glorot_normal", tensor, generator, gain=gain)


def _mode(mode):
    return mode.lower() if isinstance(mode, str) else mode  # torch lower-cases the mode


def kaiming_uniform_(tensor: torch.Tensor, a: float = 0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu",
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """U(-bound, bound), bound = gain * sqrt(3 / fan_mode), gain = calculate_gain(nonlinearity,
    a) (torch ``nn.init.kaiming_uniform_``). He, Zhang, Ren, Sun 2015, "Delving Deep into
    Rectifiers". ``a=math.sqrt(5)`` is nn.Linear's default: U(+-1/sqrt(fan_in))."""
    return _named("he_uniform", tensor, generator, a=a, mode=_mode(mode), nonlinearity=nonlinearity)


def kaiming_normal_(tensor: torch.Tensor, a: float = 0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu",
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """N(0, std^2), std = gain / sqrt(fan_mode) (torch ``nn.init.kaiming_normal_``,
    untruncated). He et al. 2015, "Delving Deep into Rectifiers"."""
    return _named("he_normal", tensor, generator, a=a, mode=_mode(mode), nonlinearity=nonlinearity)


def orthogonal_(tensor: torch.Tensor, gain: float = 1, generator: torch.Generator | None = None,
                *, method: str = ORTHOGONAL_METHOD) -> torch.Tensor:
    """A Haar-distributed (semi-)orthogonal matrix times ``gain`` (torch ``nn.init.orthogonal_``).

    The tensor is viewed as ``(rows, prod(rest))``; a wide matrix has orthonormal rows, a tall one
    orthonormal columns. Saxe, McClelland, Ganguli 2014, "Exact solutions to the nonlinear
    dynamics of learning in deep linear neural networks". ``method``: ``"householder"`` (default;
    Stewart 1980, "The efficient generation of random orthogonal matrices with an application to
    condition estimators": random Householder reflectors multiplied out, no QR factorization),
    ``"qr"`` (torch's: QR of a Gaussian matrix with the sign fix of Mezzadri 2007) or ``"svd"``
    (with random column signs). All three are exactly Haar. Computed in float32 (float64 for
    float64 tensors) and cast.
    """
    return _named("orthogonal", tensor, generator, gain=gain, method=method)


def sparse_(tensor: torch.Tensor, sparsity: float, std: float = 0.01,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """N(0, std^2), then ceil(sparsity * rows) entries of each column set to zero (torch
    ``nn.init.sparse_``; Martens 2010, "Deep learning via Hessian-free optimization").

    Unlike torch's, the zero positions come from ``generator`` too (pytorch issue 98200), and all
    columns are drawn at once (no Python loop per column). 2-D only.
    """
    return _named("sparse", tensor, generator, sparsity=sparsity, std=std)


# ============================================================================ initlab extras


def lecun_normal_(tensor: torch.Tensor, generator: torch.Generator | None = None, *,
                  fans: tuple[int, int] | None = None) -> torch.Tensor:
    """N(0, 1 / fan_in), untruncated. LeCun, Bottou, Orr, Mueller 1998, "Efficient BackProp".
    (JAX/Keras's ``lecun_normal`` is truncated: ``variance_scaling_(t, 1.0, "fan_in")``.)"""
    return _named("lecun_normal", tensor, generator, fans=fans)


def lecun_uniform_(tensor: torch.Tensor, generator: torch.Generator | None = None, *,
                   fans: tuple[int, int] | None = None) -> torch.Tensor:
    """U(-r, r), r = sqrt(3 / fan_in). LeCun et al. 1998, "Efficient BackProp"."""
    return _named("lecun_uniform", tensor, generator, fans=fans)


def variance_scaling_(tensor: torch.Tensor, scale: float = 1.0, mode: str = "fan_in",
                      distribution: str = "truncated_normal",
                      generator: torch.Generator | None = None, *,
                      fans: tuple[int, int] | None = None) -> torch.Tensor:
    """Var(w) = scale / n, n = fan_in, fan_out or (fan_in + fan_out) / 2 (``mode``).

    ``distribution``: ``"normal"`` (std sqrt(scale / n)), ``"uniform"`` (bound sqrt(3 scale / n))
    or ``"truncated_normal"`` (parent std sqrt(scale / n) / 0.87962566103423978, truncated at
    +-2 parent std, so the variance is exactly scale / n). JAX's ``variance_scaling``; LeCun
    (scale 1, fan_in), Glorot (1, fan_avg) and He (2, fan_in) are its presets.
    """
    return _named("variance_scaling", tensor, generator, fans=fans, scale=scale, mode=mode,
                  distribution=distribution)


def uniform_std_(tensor: torch.Tensor, std: float = 1.0, mean: float = 0.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """U(mean - r, mean + r) with r = sqrt(3) * std, so the standard deviation is ``std``."""
    return _named("uniform_std", tensor, generator, std=std, mean=mean)


def small_normal_(tensor: torch.Tensor, std: float = 0.01,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """N(0, std^2), std 0.01: the common ``randn(...) * 0.01``."""
    return _named("small_normal", tensor, generator, std=std)


def rbm_normal_(tensor: torch.Tensor, std: float = 0.01,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """N(0, std^2), std 0.01: Hinton 2010, "A Practical Guide to Training Restricted Boltzmann
    Machines"."""
    return _named("rbm_normal", tensor, generator, std=std)


def torch_default_(tensor: torch.Tensor, generator: torch.Generator | None = None, *,
                   fans: tuple[int, int] | None = None, role: str = "weight") -> torch.Tensor:
    """What ``nn.Linear``/``nn.Conv*`` do: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the weight,
    and for the bias given the layer's ``fans=`` (``kaiming_uniform_(a=sqrt(5))`` and
    ``reset_parameters``)."""
    return _named("torch_default", tensor, generator, fans=fans, role=role)


def nielsen_default_(tensor: torch.Tensor, generator: torch.Generator | None = None, *,
                     fans: tuple[int, int] | None = None, role: str = "weight") -> torch.Tensor:
    """Weights N(0, 1 / fan_in), biases (``role="bias"``) N(0, 1): Nielsen, "Neural Networks and
    Deep Learning" (2015), ch. 3, ``network2.py``."""
    return _named("nielsen_default", tensor, generator, fans=fans, role=role)


def nielsen_large_(tensor: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """N(0, 1): Nielsen's ``large_weight_initializer`` ("Neural Networks and Deep Learning")."""
    return _named("nielsen_large", tensor, generator)


def identity_(tensor: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    """``gain`` times the identity (2-D). Le, Jaitly, Hinton 2015, "A Simple Way to Initialize
    Recurrent Networks of Rectified Linear Units" (IRNN)."""
    return _named("identity", tensor, None, gain=gain)


def delta_orthogonal_(tensor: torch.Tensor, gain: float = 1.0,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero conv kernel with a Haar orthogonal ``(out, in)`` matrix times ``gain`` at the centre
    tap; needs in <= out. Xiao, Bahri, Sohl-Dickstein, Schoenholz, Pennington 2018, "Dynamical
    Isometry and a Mean Field Theory of CNNs"."""
    return _named("delta_orthogonal", tensor, generator, gain=gain)


def looks_linear_(tensor: torch.Tensor, gain: float = 1.0, position: str = "hidden",
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirrored orthogonal weights that make a ReLU stack linear at init: ``[[V], [-V]]``
    (``position="first"``), ``[[V, -V], [-V, V]]`` (``"hidden"``) or ``[[V, -V]]`` (``"last"``),
    ``V`` Haar orthogonal times ``gain``; a conv kernel gets that ``(out, in)`` matrix at its
    centre tap, zeros elsewhere. Balduzzi et al. 2017, "The Shattered Gradients Problem"
    (looks-linear initialization); see ``initlab.get("looks_linear")``."""
    return _named("looks_linear", tensor, generator, gain=gain, position=position)


def martens_sparse_(tensor: torch.Tensor, k: int = 15, std: float = 1.0,
                    generator: torch.Generator | None = None, *,
                    fans: tuple[int, int] | None = None) -> torch.Tensor:
    """Each unit (row of the ``(out, -1)`` view) gets exactly ``k`` nonzero N(0, std^2) incoming
    weights at uniformly random positions; all others zero. Martens 2010, "Deep learning via
    Hessian-free optimization" (k = 15). Vectorized: one top-k over random keys."""
    return _named("martens_sparse", tensor, generator, fans=fans, k=k, std=std)


# Aliases are assignments.
glorot_uniform_ = xavier_uniform_
glorot_normal_ = xavier_normal_
he_uniform_ = kaiming_uniform_
he_normal_ = kaiming_normal_
truncated_normal_ = trunc_normal_


def _fail_order(n1, v1, n2, v2, op):
    return fail(n1, f"must be {op} `{n2}` (={v2})", v1, "swap the bounds.")


def __getattr__(attr: str):
    """``initlab.torch.<name>_`` for any registered initializer without a hand-written function
    (e.g. ones registered by other modules): ``f(tensor, generator=None, *, fans=None,
    role="weight", **params)``."""
    if attr.endswith("_") and not attr.startswith("_") and attr[:-1] in names():
        name = attr[:-1]

        def fill_(tensor, generator=None, *, fans=None, role="weight", **params):
            return _init(tensor, get(name, **params), generator, fans=fans, role=role)

        fill_.__name__ = fill_.__qualname__ = attr
        fill_.__doc__ = (f"``init_(tensor, {name!r}, generator=generator, ...)``.\n\n"
                         + (_REGISTRY[name].__doc__ or ""))
        return fill_
    raise AttributeError(f"module 'initlab.torch' has no attribute {attr!r}")


# ============================================================================ deprecated aliases
# torch.nn.init still ships the pre-0.4 names without the trailing underscore; each warns with a
# FutureWarning and forwards to the in-place function. Same here, with torch's message, so code
# written against them keeps working on initlab.torch (and its warning filters keep matching).


def _deprecated_alias(new):
    import functools
    import warnings

    new_name = new.__name__
    old_name = new_name[:-1]

    @functools.wraps(new)
    def deprecated_init(*args, **kwargs):
        warnings.warn(
            f"`nn.init.{old_name}` is now deprecated in favor of `nn.init.{new_name}`.",
            FutureWarning, stacklevel=2)
        return new(*args, **kwargs)

    deprecated_init.__name__ = deprecated_init.__qualname__ = old_name
    deprecated_init.__doc__ = (f"{old_name}(...): deprecated, as in torch.nn.init; use "
                               f":func:`initlab.torch.{new_name}` (same arguments).")
    return deprecated_init


DEPRECATED_ALIASES = ("normal", "uniform", "constant", "eye", "dirac", "xavier_uniform",
                      "xavier_normal", "kaiming_uniform", "kaiming_normal", "orthogonal", "sparse")
for _old in DEPRECATED_ALIASES:
    globals()[_old] = _deprecated_alias(globals()[_old + "_"])
del _old
