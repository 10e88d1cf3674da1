"""Stream ``"philox4x64-10-u32-erfinv-v2"``: the counter stream in torch tensor ops, on the
tensor's own device.

* **Key** as in v1: ``key = stable_u64(seed, canonical_param_name(name))``, Philox key
  ``(key, 0)``.
* **Bits.** Philox4x64-10 (Salmon et al., SC 2011) word ``j`` is word ``j % 4`` of the cipher
  block at counter ``j // 4 + 1`` (NumPy's ``Philox`` convention, so v1 and v2 share their words).
  Element ``i`` owns the 32-bit half ``b_i = (w_{i // 2} >> (32 * (i % 2))) & 0xFFFFFFFF`` (the
  low half for even ``i``): half a word per element, twice as many elements per cipher call as
  v1. The bits of element ``i`` depend on ``(key, i)`` only.
* **Transforms** use the top 24 bits: ``s = b_i >> 8`` read as a *signed* 24-bit integer
  (``-2**23 <= s < 2**23``), in the compute dtype ``c`` (float32 for float32 / bf16 / fp16
  tensors, float64 for float64 tensors); every step is one IEEE operation, rounded in ``c``:

  - uniform on ``[low, high)``: ``x = s * (span / 2**24) + (low + span / 2)``
    (``span = high - low``; the two constants are rounded to ``c`` first), clipped into
    ``[low, high]`` rounded into the target dtype;
  - normal: ``y = s * 2**-23 + 2**-24`` (exact: the odd multiples of ``2**-24`` in (-1, 1)),
    ``x = erfinv(y) * (sqrt(2) * std) + mean``; the largest |z| is
    ``sqrt(2) * erfinv(1 - 2**-24) = 5.42``;
  - truncated normal on standardized ``[alpha, beta]``: ``ya, yb = erf(alpha / sqrt 2),
    erf(beta / sqrt 2)`` (float64, on the host), ``y = s * ((yb - ya) / 2**24) + ((ya + yb) / 2
    + (yb - ya) / 2**25)``, ``x = erfinv(y) * (sqrt(2) * std) + mean``, clipped into ``[a, b]``
    rounded into the target dtype.
    When float32 would space the values at the interval's outer end more than
    ``(beta - alpha) * 2**-16`` apart (far-tail or very narrow intervals), ``c`` is float64 for
    that distribution whatever the tensor's dtype.

  The result is then cast to the tensor's dtype (round to nearest even).
* **Devices.** On CPU the words come from the compiled extension ``initlab.scale._philox``
  when it was built at install, else from NumPy's C Philox (the same words bit for bit, see
  :func:`initlab.scale.words_backend`; both release the GIL; one reader per worker), and with
  the extension its fused kernels compute the words and the float32 steps around ``erfinv``
  (:class:`CpuTransform`: the same values bit for bit); on any
  other device (CUDA, ...) they are computed by the integer tensor ops of
  :func:`philox_words_torch` on that device, with no host work beyond launching kernels. Both
  give the same words bit for bit (tested on CPU). Uniform values are the same bit for bit on
  every device (two IEEE float operations, no fused multiply-add: separate kernels); normal and
  truncated-normal values go through ``erfinv`` (and ``erf`` for the interval's ends, computed
  once on the host), whose implementation differs between devices: see ``docs/scale.md``.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import torch
from scipy import special

from ..core.distributions import Constant, Distribution, Normal, TruncatedNormal, Uniform
from ..core.validation import fail
from .counter import V2, _Words

__all__ = ["V2", "BitReader", "compute_dtype", "halves", "philox_words_torch", "transform"]

_M32 = 0xFFFFFFFF
_PHILOX_M = (0xD2E7470EE14C6C93, 0xCA5A826395121157)
_PHILOX_W = (0x9E3779B97F4A7C15, 0xBB67AE8584CAA73B)
_LITTLE = sys.byteorder == "little"


def _s64(v: int) -> int:
    """A uint64 value as the int64 with the same bits (torch scalars must fit int64)."""
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >= 1 << 63 else v


def _mulhilo64(a: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """High and low 64 bits of the 128-bit product ``a * m`` (``a`` int64 holding uint64 bits),
    from four 32 x 32 -> 64 partial products (int64 ops wrap modulo 2**64)."""
    m_lo, m_hi = m & _M32, m >> 32
    a_lo = a & _M32
    a_hi = (a >> 32) & _M32
    ll = a_lo * m_lo
    lh = a_lo * m_hi
    hl = a_hi * m_lo
    hh = a_hi * m_hi
    mid = ((ll >> 32) & _M32) + (lh & _M32) + (hl & _M32)
    hi = hh + ((lh >> 32) & _M32) + ((hl >> 32) & _M32) + (mid >> 32)
    return hi, a * _s64(m)


def philox_words_torch(key: int, start: int, count: int, device) -> torch.Tensor:
    """Words ``start .. start + count - 1`` of the Philox4x64-10 stream keyed ``(key, 0)``, as
    an int64 tensor (uint64 bits) on ``device``, by integer tensor ops: the same words as NumPy's
    ``Philox`` (word ``j``: counter ``j // 4 + 1``, position ``j % 4``)."""
    if count == 0:
        return torch.empty(0, dtype=torch.int64, device=device)
    b0, b1 = start // 4, (start + count - 1) // 4
    x0 = torch.arange(b0 + 1, b1 + 2, dtype=torch.int64, device=device)
    x1 = torch.zeros_like(x0)
    x2 = torch.zeros_like(x0)
    x3 = torch.zeros_like(x0)
    k0, k1 = key & ((1 << 64) - 1), 0
    for r in range(10):
        if r:
            k0 = (k0 + _PHILOX_W[0]) & ((1 << 64) - 1)
            k1 = (k1 + _PHILOX_W[1]) & ((1 << 64) - 1)
        hi0, lo0 = _mulhilo64(x0, _PHILOX_M[0])
        hi1, lo1 = _mulhilo64(x2, _PHILOX_M[1])
        x0, x1, x2, x3 = hi1 ^ x1 ^ _s64(k0), lo1, hi0 ^ x3 ^ _s64(k1), lo0
    w = torch.stack([x0, x1, x2, x3], dim=1).view(-1)
    off = start - 4 * b0
    return w[off:off + count]


def halves(words: torch.Tensor) -> torch.Tensor:
    """The 32-bit halves of int64 words as int32, low half first: element ``2j`` is the low
    half of word ``j``, element ``2j + 1`` the high half."""
    if _LITTLE:
        return words.view(torch.int32)
    lo = (words & _M32).to(torch.int32)  # pragma: no cover - big-endian hosts
    hi = ((words >> 32) & _M32).to(torch.int32)  # pragma: no cover
    return torch.stack([lo, hi], dim=1).view(-1)  # pragma: no cover


class BitReader:
    """Element bits (int32, one 32-bit half-word per element) of one key's v2 stream on one
    device; one instance per worker thread (on CPU it holds a :class:`~initlab.scale.counter.
    _Words` reader, compiled or NumPy words as :func:`~initlab.scale.words_backend` chose)."""

    def __init__(self, key: int, device):
        self.key = key
        self.device = torch.device(device)
        self._np = None
        if self.device.type == "cpu":
            self._np = _Words(key)

    def words(self, start: int, count: int) -> torch.Tensor:
        if self._np is not None:
            return torch.from_numpy(self._np.read(start, count).view(np.int64))
        return philox_words_torch(self.key, start, count, self.device)

    def read(self, start: int, count: int) -> torch.Tensor:
        """int32 bits of elements ``start .. start + count - 1``."""
        w0 = start // 2
        nw = (start + count + 1) // 2 - w0
        h = halves(self.words(w0, nw))
        off = start - 2 * w0
        return h[off:off + count]


# ---------------------------------------------------------------------------------- transforms
_SQRT2 = math.sqrt(2.0)


def compute_dtype(dist: Distribution, dtype: torch.dtype) -> torch.dtype:
    """The dtype the v2 transform of ``dist`` is evaluated in for a tensor of ``dtype``."""
    if dtype == torch.float64:
        return torch.float64
    if isinstance(dist, TruncatedNormal) and dist.std > 0 and _needs_f64(*_std_bounds(dist)):
        return torch.float64
    return torch.float32


def _std_bounds(d: TruncatedNormal) -> tuple[float, float]:
    return (d.a - d.mean) / d.std, (d.b - d.mean) / d.std


def _y_affine(dist: Uniform | TruncatedNormal) -> tuple[float, float]:
    """``(c1, c2)`` of the stream's first affine step ``y = s * c1 + c2``: the value itself for
    a uniform, the point in erf space for a truncated normal (see the module docstring). The
    generic :func:`transform` and :class:`CpuTransform` both take them from here."""
    if isinstance(dist, Uniform):
        span = dist.high - dist.low
        return span * 2.0**-24, dist.low + span / 2
    alpha, beta = _std_bounds(dist)
    ya, yb = float(special.erf(alpha / _SQRT2)), float(special.erf(beta / _SQRT2))
    return (yb - ya) * 2.0**-24, (ya + yb) / 2 + (yb - ya) * 2.0**-25


def _fill_value(dist: Constant | TruncatedNormal) -> float:
    """The one value of a constant, or of a truncated normal with std 0 (its mean clipped)."""
    if isinstance(dist, TruncatedNormal):
        return min(max(dist.mean, dist.a), dist.b)
    return float(dist.value)


def _needs_f64(alpha: float, beta: float) -> bool:
    """True when float32's grid of ``y = erf(z / sqrt 2)`` would space the values at the
    interval's outer end more than ``(beta - alpha) * 2**-16`` apart."""
    zmax = max(abs(alpha), abs(beta))
    ymax = float(special.erf(zmax / _SQRT2))
    if ymax >= 1.0:
        return True
    dy = float(np.spacing(np.float32(ymax)))
    # dz/dy = sqrt(pi / 2) * exp(z**2 / 2)
    dz = dy * math.sqrt(math.pi / 2) * math.exp(min(zmax * zmax / 2, 700.0))
    return dz > (beta - alpha) * 2.0**-16


def transform(dist: Distribution, bits: torch.Tensor, cdt: torch.dtype,
              out: torch.Tensor | None = None) -> torch.Tensor:
    """Values of the elementwise ``dist`` for int32 element ``bits``, in dtype ``cdt`` (see the
    module docstring). ``out`` (dtype ``cdt``, same size) receives the result if given."""
    s = bits >> 8  # arithmetic shift: the top 24 bits as a signed integer
    if isinstance(dist, Uniform):
        c1, c2 = _y_affine(dist)
        return _add(_scaled(s, c1, cdt), c2, out)
    if isinstance(dist, Normal):
        x = _scaled(s, 2.0**-23, cdt).add_(2.0**-24)
        torch.erfinv(x, out=x)
        return _scale_shift(x, _SQRT2 * dist.std, dist.mean, out)
    if isinstance(dist, Constant) or (isinstance(dist, TruncatedNormal) and dist.std == 0):
        return (out if out is not None else torch.empty(s.shape, dtype=cdt,
                                                        device=s.device)).fill_(_fill_value(dist))
    if isinstance(dist, TruncatedNormal):
        c1, c2 = _y_affine(dist)
        x = _scaled(s, c1, cdt).add_(c2)
        torch.erfinv(x, out=x)
        # the caller clips into [a, b] rounded into the dtype
        return _scale_shift(x, _SQRT2 * dist.std, dist.mean, out)
    raise fail("dist", "must be an elementwise distribution (Constant, Normal, Uniform, "
               "TruncatedNormal) for the counter stream", type(dist).__name__,
               "structured kinds (Orthogonal, ...) go through `structured_block`.")


def _scaled(s: torch.Tensor, c: float, cdt: torch.dtype) -> torch.Tensor:
    """``float(s) * c`` rounded in ``cdt`` (``s`` is exact in float32: 24 bits)."""
    if cdt == torch.float32:
        # int32 -> float32 and the product in one pass; a 0-dim float32 operand fixes the
        # result dtype (a Python float would give torch.get_default_dtype())
        return torch.mul(s, torch.tensor(c, dtype=torch.float32))
    return s.to(cdt).mul_(c)


def _scale_shift(x: torch.Tensor, a: float, c: float, out: torch.Tensor | None) -> torch.Tensor:
    """``x * a + c`` (two roundings; the product written straight into ``out`` if given)."""
    if out is None:
        x.mul_(a)
        return x.add_(c) if c != 0 else x
    torch.mul(x, a, out=out)
    return out.add_(c) if c != 0 else out


def _add(x: torch.Tensor, c: float, out: torch.Tensor | None) -> torch.Tensor:
    if out is None:
        return x.add_(c) if c != 0 else x
    if c != 0:
        return torch.add(x, c, out=out)
    return out.copy_(x)


# ------------------------------------------------------------------------- the CPU fast path
class CpuTransform:
    """v2's float32 transforms on CPU with fewer passes and no per-chunk allocation: the same
    values as :func:`transform` bit for bit (tested over every distribution and dtype).

    One instance per worker thread. ``__call__(bits, dst)`` writes the chunk's values, clipped
    into ``lo_hi`` and cast to ``dst``'s dtype, into ``dst`` (a contiguous CPU tensor);
    :meth:`from_stream` does the same from the stream itself (no bits tensor) and exists when
    the compiled kernels are in use (``fused``). Float steps run in float32 on ``dst`` itself when
    it is float32, else on a float32 buffer reused across chunks and then cast by ``copy_``.

    Two implementations, chosen by :func:`~initlab.scale.counter.compiled_kernels` (the words'
    backend):

    * **compiled** (``fused``): the extension's ``v2_y`` computes the words and the first affine
      step in one pass that stays in L1, then ``torch.erfinv`` (normal / truncated normal), then
      its ``finish`` does the last multiply, add and clip in one pass: three passes over the chunk
      instead of about nine. Each float step is still one IEEE float32 operation (no fused
      multiply-add), with the constants rounded to float32 as torch rounds a Python scalar.
    * **torch ops**: the integer steps in place on ``bits`` (NumPy ufuncs, ~1 us per call
      against torch's ~4 us dispatch), the float steps in torch ops.

    What makes the values equal to :func:`transform`'s:

    * the normal's ``y = s * 2**-23 + 2**-24`` is ``float((b >> 7) | 1) * 2**-24``
      (``(b >> 7) | 1 = 2 s + 1``, and both products are exact);
    * the int -> float conversion of ``s`` (24 bits) is exact, so converting first and then
      multiplying by the float32 constant rounds once, as the fused ``int * float`` does;
    * for a bf16/fp16 ``dst`` the float32 value is clipped and cast by ``copy_``, as before.
    """

    def __init__(self, dist: Distribution, dtype: torch.dtype,
                 lo_hi: tuple[float, float] | None, chunk: int):
        from .counter import compiled_kernels

        self.dist, self.lo_hi = dist, lo_hi
        self.kind = type(dist).__name__
        self._c = compiled_kernels()
        self.fused = self._c is not None
        self._buf = None if dtype == torch.float32 else torch.empty(chunk, dtype=torch.float32)
        self.a = self.mean = None
        if isinstance(dist, Uniform):
            self.c1, self.c2 = _y_affine(dist)
            self._mode, self._add = 1, self.c2 != 0
        elif isinstance(dist, Normal):
            self.a, self.mean = _SQRT2 * dist.std, dist.mean
            self.c1 = self.c2 = 0.0
            self._mode, self._add = 0, False
        elif isinstance(dist, TruncatedNormal) and dist.std > 0:
            self.c1, self.c2 = _y_affine(dist)
            self.a, self.mean = _SQRT2 * dist.std, dist.mean
            self._mode, self._add = 1, True
        else:
            assert isinstance(dist, (Constant, TruncatedNormal))  # the rest of `applies`' kinds
            self.kind = "fill"
            self.value = _fill_value(dist)
        if self.kind != "fill":
            # the last steps, as _finish does them: multiply (normal kinds), add, clip
            flags = 0
            if self.a is not None:
                flags |= 1
                if self.mean != 0:
                    flags |= 2
            if lo_hi is not None:
                flags |= 4
            self._flags = flags
            self._lo, self._hi = lo_hi if lo_hi is not None else (0.0, 0.0)

    @staticmethod
    def applies(dist: Distribution, cdt: torch.dtype, device: torch.device) -> bool:
        return device.type == "cpu" and cdt == torch.float32 and isinstance(
            dist, (Normal, Uniform, TruncatedNormal, Constant))

    def _y(self, dst: torch.Tensor) -> torch.Tensor:
        return dst if self._buf is None else self._buf[:dst.numel()]

    def from_stream(self, key: int, start: int, dst: torch.Tensor) -> None:
        """The chunk of global elements ``start .. start + dst.numel() - 1`` of ``key``'s
        stream into ``dst`` (compiled kernels only: ``fused``)."""
        if self.kind == "fill":
            dst.fill_(self.value)
            return
        y = self._y(dst)
        self._c.v2_y(y.detach().numpy(), key, start, self._mode, self.c1, self.c2, self._add)
        self._compiled_finish(y, dst)

    def _compiled_finish(self, y: torch.Tensor, dst: torch.Tensor) -> None:
        if self.kind != "Uniform":
            torch.erfinv(y, out=y)
        if self._flags:
            self._c.finish(y.detach().numpy(), self._flags, self.a or 0.0, self.mean or 0.0,
                           self._lo, self._hi)
        if y is not dst:
            dst.copy_(y)

    def __call__(self, bits: torch.Tensor, dst: torch.Tensor) -> None:
        if self.kind == "fill":
            dst.fill_(self.value)
            return
        y = self._y(dst)
        if self._c is not None:
            self._c.bits_y(bits.numpy(), y.detach().numpy(), self._mode, self.c1, self.c2,
                           self._add)
            self._compiled_finish(y, dst)
            return
        b = bits.numpy()
        if self.kind == "Normal":
            np.right_shift(b, 7, out=b)
            np.bitwise_or(b, 1, out=b)  # 2 s + 1
            y.copy_(bits)
            y.mul_(2.0**-24)
        else:
            np.right_shift(b, 8, out=b)  # s
            y.copy_(bits)
            y.mul_(self.c1)
            if self.kind == "Uniform":
                self._finish(y, dst, None, self.c2)
                return
            y.add_(self.c2)
        torch.erfinv(y, out=y)
        self._finish(y, dst, self.a, self.mean)

    def _finish(self, y: torch.Tensor, dst: torch.Tensor, a, c) -> None:
        """``dst = clip(y * a + c)`` (each step rounded in float32, ``a = None``: no product),
        in place on ``y``, then cast into ``dst`` if ``y`` is the buffer (``copy_`` from the
        cache-resident buffer: measured 0.35 ns per element against 0.43-0.64 for the op's own
        output cast into a bf16 ``out=``)."""
        if a is not None:
            y.mul_(a)
        if c != 0:
            y.add_(c)
        if self.lo_hi is not None:
            y.clamp_(*self.lo_hi)
        if y is not dst:
            dst.copy_(y)
