"""The catalog: every initializer as a thin named function over one variance-scaling core.

Each function validates its parameters and returns an :class:`Initializer`; none draws anything.
Aliases are plain assignments (``xavier_uniform = glorot_uniform``).
"""

from __future__ import annotations

import math

from .distributions import (
    DEFAULT_ORTHOGONAL_METHOD,
    DT_FLOOR,
    DT_MAX,
    DT_MIN,
    LOOKS_LINEAR_POSITIONS,
    LRU_MAX_RAD,
    LRU_MIN_RAD,
    ORTHOGONAL_METHODS,
    TRUNCATED_NORMAL_STD_2SIGMA,
    Constant,
    Cycle,
    DecayRateLog,
    DeltaOrthogonal,
    Dirac,
    Eye,
    Linspace,
    LooksLinear,
    MartensSparse,
    Normal,
    Orthogonal,
    RecurrenceRadius,
    S4DReal,
    Sparse,
    TimeStepBias,
    TruncatedNormal,
    Uniform,
    looks_linear_misfit,
)
from .fans import fan_for_mode, to_torch_shape
from .gains import calculate_gain
from .initializer import Context, Initializer
from .registry import register
from .validation import check_choice, check_scalar, fail

__all__ = [
    "zeros", "ones", "constant", "normal", "uniform", "uniform_std", "small_normal", "rbm_normal",
    "truncated_normal", "variance_scaling", "lecun_normal", "lecun_uniform", "glorot_normal",
    "glorot_uniform", "xavier_normal", "xavier_uniform", "he_normal", "he_uniform",
    "kaiming_normal", "kaiming_uniform", "torch_default", "nielsen_default", "nielsen_large",
    "orthogonal", "identity", "eye", "dirac", "delta_orthogonal", "looks_linear", "sparse",
    "martens_sparse", "s4d_real", "time_step_bias", "decay_rate_log",
    "recurrence_radius", "linspace",
]

MODES = ("fan_in", "fan_out", "fan_avg", "fan_geo_avg")
DISTRIBUTIONS = ("normal", "truncated_normal", "uniform")

# ===================================================================== fixed values


@register()
def zeros() -> Initializer:
    """All zeros. The usual bias init; for weights it makes every hidden unit identical
    (symmetry is never broken by gradient descent)."""
    return Initializer("zeros", {}, lambda ctx: Constant(0.0), random=False)


@register()
def ones() -> Initializer:
    """All ones (norm-layer scales)."""
    return Initializer("ones", {}, lambda ctx: Constant(1.0), random=False)


@register()
def constant(value: float = 0.0) -> Initializer:
    """Every element equal to ``value`` (torch ``constant_``)."""
    v = check_scalar(value, "value")
    return Initializer("constant", {"value": v}, lambda ctx: Constant(v), random=False)


# ===================================================================== fixed variance


@register()
def normal(mean: float = 0.0, std: float = 1.0) -> Initializer:
    """N(mean, std^2), independent of the fans (torch ``normal_``; defaults as torch's)."""
    m = check_scalar(mean, "mean")
    s = check_scalar(std, "std", min_val=0.0, why=" (a standard deviation cannot be negative)")
    return Initializer("normal", {"mean": m, "std": s}, lambda ctx: Normal(m, s))


@register()
def uniform(low: float = 0.0, high: float = 1.0) -> Initializer:
    """U(low, high) (torch ``uniform_(a=low, b=high)``; defaults as torch's)."""
    lo = check_scalar(low, "low")
    hi = check_scalar(high, "high")
    if lo > hi:
        raise fail("low", f"must be <= `high` (={hi})", lo, "swap the bounds.")
    return Initializer("uniform", {"low": lo, "high": hi}, lambda ctx: Uniform(lo, hi))


@register()
def uniform_std(std: float = 1.0, mean: float = 0.0) -> Initializer:
    """Uniform with a target standard deviation: U(mean - r, mean + r), r = sqrt(3) * std.

    (The variance of U(-r, r) is r^2 / 3.)
    """
    s = check_scalar(std, "std", min_val=0.0, why=" (a standard deviation cannot be negative)")
    m = check_scalar(mean, "mean")
    r = math.sqrt(3.0) * s
    if not (math.isfinite(m - r) and math.isfinite(m + r)):
        raise fail("std", "is too large: the bounds mean +- sqrt(3) std overflow float64", s,
                   "pass a smaller std.")
    return Initializer("uniform_std", {"std": s, "mean": m}, lambda ctx: Uniform(m - r, m + r))


@register()
def small_normal(std: float = 0.01) -> Initializer:
    """N(0, std^2) with std 0.01: the common ``randn(...) * 0.01`` (e.g. Ng's course).

    Fine for shallow nets; in deep nets the signal shrinks by ~std * sqrt(fan_in) per layer.
    """
    s = check_scalar(std, "std", min_val=0.0, why=" (a standard deviation cannot be negative)")
    return Initializer("small_normal", {"std": s}, lambda ctx: Normal(0.0, s))


@register()
def rbm_normal(std: float = 0.01) -> Initializer:
    """RBM weights: N(0, std^2), std 0.01 (Hinton 2010, "A Practical Guide to Training Restricted
    Boltzmann Machines", sec. 8: "a zero-mean Gaussian with a standard deviation of about 0.01").
    ``rbm_normal(std=0.1)`` gives the N(0, 0.1) variant some RBM code uses."""
    s = check_scalar(std, "std", min_val=0.0, why=" (a standard deviation cannot be negative)")
    return Initializer("rbm_normal", {"std": s}, lambda ctx: Normal(0.0, s))


@register()
def truncated_normal(mean: float = 0.0, std: float = 1.0, a: float = -2.0,
                     b: float = 2.0) -> Initializer:
    """N(mean, std^2) truncated to [a, b], with torch's meaning: ``a`` and ``b`` are *absolute*
    values and ``std`` is the parent normal's (so the result's std is smaller than ``std``).

    For bounds in units of std (JAX's / timm's ``trunc_normal_tf_``) pass ``a=mean - 2 * std``.
    Drawn by inverse CDF, so no redraw loop.
    """
    m = check_scalar(mean, "mean")
    s = check_scalar(std, "std", min_val=0.0, why=" (a standard deviation cannot be negative)")
    open_side = "pass a real bound, or -math.inf / math.inf to leave that side open."
    lo = check_scalar(a, "a", finite=False, fix=open_side)
    hi = check_scalar(b, "b", finite=False, fix=open_side)
    if lo > hi:
        raise fail("a", f"must be <= `b` (={hi}): the truncation interval [a, b] must be non-empty",
                   lo, "pass a <= b, e.g. a=-2.0, b=2.0 (absolute values, as torch's trunc_normal_).")
    params = {"mean": m, "std": s, "a": lo, "b": hi}
    if lo == hi:  # the point mass at a, as torch's trunc_normal_(a=b) fills
        if not math.isfinite(lo):
            raise fail("a", "must be finite when a == b (the interval is the single point a)", lo,
                       "pass finite bounds, or a < b.")
        return Initializer("truncated_normal", params, lambda ctx: Constant(lo), random=False)
    return Initializer("truncated_normal", params, lambda ctx: TruncatedNormal(m, s, lo, hi))


# ===================================================================== variance scaling core


def _scaled(name: str, params: dict, scale: float, mode: str, distribution: str) -> Initializer:
    """The one core: Var(w) = scale / n, n = fan_in, fan_out or (fan_in + fan_out) / 2.

    normal: std = sqrt(scale / n); uniform: bound = sqrt(3 * scale / n); truncated_normal:
    parent std = sqrt(scale / n) / 0.87962566103423978, truncated at +-2 parent std, so the result
    has variance scale / n.
    """

    def resolve(ctx: Context):
        fan_in, fan_out = ctx.fans()
        var = scale / fan_for_mode(fan_in, fan_out, mode)
        if not (math.isfinite(var) and (var > 0 or scale == 0)):
            raise fail("scale", f"gives Var(w) = scale / {mode} = {var!r} for fans "
                       f"({fan_in}, {fan_out}), which float64 cannot represent (it over- or "
                       "underflows)", scale, "pass a gain / scale of a sensible size.")
        std = math.sqrt(var)
        if distribution == "normal":
            return Normal(0.0, std)
        if distribution == "uniform":
            bound = math.sqrt(3.0) * std
            return Uniform(-bound, bound)
        parent = std / TRUNCATED_NORMAL_STD_2SIGMA
        return TruncatedNormal(0.0, parent, -2.0 * parent, 2.0 * parent)

    return Initializer(name, params, resolve, needs_fans=True,
                       scaling=(scale, mode, distribution))


@register()
def variance_scaling(scale: float = 1.0, mode: str = "fan_in",
                     distribution: str = "truncated_normal") -> Initializer:
    """The variance-scaling core: Var(w) = scale / n.

    n is ``fan_in``, ``fan_out``, ``fan_avg = (fan_in + fan_out) / 2`` or
    ``fan_geo_avg = sqrt(fan_in * fan_out)`` (JAX's fourth mode). ``distribution``:

    * ``"normal"``: N(0, scale / n);
    * ``"uniform"``: U(-r, r), r = sqrt(3 * scale / n);
    * ``"truncated_normal"``: normal truncated at +-2 standard deviations of its parent, whose std
      is sqrt(scale / n) / 0.87962566103423978 (the std of N(0, 1) truncated to (-2, 2)), so the
      result has exactly the variance scale / n. This is what JAX's ``variance_scaling`` and
      Keras's ``VarianceScaling`` do (Keras maps ``"normal"`` to it as well).

    LeCun (scale 1, fan_in), Glorot (scale 1, fan_avg) and He (scale 2, fan_in) are presets of it.
    """
    s = check_scalar(scale, "scale", min_val=0.0, include_min=False,
                     why=" (the variance multiplier)")
    check_choice(mode, "mode", MODES)
    check_choice(distribution, "distribution", DISTRIBUTIONS)
    return _scaled("variance_scaling", {"scale": s, "mode": mode, "distribution": distribution},
                   s, mode, distribution)


def _gain(gain: float) -> float:
    # 0 is accepted, as torch's xavier_*(gain=0) (the zero matrix); a negative gain is refused,
    # as torch's normal_ / uniform_ refuse the negative std / reversed bounds it would give
    g = check_scalar(gain, "gain", min_val=0.0, why=" (a gain multiplies the standard deviation)")
    if not math.isfinite(g * g):
        raise fail("gain", "must be < 1e154 (its square, the variance multiplier, overflows "
                   "float64)", g, "pass a gain of a sensible size (e.g. 1.0 or 5/3).")
    return g


@register()
def lecun_normal() -> Initializer:
    """N(0, 1 / fan_in). LeCun, Bottou, Orr, Mueller 1998, "Efficient BackProp".

    Untruncated (as in the paper); JAX/Keras's ``lecun_normal`` is the truncated variant,
    ``variance_scaling(1, "fan_in", "truncated_normal")``. The right choice for SELU.
    """
    return _scaled("lecun_normal", {}, 1.0, "fan_in", "normal")


@register()
def lecun_uniform() -> Initializer:
    """U(-r, r), r = sqrt(3 / fan_in). LeCun et al. 1998, "Efficient BackProp"."""
    return _scaled("lecun_uniform", {}, 1.0, "fan_in", "uniform")


@register(aliases=("xavier_normal",))
def glorot_normal(gain: float = 1.0) -> Initializer:
    """N(0, gain^2 * 2 / (fan_in + fan_out)). Glorot & Bengio 2010, "Understanding the difficulty
    of training deep feedforward neural networks". Same as torch ``xavier_normal_``."""
    g = _gain(gain)
    return _scaled("glorot_normal", {"gain": g}, g * g, "fan_avg", "normal")


@register(aliases=("xavier_uniform",))
def glorot_uniform(gain: float = 1.0) -> Initializer:
    """U(-r, r), r = gain * sqrt(6 / (fan_in + fan_out)): the "normalized initialization" of
    Glorot & Bengio 2010. Same as torch ``xavier_uniform_``; Keras's Dense default."""
    g = _gain(gain)
    return _scaled("glorot_uniform", {"gain": g}, g * g, "fan_avg", "uniform")


def _he(name: str, a: float | None, mode: str, nonlinearity: str,
        distribution: str) -> Initializer:
    # a=None is torch's calculate_gain default: leaky_relu's slope 0.01 (relu ignores it)
    if a is not None:
        a = check_scalar(a, "a", why=" (the negative slope of the rectifier)")
        if not math.isfinite(1.0 + a * a):
            raise fail("a", "must satisfy |a| < 1e154: the gain sqrt(2 / (1 + a^2)) underflows "
                       "to 0 beyond it", a, "pass the rectifier's negative slope (e.g. a=0.01 "
                       "or sqrt(5)).")
    check_choice(mode, "mode", ("fan_in", "fan_out"))
    g = calculate_gain(nonlinearity, a)
    return _scaled(name, {"a": a, "mode": mode, "nonlinearity": nonlinearity}, g * g, mode,
                   distribution)


@register(aliases=("kaiming_normal",))
def he_normal(a: float | None = 0.0, mode: str = "fan_in",
              nonlinearity: str = "leaky_relu") -> Initializer:
    """N(0, gain^2 / fan_mode), gain = calculate_gain(nonlinearity, a); sqrt(2) for ReLU (a = 0;
    a=None is torch's default slope, 0.01).
    He, Zhang, Ren, Sun 2015, "Delving Deep into Rectifiers". Same as torch ``kaiming_normal_``
    (untruncated)."""
    return _he("he_normal", a, mode, nonlinearity, "normal")


@register(aliases=("kaiming_uniform",))
def he_uniform(a: float | None = 0.0, mode: str = "fan_in",
               nonlinearity: str = "leaky_relu") -> Initializer:
    """U(-r, r), r = gain * sqrt(3 / fan_mode). He et al. 2015. Same as torch ``kaiming_uniform_``."""
    return _he("he_uniform", a, mode, nonlinearity, "uniform")


@register()
def torch_default() -> Initializer:
    """What ``nn.Linear`` / ``nn.Conv*`` do: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the weight
    (``kaiming_uniform_(a=sqrt(5))``) and for the bias (``role="bias"`` with the layer's
    ``fans=``). The classic U(-1/sqrt(d), 1/sqrt(d)) rule, d = number of inputs; Var = 1/(3 d).
    """

    def resolve(ctx: Context):
        fan_in, _ = ctx.fans()
        bound = 1.0 / math.sqrt(fan_in)
        return Uniform(-bound, bound)

    return Initializer("torch_default", {}, resolve, needs_fans=True)


@register()
def nielsen_default() -> Initializer:
    """Nielsen's ``default_weight_initializer`` ("Neural Networks and Deep Learning", ch. 3,
    ``network2.py``): weights N(0, 1/n_in) (``randn(y, x) / sqrt(x)``), biases N(0, 1)
    (``role="bias"``)."""

    def resolve(ctx: Context):
        if ctx.role == "bias":
            return Normal(0.0, 1.0)
        fan_in, _ = ctx.fans()
        return Normal(0.0, 1.0 / math.sqrt(fan_in))

    return Initializer("nielsen_default", {}, resolve, needs_fans=True)


@register()
def nielsen_large() -> Initializer:
    """Nielsen's ``large_weight_initializer`` (ch. 1-2 of his book): N(0, 1) weights and biases.
    With 1000 inputs half on, the weighted input has std sqrt(501) = 22.4: sigmoid units saturate."""
    return Initializer("nielsen_large", {}, lambda ctx: Normal(0.0, 1.0))


# ===================================================================== structured


@register()
def orthogonal(gain: float = 1.0, method: str = DEFAULT_ORTHOGONAL_METHOD) -> Initializer:
    """A Haar-distributed (semi-)orthogonal matrix times ``gain``. Saxe, McClelland, Ganguli 2014,
    "Exact solutions to the nonlinear dynamics of learning in deep linear neural networks".

    The tensor is viewed as ``(out, prod(rest))`` (torch layout). ``method``: ``"householder"``
    (default; Stewart 1980, "The efficient generation of random orthogonal matrices with an
    application to condition estimators": Householder reflectors from Gaussian vectors, no
    factorization), ``"qr"`` (QR of a Gaussian matrix with the sign fix of diag(R), Mezzadri
    2007; torch's ``orthogonal_``, whose stream ``method="qr"`` reproduces for float32), ``"svd"``
    (singular vectors of a Gaussian matrix with random column signs, which the classic recipe
    omits and without which the result is not Haar). All three are exactly Haar; the default is
    the same in the catalog, the plans, LSUV and ``initlab.torch.orthogonal_``.
    """
    # any real gain, as torch's orthogonal_ (a negative one gives the negated orthogonal matrix)
    g = check_scalar(gain, "gain", why=" (a gain multiplies the matrix)")
    check_choice(method, "method", ORTHOGONAL_METHODS)

    def resolve(ctx: Context):
        if len(ctx.shape) < 2:
            raise fail("shape", "must have at least 2 dimensions for `orthogonal`", ctx.shape,
                       "orthogonal matrices need rows and columns; use another initializer for 1-D.")
        return Orthogonal(g, method)

    return Initializer("orthogonal", {"gain": g, "method": method}, resolve)


@register(aliases=("eye",))
def identity(gain: float = 1.0) -> Initializer:
    """``gain`` times the identity matrix (torch ``eye_``); rectangular: ones on the diagonal.
    Le, Jaitly, Hinton 2015 (IRNN) use it for recurrent weights. 2-D only."""
    g = check_scalar(gain, "gain")

    def resolve(ctx: Context):
        if len(ctx.shape) != 2:
            raise fail("shape", "must be 2-D for `identity`", ctx.shape,
                       "for conv kernels use `dirac` (the convolution identity).")
        return Eye(g)

    return Initializer("identity", {"gain": g}, resolve, random=False)


@register()
def dirac(groups: int = 1, gain: float = 1.0) -> Initializer:
    """Convolution identity (torch ``dirac_``): a delta at the kernel centre, so a conv with
    ``in == out`` passes its input through; with ``groups``, the identity of each group.
    3-, 4- or 5-D (conv1d/2d/3d weights), torch layout ``(out, in, *kernel)``."""
    gr = int(check_scalar(groups, "groups", min_val=1, integer=True))
    g = check_scalar(gain, "gain")

    def resolve(ctx: Context):
        if len(ctx.shape) not in (3, 4, 5):
            raise fail("shape", "must be 3-, 4- or 5-D (a conv1d/2d/3d weight) for `dirac`",
                       ctx.shape, "for 2-D matrices use `identity`.")
        out = to_torch_shape(ctx.shape, ctx.layout)[0]
        if out % gr:
            raise fail("groups", f"must divide the number of output channels (={out})", gr,
                       "pass the conv's `groups`.")
        return Dirac(gr, g)

    return Initializer("dirac", {"groups": gr, "gain": g}, resolve, random=False)


@register()
def delta_orthogonal(gain: float = 1.0) -> Initializer:
    """Delta-orthogonal conv kernel (Xiao, Bahri, Sohl-Dickstein, Schoenholz, Pennington 2018,
    "Dynamical Isometry and a Mean Field Theory of CNNs"): zero everywhere except the spatial
    centre, which holds a Haar orthogonal ``(out, in)`` matrix times ``gain``. Needs ``in <= out``.
    """
    g = check_scalar(gain, "gain", min_val=0.0)

    def resolve(ctx: Context):
        shp = to_torch_shape(ctx.shape, ctx.layout)
        if len(shp) not in (3, 4, 5):
            raise fail("shape", "must be 3-, 4- or 5-D (a conv weight) for `delta_orthogonal`",
                       ctx.shape, "for 2-D matrices use `orthogonal`.")
        if shp[1] > shp[0]:
            raise fail("shape", f"must have in_channels <= out_channels for `delta_orthogonal` "
                       f"(in={shp[1]}, out={shp[0]})", ctx.shape,
                       "an orthogonal (out, in) matrix with in > out cannot have orthonormal "
                       "columns; use `orthogonal` on the flattened kernel instead.")
        return DeltaOrthogonal(g)

    return Initializer("delta_orthogonal", {"gain": g}, resolve)


@register()
def looks_linear(gain: float = 1.0, position: str = "hidden",
                 method: str = DEFAULT_ORTHOGONAL_METHOD) -> Initializer:
    """Looks-linear: mirrored orthogonal weights that make a ReLU stack linear at init (Balduzzi,
    Frean, Leary, Lewis, Ma, McWilliams 2017, "The Shattered Gradients Problem: If resnets are
    the answer, then what is the question?", ICML; the same parameter sharing in Burkholz &
    Dubatovka 2019, "Initialization of ReLUs for Dynamical Isometry", NeurIPS).

    With ``V`` a Haar (semi-)orthogonal block times ``gain`` (``method`` as in ``orthogonal``),
    a dense ``(out, in)`` weight (torch layout) is, by its ``position`` in the stack:

    * ``"first"`` (fed by the data): ``[[V], [-V]]``, so the pre-activation is ``[u, -u]``;
    * ``"hidden"``: ``[[V, -V], [-V, V]]``: from ``[relu(u), relu(-u)]`` it computes
      ``[V u, -V u]``, as ``relu(u) - relu(-u) = u``;
    * ``"last"`` (the readout): ``[[V, -V]]``: ``V u``.

    A first/hidden.../last chain is then the linear map ``V_L ... V_1`` at init, a product of
    orthogonal matrices: every singular value of its input-output Jacobian on the mirrored
    coordinates is ``gain^L`` (dynamical isometry, which Gaussian or orthogonal He weights
    cannot give a ReLU net: their spread grows with depth, Pennington et al. 2017), and the
    units are not symmetric, so training breaks the mirror at once. ``gain`` 1 for ReLU;
    ``1/(1 + a)`` for leaky_relu(a), whose ``f(u) - f(-u) = (1 + a) u``. Dense 2-D weights with
    the mirrored sides even, or conv kernels ``(out, in, *k)`` with the mirrored channel counts
    even: zeros with that ``(out, in)`` matrix at the centre tap (the delta construction of
    Xiao et al. 2018's ``delta_orthogonal``), so a "same"-padded plain ReLU CNN is linear at
    init too; a dense readout after flattening ``(C, H, W)`` folds the channel halves back at
    ``"last"``.
    """
    g = check_scalar(gain, "gain", min_val=0.0, why=" (a gain multiplies the matrix)")
    check_choice(position, "position", LOOKS_LINEAR_POSITIONS,
                 fix="pass 'first' (the layer fed by the data), 'hidden' or 'last' (the readout).")
    check_choice(method, "method", ORTHOGONAL_METHODS)

    def resolve(ctx: Context):
        misfit = looks_linear_misfit(to_torch_shape(ctx.shape, ctx.layout), position)
        if misfit:
            raise fail("shape", misfit[0], ctx.shape, misfit[1])
        return LooksLinear(g, position, method)

    return Initializer("looks_linear", {"gain": g, "position": position, "method": method},
                       resolve)


@register()
def sparse(sparsity: float = 0.9, std: float = 0.01) -> Initializer:
    """torch ``sparse_``: N(0, std^2), then a fraction ``sparsity`` of each column (ceil of it)
    set to zero. Martens 2010 ("Deep learning via Hessian-free optimization") motivates it; for
    his exact scheme (k nonzero incoming weights per unit) see ``martens_sparse``. 2-D only.
    The zeroed positions come from the same seed/generator (torch's ignore ``generator``)."""
    sp = check_scalar(sparsity, "sparsity", min_val=0.0, max_val=1.0,
                      why=" (the fraction of each column set to zero; 1 zeros it all, as torch)")
    s = check_scalar(std, "std", min_val=0.0, why=" (a standard deviation cannot be negative)")

    def resolve(ctx: Context):
        if len(ctx.shape) != 2:
            raise fail("shape", "must be 2-D for `sparse`", ctx.shape,
                       "`sparse` zeros a fraction of each column of a matrix; use "
                       "`martens_sparse` or reshape.")
        return Sparse(sp, s)

    return Initializer("sparse", {"sparsity": sp, "std": s}, resolve)


@register()
def martens_sparse(k: int = 15, std: float = 1.0) -> Initializer:
    """Martens 2010 sparse initialization: each unit keeps exactly ``k`` nonzero incoming weights
    (k = 15 in the paper), drawn from N(0, std^2) (unit Gaussian in the paper); all others zero.
    Incoming weights are the non-output axes (torch layout: each row of the flattened weight)."""
    kk = int(check_scalar(k, "k", min_val=1, integer=True))
    s = check_scalar(std, "std", min_val=0.0, why=" (a standard deviation cannot be negative)")

    def resolve(ctx: Context):
        fan_in, _ = ctx.fans()
        if kk > fan_in:
            raise fail("k", f"must be <= fan_in (={fan_in}) of the layer", kk,
                       f"pass k <= {fan_in}.")
        return MartensSparse(kk, s)

    return Initializer("martens_sparse", {"k": kk, "std": s}, resolve, needs_fans=True)


# ===================================================================== state-space models


@register(aliases=("s4d",))
def s4d_real() -> Initializer:
    """S4D-real (Gu, Gupta, Goel, Re 2022, "On the Parameterization and Initialization of
    Diagonal State Space Models"): the diagonal state matrix A_n = -(n + 1), n = 0..N-1, stored
    as ``A_log = log(n + 1)`` along the tensor's last axis and repeated over the others. The
    state decays at rates 1..N, a spread of timescales. Mamba (Gu & Dao 2023) and Mamba-2 use
    it for ``A_log`` (per channel and state, or one value per head). Not random."""

    def resolve(ctx: Context):
        return S4DReal()

    return Initializer("s4d_real", {}, resolve, random=False)


@register()
def linspace(start: float = 0.0, end: float = 1.0, power: float = 1.0,
             endpoint: bool = True) -> Initializer:
    """A ramp from ``start`` towards ``end`` along the tensor's last axis, repeated over the
    others: ``start + (end - start) * t_i ** power``, ``t_i = i / (n - 1)`` with ``endpoint``
    (``torch.linspace``: equal steps from start to end at power 1) or ``t_i = i / n`` without
    it (``numpy.linspace(..., endpoint=False)``: ``end`` is not reached). Not random.

    xLSTM's mLSTM forget-gate biases start at linspace(3, 6) over the heads (Beck et al. 2024,
    "xLSTM: Extended Long Short-Term Memory", and its reference code's
    ``bias_linspace_init_``), so that the heads' forget gates sigmoid(3..6) = 0.95..0.998 keep
    memories of 20 to 400 steps. RWKV-4's per-channel decays are the warped ramp
    ``-5 + 8 (h / (H - 1)) ** (0.7 + 1.3 l / (L - 1))`` (linspace(-5, 3, power=...)) and its
    token-shift mixes ``(i / C) ** (1 - l / L)`` (endpoint=False), layer l of L (Peng et al.
    2023, "RWKV: Reinventing RNNs for the Transformer Era", and its reference code)."""
    a = check_scalar(start, "start", why=" (the ramp's first value)")
    b = check_scalar(end, "end", why=" (the ramp's last value, or its limit without endpoint)")
    p = check_scalar(power, "power", min_val=0.0, include_min=False,
                     why=" (the exponent warping the ramp; 1 for equal steps)")
    if not isinstance(endpoint, bool):
        raise fail("endpoint", "must be True or False (whether the ramp ends at `end`)",
                   endpoint, "pass endpoint=True (torch.linspace) or endpoint=False.")
    params = {"start": a, "end": b}
    if p != 1.0 or not endpoint:
        params.update(power=p, endpoint=endpoint)

    def resolve(ctx: Context):
        return Linspace(a, b, p, endpoint)

    return Initializer("linspace", params, resolve, random=False)


@register()
def cycle(values=(0.0,)) -> Initializer:
    """The ``values`` repeated in order along the tensor's last axis (index i holds
    ``values[i % len(values)]``), the same for every other index. Not random.

    RWKV-4's ``time_first`` (the bonus of the current token) starts at log(0.3) plus the zigzag
    0, 0.5, -0.5 over the channels: ``cycle([log(0.3), log(0.3) + 0.5, log(0.3) - 0.5])``
    (Peng et al. 2023, "RWKV: Reinventing RNNs for the Transformer Era", and its reference
    code)."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__") or len(values) == 0:
        raise fail("values", "must be a non-empty sequence of real numbers (repeated along the "
                   "last axis)", values, "pass e.g. values=[0.0, 0.5, -0.5].")
    vals = [check_scalar(v, f"values[{i}]", why=" (a value the cycle repeats)")
            for i, v in enumerate(values)]

    def resolve(ctx: Context):
        return Cycle(tuple(vals))

    return Initializer("cycle", {"values": vals}, resolve, random=False)


@register(aliases=("mamba_dt_bias",))
def time_step_bias(dt_min: float = DT_MIN, dt_max: float = DT_MAX,
                   dt_floor: float = DT_FLOOR) -> Initializer:
    """The time-step bias of a selective state-space layer (Gu & Dao 2023, "Mamba: Linear-Time
    Sequence Modeling with Selective State Spaces", section 3.6): dt = exp(U(log dt_min,
    log dt_max)), at least ``dt_floor``, stored as its softplus inverse dt + log(1 - e^-dt), so
    that the layer's step softplus(x + bias) starts log-uniform over [dt_min, dt_max] (a spread
    of memory lengths 1/dt). Defaults are Mamba's (0.001, 0.1, 1e-4): its ``dt_proj.bias``,
    Mamba-2's ``dt_bias``."""
    lo = check_scalar(dt_min, "dt_min", min_val=0.0, include_min=False,
                      why=" (a time step is positive)")
    hi = check_scalar(dt_max, "dt_max", min_val=lo,
                      why=f" (the range's upper end, at least dt_min = {lo:g})",
                      fix=f"pass dt_max >= dt_min ({lo:g}).")
    fl = check_scalar(dt_floor, "dt_floor", min_val=0.0,
                      why=" (the smallest time step; 0 for none)")

    def resolve(ctx: Context):
        return TimeStepBias(lo, hi, fl)

    return Initializer("time_step_bias", {"dt_min": lo, "dt_max": hi, "dt_floor": fl}, resolve)


# Aliases as plain assignments, for users who import the functions.
xavier_normal = glorot_normal
xavier_uniform = glorot_uniform
kaiming_normal = he_normal
kaiming_uniform = he_uniform
eye = identity


@register(aliases=("gdn_a_log",))
def decay_rate_log(low: float = 1.0, high: float = 16.0) -> Initializer:
    """The decay rates of a gated linear-attention layer (Gated DeltaNet, Yang, Kautz,
    Hatamizadeh 2025; Kimi Delta Attention, Kimi Linear 2025): A ~ U(low, high) per head,
    stored as ``A_log = log A``, so that the layer's decay exp(-A softplus(x + dt_bias)) starts
    at a spread of rates (with ``time_step_bias`` for the ``dt_bias``). Defaults are Kimi
    Linear's and GLM-5-Next's (1, 16); FLA's Gated DeltaNet draws U(0, 16) and Hugging Face's
    Qwen3-Next U(0.01, 16) (``low`` must be positive: log 0 is -inf)."""
    lo = check_scalar(low, "low", min_val=0.0, include_min=False,
                      why=" (a decay rate is positive: its log must be finite)")
    hi = check_scalar(high, "high", min_val=lo,
                      why=f" (the range's upper end, at least low = {lo:g})",
                      fix=f"pass high >= low ({lo:g}).")

    def resolve(ctx: Context):
        return DecayRateLog(lo, hi)

    return Initializer("decay_rate_log", {"low": lo, "high": hi}, resolve)


@register(aliases=("rglru_param", "lru_ring"))
def recurrence_radius(min_rad: float = LRU_MIN_RAD, max_rad: float = LRU_MAX_RAD) -> Initializer:
    """The recurrence parameter of Griffin's RG-LRU (De et al. 2024, "Griffin", in
    RecurrentGemma: ``recurrent_param``): the recurrence weight a = exp(-softplus(x)) starts
    with a^2 ~ U(min_rad^2, max_rad^2), uniform on the area of a ring (the LRU's ring
    initialization, Orvieto et al. 2023), stored as x = softplus^-1(-log a). Defaults are
    Griffin's (0.9, 0.999): memory lengths 1/(1 - a) of 10 to 1,000 steps before the gate's
    exponent c r (c = 8)."""
    lo = check_scalar(min_rad, "min_rad", min_val=0.0, max_val=1.0, include_min=False,
                      include_max=False, why=" (a recurrence radius, in (0, 1))")
    hi = check_scalar(max_rad, "max_rad", min_val=lo, max_val=1.0, include_max=False,
                      why=f" (the ring's outer radius: at least min_rad = {lo:g} and below 1, "
                          "where the decay would vanish and its log be infinite)",
                      fix=f"pass min_rad <= max_rad < 1 (min_rad = {lo:g}).")

    def resolve(ctx: Context):
        return RecurrenceRadius(lo, hi)

    return Initializer("recurrence_radius", {"min_rad": lo, "max_rad": hi}, resolve)
