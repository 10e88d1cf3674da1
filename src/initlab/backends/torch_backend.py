"""PyTorch backend: draws each :mod:`~initlab.core.distributions` kind into a tensor, in place.

:func:`draw_` is the only entry point; :mod:`initlab.torch` builds every public function on it.
It never computes a formula: the core's ``Initializer.resolve`` says *what* to draw (e.g.
``Normal(0, 0.05)``), this module only says *how*, on the tensor's own device and dtype.

Conventions
-----------
* Randomness comes only from ``generator`` (``None`` means torch's default generator for the
  tensor's device, exactly as ``torch.Tensor.normal_`` does). A generator on another device type
  than the tensor is an error.
* Everything is validated before anything is written, so a tensor is untouched when an error is
  raised. Zero-element tensors warn ("Initializing zero-element tensors is a no-op", like torch)
  and are returned unchanged; meta tensors (no storage) are returned unchanged.
* float32 and float64 tensors are drawn in their own dtype, in place (no temporary for
  elementwise kinds). Other floating dtypes (bfloat16, float16, float8) are drawn in float32,
  chunk by chunk (``CHUNK`` elements), and cast; the truncated normal's bounds are first rounded
  *into* the dtype so that rounding can never push a value outside ``[a, b]``.
* Random kinds need a floating tensor; constant kinds (zeros, ones, constant, eye, dirac) accept
  integer and boolean tensors too, as torch's do.

Truncated normal: inverse CDF, with no redraw loop. With t = erf(x / sqrt(2)) (so x = sqrt(2) *
erfinv(t)), N(0, 1) conditioned on [alpha, beta] is t ~ U(erf(alpha/sqrt 2), erf(beta/sqrt 2)):
``uniform_`` in t-space, ``erfinv_``, scale, clamp, all in place on the output. The interval is
mirrored to the lower tail when alpha > 0. When the t-interval is too narrow to be resolved in the
working precision (far-tail intervals such as [4, 10] std) the draw switches to float64 with
``torch.special.ndtri`` in u-space (u = Phi(x)), which keeps full relative precision there.
float32 t-space draws are limited to |t| <= 1 - 2**-23 (|x| <~ 5.3 std, a mass of ~1e-7, the
same tail resolution as a 24-bit uniform gives any float32 sampler).

Orthogonal: ``"householder"`` is Stewart's method (G. W. Stewart 1980, "The efficient generation
of random orthogonal matrices with an application to condition estimators"): the Householder
vectors of the QR factorization of a Gaussian matrix are themselves independent Gaussian vectors
of decreasing length, so they are drawn directly and multiplied out with
``torch.linalg.householder_product``, skipping the factorization; the diagonal of R is known from
them, so Mezzadri's sign fix costs nothing. The result has exactly the distribution of
``"qr"`` (QR of a Gaussian matrix, columns multiplied by sign(diag(R)); F. Mezzadri 2007, "How to
generate random matrices from the classical compact groups"): Haar.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import torch

from ..core.distributions import (
    DEFAULT_ORTHOGONAL_METHOD,
    ORTHOGONAL_METHODS,
    Constant,
    Cycle,
    DecayRateLog,
    DeltaOrthogonal,
    Dirac,
    Distribution,
    Eye,
    Linspace,
    LooksLinear,
    MartensSparse,
    Normal,
    Orthogonal,
    RecurrenceRadius,
    RowDistribution,
    S4DReal,
    Sparse,
    TimeStepBias,
    TruncatedNormal,
    Uniform,
    check_fits_dtype,
    check_fits_integer,
    kernel_centre,
    looks_linear_block,
)
from ..core.fans import LAYOUTS, to_torch_shape, torch_axes_to
from ..core.validation import InitlabTypeError, check_choice, error_message, fail

__all__ = ["draw_", "check_target", "check_dtype_range", "haar_orthogonal", "SAMPLERS", "CHUNK",
           "MEASURE_CHUNK", "ZERO_ELEMENT_WARNING", "chunk_sums", "constant_moments",
           "moments_from_sums", "part_sums"]

# Elements per chunk when a low-precision output is drawn through a float32 buffer (8 MiB). Each
# chunk opens a few parallel regions; much smaller chunks measured slower with 2 threads on a
# loaded machine (thread wake-up per region), much larger ones cost memory.
CHUNK = 1 << 21

ZERO_ELEMENT_WARNING = "Initializing zero-element tensors is a no-op"

_SQRT2 = math.sqrt(2.0)
_DIRECT = (torch.float32, torch.float64)  # dtypes drawn in place, in their own precision
# Complex dtypes the normal, uniform and sparse kinds accept, with torch's meaning: normal_ draws
# the circular complex normal (real and imaginary parts N(mean, std^2 / 2) each, E|z - mean|^2 =
# std^2), uniform_ each part U(low, high) independently.
_COMPLEX = (torch.complex64, torch.complex128)

# Largest |t| used in t-space (t = erf(x / sqrt 2)): one ulp of margin below the largest value
# < 1 of the working dtype, so uniform_'s last rounding can never reach erfinv(+-1) = +-inf.
_T_MAX = {torch.float32: 1.0 - 2.0**-23, torch.float64: 1.0 - 2.0**-52}
# Narrowest t-interval drawn in t-space; narrower ones (far tails) are drawn in float64 u-space.
# 2**-10 spans >= 2**14 distinct float32 values even next to +-1.
_T_MIN_WIDTH = 2.0**-10


# ============================================================================ validation


def check_target(tensor, random: bool, generator=None, *, name: str = "tensor",
                 complex_ok: bool = False) -> None:
    """Raise unless ``tensor`` can receive a draw (random or constant) from ``generator``."""
    if not isinstance(tensor, torch.Tensor):
        raise InitlabTypeError(error_message(
            name, "must be a torch.Tensor", type(tensor).__name__,
            "pass a tensor (e.g. a module's weight); for NumPy use Initializer.sample()."))
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise InitlabTypeError(error_message(
                "generator", "must be a torch.Generator or None", type(generator).__name__,
                "pass torch.Generator(device=tensor.device).manual_seed(seed), or None for "
                "torch's default generator."))
        if generator.device.type != tensor.device.type:
            raise fail(
                "generator", f"must be on the tensor's device type ({tensor.device.type!r}); it "
                f"is on {generator.device.type!r}", str(generator.device),
                f"create it with torch.Generator(device={str(tensor.device)!r}).")
    if tensor.is_inference() and not torch.is_inference_mode_enabled():
        raise fail(
            name, "is an inference tensor (created under torch.inference_mode()), which cannot be "
            "written in place outside inference mode", f"inference tensor of shape "
            f"{tuple(tensor.shape)}", "initialize a normal tensor (t = t.clone() outside "
            "inference mode), or call this inside torch.inference_mode().")
    if _overlaps(tensor):
        raise fail(
            name, "has elements that share memory (e.g. made by expand()), so an in-place draw "
            "cannot give them different values", f"shape {tuple(tensor.shape)}, stride "
            f"{tuple(tensor.stride())}", "initialize the tensor it was expanded from, or a copy "
            "(t.clone() / t.contiguous()).")
    if random:
        if complex_ok and tensor.dtype in _COMPLEX:
            return
        if tensor.dtype.is_complex:
            raise fail(
                name, "must have a real floating dtype for this random initializer (complex64 / "
                "complex128 tensors take only the normal, uniform and sparse kinds, with torch's "
                "meaning; torch's own init refuses the others on complex tensors too)", str(tensor.dtype),
                "draw the real and imaginary parts into real tensors and combine them "
                "(torch.complex(re, im)), or use normal / uniform / a fan-based normal or "
                "uniform preset.")
        if not tensor.dtype.is_floating_point:
            raise fail(
                name, "must have a real floating dtype for a random initializer (float16, "
                "bfloat16, float32, float64)", str(tensor.dtype),
                "initialize a floating tensor and convert it, or use a constant initializer "
                "(zeros, ones, constant, eye, dirac), which accept integer tensors.")


def _overlaps(tensor: torch.Tensor) -> bool:
    """Whether two elements of ``tensor`` are one memory location (torch's own check)."""
    if tensor.numel() <= 1 or tensor.is_meta:
        return False
    try:
        return torch._debug_has_internal_overlap(tensor) == 1  # 1: MemOverlap::Yes
    except (RuntimeError, TypeError, AttributeError):  # e.g. tensor subclasses: strides only
        return any(st == 0 and n > 1 for st, n in zip(tensor.stride(), tensor.shape))


_FINFO_MAX: dict[torch.dtype, float] = {}  # largest finite value per floating dtype


def check_dtype_range(tensor: torch.Tensor, dist: Distribution, *, name: str = "tensor") -> None:
    """Raise unless every value of ``dist`` fits ``tensor``'s dtype: floating dtypes by their
    largest finite value (a draw beyond it would be written as inf), integer dtypes by their
    range and integrality (a constant that would be wrapped or truncated)."""
    dt = tensor.dtype
    if dt.is_floating_point:
        top = _FINFO_MAX.get(dt)
        if top is None:
            top = _FINFO_MAX[dt] = float(torch.finfo(dt).max)
        if dist.extent() <= top:  # the common case, without building a message
            return
        check_fits_dtype(dist, str(dt).replace("torch.", ""), top, name=name)
    elif not dt.is_complex and dist.fixed_values() is not None:
        # (random kinds were refused by check_target, with its own message)
        lo, hi = (0, 1) if dt == torch.bool else (torch.iinfo(dt).min, torch.iinfo(dt).max)
        check_fits_integer(dist, str(dt).replace("torch.", ""), lo, hi, name=name)


def _warn_zero_elements(shape, stacklevel: int) -> None:
    warnings.warn(f"{ZERO_ELEMENT_WARNING} (shape {tuple(shape)}).", UserWarning,
                  stacklevel=stacklevel + 1)


# ============================================================================ entry point


def draw_(tensor: torch.Tensor, dist: Distribution, generator: torch.Generator | None = None,
          *, layout: str = "torch", _stacklevel: int = 1,
          sink: list | None = None) -> torch.Tensor:
    """Fill ``tensor`` in place with a draw from ``dist`` and return it.

    ``dist`` is a :mod:`initlab.core.distributions` object, usually from
    ``Initializer.resolve(tuple(tensor.shape), ...)``. ``layout`` is the layout ``tensor`` is
    stored in; structured kinds (orthogonal, eye, dirac, ...) are defined on the torch layout
    ``(out, in, *kernel)`` and are written through a permuted view. Runs under ``no_grad``;
    dtype and device are preserved. See the module docstring for the conventions.

    ``sink``: a list to which the draw appends ``(mean, std)`` of the values it wrote when it
    measured them in the same pass (see :func:`chunk_sums`; the same values are drawn as without
    ``sink``) or knows them exactly (a constant); nothing is appended otherwise.
    """
    if not isinstance(dist, Distribution):
        raise InitlabTypeError(error_message(
            "dist", "must be an initlab.core.distributions object", type(dist).__name__,
            "pass Initializer.resolve(tuple(tensor.shape)) or use initlab.torch.init_."))
    check_target(tensor, dist.random, generator, complex_ok=type(dist) in _COMPLEX_KINDS)
    check_choice(layout, "layout", LAYOUTS)
    sampler = SAMPLERS.get(type(dist))
    if sampler is None:
        raise fail("dist", "is not a kind the torch backend knows", type(dist).__name__,
                   "pass an initlab.core.distributions kind (KINDS).")
    shape = tuple(tensor.shape)
    dist.check_shape(shape if dist.is_elementwise else to_torch_shape(shape, layout))
    check_dtype_range(tensor, dist)
    if tensor.numel() == 0:
        _warn_zero_elements(tensor.shape, _stacklevel + 1)
        return tensor
    if tensor.is_meta:
        return tensor
    with torch.no_grad():
        fill = _measurable(tensor, dist, generator) if sink is not None else None
        if fill is not None and sink is not None:   # fill is None without a sink
            moments = moments_from_sums(*chunk_sums(tensor.view(-1), fill=fill))
            if moments is not None:   # None: the sums could cancel; the caller measures
                sink.append(moments)
            return tensor
        sampler(tensor if dist.is_elementwise else _torch_view(tensor, layout), dist, generator)
        if sink is not None and type(dist) is Constant and tensor.is_floating_point() \
                and _plain(tensor):
            sink.append(constant_moments(tensor))
    return tensor


# ============================================================================ measured draws

#: Elements per chunk of a measured draw: 512 KiB of float32, so that each chunk is summed while
#: it is still in the core's cache (the statistics then cost a fraction of a pass over memory).
MEASURE_CHUNK = 1 << 17


def _measurable(tensor: torch.Tensor, dist: Distribution, gen):
    """The in-place fill of ``dist`` when drawing it chunk by chunk gives exactly the values of
    one call, else None. That holds for torch's CPU ``normal_`` and ``uniform_`` on contiguous
    float32/float64 tensors with a CPU generator: ``uniform_`` draws element by element in order,
    and ``normal_`` draws a uniform per element, then transforms blocks of 16 and redraws the
    last 16 when the length is not a multiple of 16, so chunks that are multiples of 16 with a
    last chunk of at least 16 elements see the same generator states
    (``tests/test_torch_backend_measured.py`` checks it over lengths, dtypes and chunkings)."""
    if (not _plain(tensor) or tensor.device.type != "cpu" or tensor.dtype not in _DIRECT
            or not tensor.is_contiguous() or gen is None or gen.device.type != "cpu"):
        return None
    if type(dist) is Normal:
        mean, std = dist.mean, dist.std
        return lambda x: x.normal_(mean, std, generator=gen)
    if type(dist) is Uniform and dist.high - dist.low <= torch.finfo(tensor.dtype).max:
        low, high = dist.low, dist.high
        return lambda x: x.uniform_(low, high, generator=gen)
    return None


def moments_from_sums(n: int, total: float, squares: float) -> tuple[float, float] | None:
    """(mean, std) from the count, sum and sum of squares of a tensor's elements, or None when
    E[x^2] - mean^2 could cancel (mean^2 above 1e-3 of E[x^2]: constants, biased tensors; then
    the caller takes the exact chunked ``var_mean`` pass). With the sums exact to ~1e-6 relative
    (cascaded in the tensor's dtype, accumulated in float64), the std is exact to ~1e-6 / 1e-3
    relative at worst, within the report's 1e-4."""
    mean = total / n
    sq = squares / n
    if mean * mean <= 1e-3 * sq:
        return mean, max(sq - mean * mean, 0.0) ** 0.5
    if sq == 0.0:
        return 0.0, 0.0
    return None


def _plain(tensor: torch.Tensor) -> bool:
    """A plain tensor or Parameter (not a DTensor or another subclass): its storage is all of it."""
    return type(tensor) in (torch.Tensor, torch.nn.Parameter)


def constant_moments(tensor: torch.Tensor) -> tuple[float, float]:
    """``(mean, std)`` of a tensor just filled with one value: that value as the dtype rounds
    it, read back from the first element, and 0."""
    return float(tensor[(0,) * tensor.dim()]), 0.0


def part_sums(part: torch.Tensor) -> tuple[float, float]:
    """Sum and sum of squares of one chunk (a cascaded ``sum`` and a BLAS ``dot`` in its dtype):
    what every measured draw adds up per chunk, in float64."""
    return float(part.sum()), float(torch.dot(part, part))


def chunk_sums(flat: torch.Tensor, *, fill=None) -> tuple[int, float, float]:
    """``(n, sum, sum of squares)`` of a 1-D float32/float64 tensor, per ``MEASURE_CHUNK``
    elements (:func:`part_sums`) accumulated in float64. One float32 ``dot`` or ``vector_norm``
    over a whole large tensor is not exact enough for the report: over 16.7M N(0, 0.02^2) values
    the sum of squares is off by 1.5e-3 relative (vector_norm; 4.7e-3 at 38.6M), per
    2^17-element chunk by ~3e-7.

    With ``fill``, each chunk is first filled by ``fill(chunk)`` and summed while it is in cache
    (a measured draw): chunks are then multiples of 16 and the last one at least 16 long (see
    :func:`_measurable`)."""
    n = flat.numel()
    s = q = 0.0
    start = 0
    while start < n:
        stop = start + MEASURE_CHUNK
        if fill is not None and n - start < MEASURE_CHUNK + 16:
            stop = n
        part = flat[start:stop]
        if fill is not None:
            fill(part)
        ds, dq = part_sums(part)
        s, q = s + ds, q + dq
        start = stop
    return n, s, q


# ============================================================================ elementwise


def _chunks(flat: torch.Tensor):
    for start in range(0, flat.numel(), CHUNK):
        yield flat[start:start + CHUNK]


def _via_buffer(tensor: torch.Tensor, fill, work_dtype: torch.dtype) -> None:
    """Run ``fill(buffer)`` on ``work_dtype`` chunks and cast each into ``tensor``."""
    target = tensor if tensor.is_contiguous() else torch.empty_like(
        tensor, memory_format=torch.contiguous_format)
    flat = target.view(-1)
    buf = torch.empty(min(CHUNK, flat.numel()), dtype=work_dtype, device=tensor.device)
    for out in _chunks(flat):
        b = buf[:out.numel()]
        fill(b)
        out.copy_(b)
    if target is not tensor:
        tensor.copy_(target)


def _elementwise(tensor: torch.Tensor, fill) -> None:
    """Run ``fill`` in place (float32/float64) or through a float32 buffer (other dtypes)."""
    if tensor.dtype in _DIRECT:
        fill(tensor)
    else:
        _via_buffer(tensor, fill, torch.float32)


def _constant_(tensor: torch.Tensor, dist: Constant, gen) -> None:
    tensor.fill_(dist.value)


def _normal_(tensor: torch.Tensor, dist: Normal, gen) -> None:
    if tensor.is_complex():  # torch's complex normal (see _COMPLEX)
        tensor.normal_(dist.mean, dist.std, generator=gen)
        return
    _elementwise(tensor, lambda x: x.normal_(dist.mean, dist.std, generator=gen))


def _uniform_(tensor: torch.Tensor, dist: Uniform, gen) -> None:
    """torch's ``uniform_`` computes ``high - low`` in the working dtype; when that overflows but
    the bounds fit (float32 U(-3e38, 3e38)) the draw is made in float64 and cast, and when it
    overflows float64 too (U(-1e308, 1e308)) on the halved bounds, doubled. For a dtype narrower
    than float32 the draw is clipped, before the cast, into the bounds rounded *into* that dtype:
    rounding to nearest would otherwise step outside them (bfloat16 U(-0.1, 0.1) gives
    0.10009765625), and a value between two representable bounds casts between them."""
    low, high = dist.low, dist.high
    if tensor.is_complex():  # torch's: each part U(low, high) (see _COMPLEX)
        tensor.uniform_(low, high, generator=gen)
        return
    width = high - low  # a Python float: float64
    work = torch.float64 if tensor.dtype == torch.float64 else torch.float32
    clip = None
    if tensor.dtype not in _DIRECT and tensor.is_floating_point():
        lo_b, hi_b = _round_inward(min(low, high), max(low, high), tensor.dtype)
        if lo_b <= hi_b:
            clip = (lo_b, hi_b)

    def draw(lo, hi, times=1.0):
        def fill(x):
            x.uniform_(lo, hi, generator=gen)
            if times != 1.0:
                x.mul_(times)
            if clip is not None:
                x.clamp_(*clip)
        return fill

    if width <= torch.finfo(work).max:
        _elementwise(tensor, draw(low, high))
    elif math.isfinite(width):
        _via_buffer(tensor, draw(low, high), torch.float64)
    else:
        _via_buffer(tensor, draw(0.5 * low, 0.5 * high, 2.0), torch.float64)


def _round_inward(a: float, b: float, dtype: torch.dtype) -> tuple[float, float]:
    """[a, b] shrunk to the nearest values representable in ``dtype`` (lo >= a, hi <= b)."""
    if dtype.itemsize == 1:  # float8: no nextafter kernel; search its 256 values instead
        grid = torch.arange(256, dtype=torch.uint8).view(dtype).double()
        grid = grid[torch.isfinite(grid)].unique()  # sorted
        i = int(torch.searchsorted(grid, a))               # first value >= a
        j = int(torch.searchsorted(grid, b, right=True)) - 1  # last value <= b
        return (grid[i].item() if i < grid.numel() else math.inf,
                grid[j].item() if j >= 0 else -math.inf)
    lo_t = torch.tensor(a, dtype=torch.float64).to(dtype)
    hi_t = torch.tensor(b, dtype=torch.float64).to(dtype)
    if lo_t.double().item() < a:
        lo_t = torch.nextafter(lo_t, torch.tensor(math.inf, dtype=dtype))
    if hi_t.double().item() > b:
        hi_t = torch.nextafter(hi_t, torch.tensor(-math.inf, dtype=dtype))
    return lo_t.double().item(), hi_t.double().item()


def _phi(x: float) -> float:
    """Standard normal CDF, accurate in the lower tail (x << 0)."""
    return 0.5 * math.erfc(-x / _SQRT2)


def _truncated_normal_(tensor: torch.Tensor, dist: TruncatedNormal, gen) -> None:
    """N(mean, std^2) conditioned on [a, b] by inverse CDF (see the module docstring)."""
    out_dtype = tensor.dtype
    lo_b, hi_b = _round_inward(dist.a, dist.b, out_dtype)
    if lo_b > hi_b:  # no representable value in [a, b]: the nearest one to the interval
        tensor.fill_(dist.a)
        return
    if dist.std == 0:
        tensor.fill_(min(max(dist.mean, lo_b), hi_b))
        return
    alpha = (dist.a - dist.mean) / dist.std
    beta = (dist.b - dist.mean) / dist.std
    scale = _SQRT2 * dist.std  # x = mean + scale * erfinv(t)
    if alpha > 0:  # mirror to the lower tail: sample -x on [-beta, -alpha]
        alpha, beta, scale = -beta, -alpha, -scale
    work = torch.float64 if out_dtype == torch.float64 else torch.float32
    t_max = _T_MAX[work]
    t_lo = max(math.erf(alpha / _SQRT2), -t_max)
    t_hi = min(math.erf(beta / _SQRT2), t_max)
    mean = dist.mean

    if t_hi - t_lo >= _T_MIN_WIDTH:
        def fill(x):
            x.uniform_(t_lo, t_hi, generator=gen).erfinv_().mul_(scale)
            if mean != 0:
                x.add_(mean)
            x.clamp_(lo_b, hi_b)

        if out_dtype in _DIRECT:
            fill(tensor)
        else:
            _via_buffer(tensor, fill, torch.float32)
        return

    # Far-tail interval: float64 u-space, u = Phi(x) in [Phi(alpha), Phi(beta)] (alpha < 0 after
    # mirroring, so Phi keeps full relative precision), x = ndtri(u).
    u_lo, u_hi = _phi(alpha), _phi(beta)
    std_signed = scale / _SQRT2

    def fill64(x):
        x.uniform_(u_lo, u_hi, generator=gen)
        torch.special.ndtri(x, out=x)
        x.mul_(std_signed).add_(mean).clamp_(lo_b, hi_b)

    _via_buffer(tensor, fill64, torch.float64)


# ============================================================================ structured


def _torch_view(tensor: torch.Tensor, layout: str) -> torch.Tensor:
    """A view of ``tensor`` (stored in ``layout``) in torch layout ``(out, in, *kernel)``."""
    axes = torch_axes_to(layout, tensor.dim())
    if axes is None:
        return tensor
    inverse = [0] * len(axes)
    for i, p in enumerate(axes):
        inverse[p] = i
    return tensor.permute(*inverse)


def _work_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def haar_orthogonal(rows: int, cols: int, *, generator=None, dtype=torch.float32,
                    device=None, method: str = DEFAULT_ORTHOGONAL_METHOD) -> torch.Tensor:
    """A Haar-distributed ``(rows, cols)`` matrix with orthonormal rows (rows <= cols) or columns.

    Like ``torch.nn.init.orthogonal_``, a wide matrix is drawn as the transpose of a tall one
    (n x m, n >= m: the first m columns of a Haar O(n) matrix).

    * ``"qr"``: Q of a Gaussian n x m matrix, column j times sign(R[j, j]) (Mezzadri 2007).
    * ``"householder"``: Stewart 1980; column j of a Gaussian matrix below the diagonal,
      v = G[j:, j], is the j-th Householder vector's source: beta_j = -sign(v_0) |v|,
      tau_j = (beta_j - v_0) / beta_j, reflector w = v / (v_0 - beta_j) (LAPACK's dlarfg);
      Q = householder_product(W, tau), column j times sign(beta_j) = sign(R[j, j]).
      Same distribution as ``"qr"`` at about half the flops (no factorization).
    * ``"svd"``: U of the thin SVD of a Gaussian matrix, columns times independent random signs
      (without them U is not Haar: LAPACK fixes the signs deterministically).
    """
    transpose = rows < cols
    m = min(rows, cols)
    # drawn as (rows, cols) and transposed, as torch does, so "qr" reproduces torch's stream
    g = torch.empty((rows, cols), dtype=dtype, device=device).normal_(0.0, 1.0, generator=generator)
    if transpose:
        g = g.t()
    if method == "qr":
        q, r = torch.linalg.qr(g)
        d = torch.diagonal(r).sign()
        d[d == 0] = 1.0
        q.mul_(d)
    elif method == "householder":
        g.tril_()
        v0 = torch.diagonal(g).clone()
        s = torch.where(v0 >= 0, 1.0, -1.0).to(dtype)
        beta = -s * torch.linalg.vector_norm(g, dim=0)  # R[j, j]
        tau = (beta - v0) / beta
        g.div_(v0 - beta)  # the diagonal (implicitly 1) and upper part are ignored
        q = torch.linalg.householder_product(g, tau)
        q.mul_(torch.where(beta >= 0, 1.0, -1.0).to(dtype))
    elif method == "svd":
        u, _, _ = torch.linalg.svd(g, full_matrices=False)
        signs = torch.randint(0, 2, (m,), generator=generator, device=device).to(dtype)
        q = u.mul_(signs.mul_(2).sub_(1))
    else:
        check_choice(method, "method", ORTHOGONAL_METHODS)
    return q.t() if transpose else q


def _orthogonal_(view: torch.Tensor, dist: Orthogonal, gen) -> None:
    rows = view.shape[0]
    cols = view.numel() // rows
    q = haar_orthogonal(rows, cols, generator=gen, dtype=_work_dtype(view.dtype),
                        device=view.device, method=dist.method)
    if dist.gain != 1:
        q.mul_(dist.gain)
    view.copy_(q.reshape(view.shape))


def _eye_(view: torch.Tensor, dist: Eye, gen) -> None:
    view.zero_()
    view.diagonal().fill_(dist.gain)


def _dirac_(view: torch.Tensor, dist: Dirac, gen) -> None:
    shape = tuple(view.shape)
    view.zero_()
    per_group = shape[0] // dist.groups
    d = torch.arange(min(per_group, shape[1]), device=view.device)
    rows = (torch.arange(dist.groups, device=view.device)[:, None] * per_group + d).reshape(-1)
    cols = d.repeat(dist.groups)
    index: tuple[torch.Tensor | int, ...] = (rows, cols, *kernel_centre(shape))
    view[index] = torch.tensor(dist.gain).to(view.dtype)


def _at_centre_(view: torch.Tensor, m: torch.Tensor) -> None:
    """``view`` (a conv kernel) as a delta kernel: zeros, the ``(out, in)`` matrix ``m`` at the
    centre tap."""
    view.zero_()
    centre: tuple[slice | int, ...] = (slice(None), slice(None), *kernel_centre(tuple(view.shape)))
    view[centre] = m


def _delta_orthogonal_(view: torch.Tensor, dist: DeltaOrthogonal, gen) -> None:
    shape = tuple(view.shape)
    q = haar_orthogonal(shape[0], shape[1], generator=gen, dtype=_work_dtype(view.dtype),
                        device=view.device)
    _at_centre_(view, q.mul_(dist.gain))


def _looks_linear_(view: torch.Tensor, dist: LooksLinear, gen) -> None:
    rows, cols = looks_linear_block(tuple(view.shape), dist.position)
    q = haar_orthogonal(rows, cols, generator=gen, dtype=_work_dtype(view.dtype),
                        device=view.device, method=dist.method)
    signs = torch.tensor(dist.signs, dtype=q.dtype, device=view.device)
    q.mul_(dist.gain)
    # kron(signs, q) by broadcasting: torch.kron views its operands, which fails on the odd
    # strides QR can leave on a one-column block
    m = (signs[:, None, :, None] * q[None, :, None, :]).reshape(
        signs.shape[0] * rows, signs.shape[1] * cols)
    if view.dim() == 2:
        view.copy_(m)
    else:
        _at_centre_(view, m)  # a conv kernel: a delta kernel


def _random_subsets(n_sets: int, size: int, k: int, gen, device) -> torch.Tensor:
    """``(n_sets, k)`` indices: for each set, k distinct positions of ``range(size)`` drawn
    uniformly (the k smallest of iid U(0, 1) float64 keys: a uniform random k-subset)."""
    keys = torch.empty((n_sets, size), dtype=torch.float64, device=device)
    keys.uniform_(0.0, 1.0, generator=gen)
    return torch.topk(keys, k, dim=1, largest=False, sorted=False).indices


def _sparse_(view: torch.Tensor, dist: Sparse, gen) -> None:
    """torch ``sparse_``: N(0, std^2), then ceil(sparsity * rows) zeros per column, the zero
    positions drawn from ``gen`` too (torch's ignore it, pytorch issue 98200), all columns at
    once."""
    rows, cols = view.shape
    n_zero = int(math.ceil(dist.sparsity * rows))
    work = view.dtype if view.is_complex() else _work_dtype(view.dtype)  # complex: torch's
    tmp = torch.empty((cols, rows), dtype=work, device=view.device)
    tmp.normal_(0.0, dist.std, generator=gen)
    if n_zero:
        tmp.scatter_(1, _random_subsets(cols, rows, n_zero, gen, view.device), 0.0)
    view.copy_(tmp.t())


def _martens_sparse_(view: torch.Tensor, dist: MartensSparse, gen) -> None:
    """Martens 2010: each row (unit) gets exactly k nonzero N(0, std^2) incoming weights."""
    rows = view.shape[0]
    cols = view.numel() // rows
    idx = _random_subsets(rows, cols, dist.k, gen, view.device)
    vals = torch.empty((rows, dist.k), dtype=_work_dtype(view.dtype), device=view.device)
    vals.normal_(0.0, dist.std, generator=gen)
    tmp = torch.zeros((rows, cols), dtype=vals.dtype, device=view.device)
    tmp.scatter_(1, idx, vals)
    view.copy_(tmp.reshape(view.shape))


def _row_(view: torch.Tensor, dist: RowDistribution, gen) -> None:
    """A deterministic kind that is one float64 row (``dist.row``, the NumPy reference's values
    bit for bit) repeated along the last axis."""
    row = torch.from_numpy(dist.row(view.shape[-1])).to(view.device)
    view.copy_(row.expand(view.shape))


def _time_step_bias_(tensor: torch.Tensor, dist: TimeStepBias, gen) -> None:
    """One U(0, 1) float64 draw per element (``uniform_`` from ``gen``), mapped as
    :meth:`TimeStepBias.from_unit`, in float64, then written in the tensor's dtype."""
    lo, hi = math.log(dist.dt_min), math.log(dist.dt_max)
    u = torch.empty(tensor.shape, dtype=torch.float64, device=tensor.device)
    u.uniform_(0.0, 1.0, generator=gen)
    dt = u.mul_(hi - lo).add_(lo).exp_().clamp_(min=dist.floor)
    tensor.copy_(dt + torch.log(-torch.expm1(-dt)))


def _decay_rate_log_(tensor: torch.Tensor, dist: DecayRateLog, gen) -> None:
    """One U(0, 1) float64 draw per element (``uniform_`` from ``gen``), mapped as
    :meth:`DecayRateLog.from_unit`, in float64, then written in the tensor's dtype."""
    u = torch.empty(tensor.shape, dtype=torch.float64, device=tensor.device)
    u.uniform_(0.0, 1.0, generator=gen)
    tensor.copy_(u.mul_(dist.high - dist.low).add_(dist.low).log_())


def _recurrence_radius_(tensor: torch.Tensor, dist: RecurrenceRadius, gen) -> None:
    """One U(0, 1) float64 draw per element (``uniform_`` from ``gen``), mapped as
    :meth:`RecurrenceRadius.from_unit`, in float64, then written in the tensor's dtype."""
    u = torch.empty(tensor.shape, dtype=torch.float64, device=tensor.device)
    u.uniform_(0.0, 1.0, generator=gen)
    lo2, hi2 = dist.min_rad ** 2, dist.max_rad ** 2
    sp = u.mul_(hi2 - lo2).add_(lo2).log_().mul_(-0.5)   # -log a
    tensor.copy_(sp + torch.log(-torch.expm1(-sp)))


_COMPLEX_KINDS = (Normal, Uniform, Sparse)  # the kinds a complex tensor takes (see _COMPLEX)

# One sampler per distribution kind: ``sampler(tensor, dist, generator)`` fills in place (for
# structured kinds ``tensor`` is the torch-layout view). ``draw_`` is its only caller.
SAMPLERS: dict[type[Distribution], Callable[..., None]] = {
    Constant: _constant_, Normal: _normal_, Uniform: _uniform_,
    TruncatedNormal: _truncated_normal_, Orthogonal: _orthogonal_, Eye: _eye_, Dirac: _dirac_,
    DeltaOrthogonal: _delta_orthogonal_, Sparse: _sparse_, MartensSparse: _martens_sparse_,
    LooksLinear: _looks_linear_, S4DReal: _row_, TimeStepBias: _time_step_bias_,
    DecayRateLog: _decay_rate_log_, RecurrenceRadius: _recurrence_radius_,
    Linspace: _row_, Cycle: _row_,
}
