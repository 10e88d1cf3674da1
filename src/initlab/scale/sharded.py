"""Fill torch tensors, DTensor shards and FSDP2 shards from the counter stream.

Each rank computes only its own block of the global tensor, from the block's global offsets, so
the gathered tensor is the same bit for bit for every sharding (Shard(0), Shard(1), uneven
shards, Replicate, 2-D meshes), every number of ranks and every thread count, and no collective
is needed. See ``docs/scale.md`` for the guarantees and their limits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from ..core.distributions import Constant, Distribution
from ..core.fans import to_torch_shape
from ..core.initializer import Initializer
from ..core.validation import InitlabTypeError, error_message, fail
from ..util.dtensor import is_dtensor
from .counter import (
    ELEMENTWISE,
    V1,
    _check_chunk,
    block_runs,
    bounds,
    check_block,
    check_stream,
    resolve_threads,
    run_chunks,
    run_spans,
    stream_key,
    structured_block,
)


# ---------------------------------------------------------------------------------- layouts
def _placement_kind(p) -> str:
    """'shard' / 'replicate' for the placements we support; an error for the others."""
    from torch.distributed.tensor import Partial, Replicate, Shard

    name = type(p).__name__
    if isinstance(p, Replicate):
        return "replicate"
    if isinstance(p, Shard) and name == "Shard":
        return "shard"
    if isinstance(p, Partial):
        raise fail("placements", "contains Partial, whose local tensors are summands rather "
                   "than slices of the parameter, so a shard has no global offset", p,
                   "initialize the parameter with Shard/Replicate placements and redistribute "
                   "afterwards.")
    raise fail("placements", "may only contain Shard(dim) and Replicate() (strided shards "
               "such as _StridedShard are not contiguous blocks of the global tensor)", p,
               "initialize with Shard/Replicate placements and redistribute afterwards, or file "
               "an issue with your mesh.")


def shard_layout(global_shape: Sequence[int], placements: Sequence, mesh_shape: Sequence[int],
                 coordinate: Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(local_shape, global_offsets)`` of the shard at ``coordinate`` of a device mesh.

    Placements are applied left to right over the mesh dimensions, each ``Shard(d)`` splitting
    the current extent ``L`` of tensor dim ``d`` like ``torch.chunk``: chunks of
    ``ceil(L / n)``, the last ones shorter or empty (torch.distributed.tensor's rule; see
    ``compute_local_shape_and_global_offset``). ``Replicate`` leaves the extent unchanged.
    Pure arithmetic: needs no process group. Empty shards report offset ``global_shape[d]``.
    """
    g = tuple(int(x) for x in global_shape)
    placements = list(placements)
    mesh_shape = tuple(int(x) for x in mesh_shape)
    coordinate = tuple(int(x) for x in coordinate)
    if not (len(placements) == len(mesh_shape) == len(coordinate)):
        raise fail("placements", f"must have one entry per mesh dimension (mesh shape "
                   f"{mesh_shape}, coordinate {coordinate})", placements,
                   "pass one placement per mesh dimension, e.g. (Shard(0), Replicate()) on a "
                   "2-D mesh.")
    local, offs = list(g), [0] * len(g)
    for p, n, c in zip(placements, mesh_shape, coordinate):
        if not 0 <= c < n:
            raise fail("coordinate", f"must lie inside the mesh shape {mesh_shape}", coordinate,
                       "pass this rank's coordinate on the mesh.")
        if _placement_kind(p) == "replicate":
            continue
        d = p.dim
        if not 0 <= d < len(g):
            raise fail("placements", f"shards dim {d}, which a tensor of shape {g} does not "
                       "have", p, f"shard a dim in 0..{len(g) - 1} (or Replicate).")
        size = local[d]
        chunk = -(-size // n)
        start = min(c * chunk, size)
        local[d] = max(0, min(size, start + chunk) - start)
        offs[d] += start
    offs = [o if s else gd for o, s, gd in zip(offs, local, g)]
    return tuple(local), tuple(offs)


def require_process_group(what: str) -> None:
    """Raise the standard error when torch.distributed has no default process group."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        raise fail("process group", f"must be initialized to {what}", "not initialized",
                   "call torch.distributed.init_process_group(...) first (e.g. under torchrun), "
                   "or pass `offsets=` / `coordinate=` explicitly.")


def dtensor_layout(t) -> tuple[tuple[int, ...], tuple[int, ...], torch.Tensor]:
    """``(global_shape, global_offsets, local_tensor)`` of a DTensor on this rank.

    Uses ``torch.distributed.tensor._utils.compute_local_shape_and_global_offset`` and checks it
    against :func:`shard_layout` and against the local tensor's actual shape.
    """
    from torch.distributed.tensor._utils import compute_local_shape_and_global_offset

    require_process_group("initialize a DTensor shard")
    mesh, placements = t.device_mesh, tuple(t.placements)
    for p in placements:
        _placement_kind(p)
    g = tuple(t.shape)
    with torch.no_grad():
        local = t.to_local()
    coord = mesh.get_coordinate()
    if coord is None:  # this rank holds no part of the tensor
        return g, (0,) * len(g), local
    shape, offs = compute_local_shape_and_global_offset(g, mesh, placements)
    mine = shard_layout(g, placements, tuple(mesh.shape), coord)
    if tuple(local.shape) != tuple(shape) or tuple(shape) != mine[0]:
        raise fail("tensor", f"has a local shard of shape {tuple(local.shape)}, but its "
                   f"placements {placements} on mesh {tuple(mesh.shape)} give {tuple(shape)} "
                   f"(initlab derives {mine[0]})", tuple(g),
                   "the local tensor must be the unpadded torch.chunk-style shard; "
                   "redistribute the parameter or file an issue.")
    offs = tuple(o if s else gd for o, s, gd in zip(offs, shape, g))
    return g, offs, local


def _rank_coordinate(mesh_shape: Sequence[int]) -> tuple[int, ...]:
    """This rank's coordinate on a row-major mesh of ``mesh_shape`` over the default group."""
    import torch.distributed as tdist

    require_process_group("find this rank's shard from `placements`")
    world = tdist.get_world_size()
    if math.prod(mesh_shape) != world:
        raise fail("mesh_shape", f"must have as many devices as the world size ({world})",
                   tuple(mesh_shape), "pass the mesh shape your DeviceMesh uses.")
    return tuple(int(c) for c in np.unravel_index(tdist.get_rank(), tuple(mesh_shape)))


# ---------------------------------------------------------------------------------- filling
def _torch_bounds(lim, dtype: torch.dtype) -> tuple[float, float]:
    """``[a, b]`` rounded *into* ``dtype`` (so clipping in the dtype cannot leave it)."""
    a, b = lim
    lo = torch.tensor(a, dtype=torch.float64).to(dtype)
    hi = torch.tensor(b, dtype=torch.float64).to(dtype)
    if float(lo) < a:
        lo = torch.nextafter(lo, torch.tensor(math.inf, dtype=dtype))
    if float(hi) > b:
        hi = torch.nextafter(hi, torch.tensor(-math.inf, dtype=dtype))
    return float(lo), float(hi)


_BF16_ROUND = np.uint32(0x7FFF)


def _writer(flat: torch.Tensor, lo_hi):
    """``write(a, b, x)``: float64 values ``x`` into ``flat[a:b]``, cast and clipped into
    ``lo_hi`` (bounds already representable in the dtype).

    On CPU the cast is done in NumPy (torch's ``copy_`` on a 64Ki-element slice starts an
    OpenMP region per chunk, which on a busy machine costs ~100x the copy itself). It is the
    cast torch does: float64 -> float32 round-to-nearest-even, and for float16 / bfloat16 a
    second RNE rounding from float32 (``c10::Half`` / ``c10::BFloat16`` of a float). Clipping
    before the last rounding equals clipping after it, since rounding is monotone and the
    bounds are representable.
    """
    dt = flat.dtype
    if flat.device.type == "cpu" and dt in (torch.float32, torch.float64):
        arr = flat.numpy()

        def write(a, b, x):
            if lo_hi is not None:
                np.clip(x, *lo_hi, out=x)
            arr[a:b] = x
        return write
    if flat.device.type == "cpu" and dt == torch.float16:
        arr = flat.numpy()

        def write(a, b, x):
            x32 = x.astype(np.float32)
            if lo_hi is not None:
                np.clip(x32, *lo_hi, out=x32)
            arr[a:b] = x32
        return write
    if flat.device.type == "cpu" and dt == torch.bfloat16:
        arr = flat.view(torch.int16).numpy().view(np.uint16)

        def write(a, b, x):
            x32 = x.astype(np.float32)
            if lo_hi is not None:
                np.clip(x32, *lo_hi, out=x32)
            bits = x32.view(np.uint32)
            # round to nearest even on the upper 16 bits (values are finite, never NaN)
            r = (bits >> 16) & 1
            r += _BF16_ROUND
            r += bits
            r >>= 16
            arr[a:b] = r
        return write

    def write_copy(a, b, x):
        with torch.no_grad():  # grad mode is per thread: worker threads need their own
            seg = flat[a:b]
            seg.copy_(torch.from_numpy(x))
            if lo_hi is not None:
                seg.clamp_(*lo_hi)
    return write_copy


def _check_fillable(local: torch.Tensor) -> None:
    _check_materialized(local)
    if not local.is_floating_point():
        raise fail("tensor", "must have a floating dtype", str(local.dtype),
                   "initialize float parameters only.")


def check_fillable(tensor: torch.Tensor) -> None:
    """Raise now the error :func:`counter_fill_` would raise for ``tensor`` itself (a DTensor
    with Partial or strided placements or a local shard that does not match them, no process
    group, a meta tensor, a non-floating dtype). ``initlab.apply`` calls it on every parameter
    before its first write, so the counter source writes without a rollback copy."""
    if not isinstance(tensor, torch.Tensor):
        raise InitlabTypeError(error_message("tensor", "must be a torch.Tensor or DTensor", type(
            tensor).__name__, "pass the parameter (or its local shard)."))
    if is_dtensor(tensor):
        _, _, tensor = dtensor_layout(tensor)
    _check_fillable(tensor)


def _check_materialized(local: torch.Tensor) -> None:
    if local.is_meta:
        raise fail("tensor", "is on the meta device (it has no storage to fill)", "meta",
                   "materialize it first: module.to_empty(device='cpu') (or your device).")


def fill_block_(local: torch.Tensor, dist: Distribution, *, key: int, global_shape,
                offsets, layout: str = "torch", threads=None, chunk_size=None,
                stream=None, sink: list | None = None) -> torch.Tensor:
    """Fill ``local`` (a plain tensor) with block ``offsets`` of the global tensor, drawn from
    counter stream ``stream`` (default :data:`~initlab.scale.COUNTER_STREAM_VERSION`).

    ``sink``: a list to which ``(mean, std)`` of the written values is appended when they were
    measured while drawing (v2 into a float32 CPU tensor: each chunk summed while in cache) or
    are known (a constant); nothing is appended otherwise (``initlab.apply``'s report then
    measures the tensor itself). The values drawn are the same with or without it."""
    stream = check_stream(stream)
    g, o, s = check_block(global_shape, offsets, tuple(local.shape))
    if local.numel() == 0:
        return local
    with torch.no_grad():
        if isinstance(dist, Constant):
            local.fill_(dist.value)
            if sink is not None:
                from ..backends.torch_backend import constant_moments

                sink.append(constant_moments(local))
            return local
        if not isinstance(dist, ELEMENTWISE):
            block = structured_block(dist, g, o, s, key, layout)
            local.copy_(torch.from_numpy(block))
            return local
        target = local if local.is_contiguous() else torch.empty(
            local.shape, dtype=local.dtype, device=local.device)
        lim = bounds(dist)
        lo_hi = _torch_bounds(lim, local.dtype) if lim is not None else None
        if stream == V1:
            write = _writer(target.detach().view(-1), lo_hi)
            run_chunks(dist, key, g, o, s, write, threads=threads, chunk_size=chunk_size)
        else:
            _fill_torch_stream(target.detach().view(-1), dist, key, g, o, s, lo_hi,
                               threads=threads, chunk_size=chunk_size, sink=sink)
        if target is not local:
            local.copy_(target)
    return local


# v2 chunk: 256Ki elements. Measured on the 2-core dev machine (ns per float32 normal, one
# thread): 16Ki 15.3, 64Ki 9.8, 256Ki 8.4 for a first torch-ops draft: each torch op costs a few
# microseconds of dispatch, so chunks must be long; 1 MiB of float32 per temporary still fits L2.
DEFAULT_CHUNK_V2 = 1 << 18
# On an accelerator a chunk is one batch of kernel launches: the larger the better, bounded by
# the temporaries (~6 x 8 bytes per element for the int64 Philox words).
DEVICE_CHUNK_V2 = 1 << 24


def _chunk_bits(reader, starts: np.ndarray, run: int, a: int, b: int) -> torch.Tensor:
    """int32 bits of the block's local flat positions ``[a, b)`` (the v2 analogue of
    :func:`initlab.scale.counter._chunk_words`)."""
    from .counter import _JUMP_COST_WORDS

    r0, r1 = a // run, (b - 1) // run
    if r0 == r1:
        return reader.read(int(starts[r0]) + a - r0 * run, b - a)
    first = int(starts[r0]) + a - r0 * run
    last = int(starts[r1]) + (b - 1) - r1 * run
    cover = last - first + 1
    if cover <= (b - a) + (r1 - r0 + 1) * 2 * _JUMP_COST_WORDS:
        pos = np.arange(a, b, dtype=np.int64)
        r = pos // run
        idx = torch.from_numpy(starts[r] + (pos - r * run) - first).to(reader.device)
        return reader.read(first, cover)[idx]
    parts = []
    p = a
    while p < b:
        k = p // run
        q = min(b, (k + 1) * run)
        parts.append(reader.read(int(starts[k]) + p - k * run, q - p))
        p = q
    return torch.cat(parts)


def _fill_torch_stream(flat: torch.Tensor, dist, key: int, g, o, s, lo_hi, *, threads,
                       chunk_size, sink: list | None = None) -> None:
    """Fill the contiguous ``flat`` (the block ``o:o+s`` of ``g``) from the v2 stream, chunk by
    chunk on ``flat``'s device.

    On CPU, ``threads`` worker threads share the chunks; each chunk's torch ops may also use
    torch's intra-op threads. (Measured alternatives: chunks below torch's parallel grain, so no
    op starts an OpenMP team, were 2.4x slower on two threads because of the per-op dispatch
    cost; one producer thread for the NumPy words beside torch ops in the calling thread was
    several times slower on a loaded machine, OpenMP's spinning workers starving the producer.)
    """

    from ..backends.torch_backend import moments_from_sums, part_sums
    from .torch_stream import BitReader, CpuTransform, compute_dtype, transform

    n = flat.numel()
    device = flat.device
    on_cpu = device.type == "cpu"
    threads = resolve_threads(threads) if on_cpu else 1
    if chunk_size is not None:
        chunk = _check_chunk(chunk_size)
    else:
        chunk = DEFAULT_CHUNK_V2 if on_cpu else DEVICE_CHUNK_V2
    cdt = compute_dtype(dist, flat.dtype)
    starts, run = block_runs(g, o, s)
    spans = [(a, min(a + chunk, n)) for a in range(0, n, chunk)]

    fast = CpuTransform.applies(dist, cdt, device)
    # the report's statistics while each chunk is in cache (as initlab.torch's measured draws:
    # part_sums per chunk, accumulated in float64 per worker)
    sums: list | None = [] if sink is not None and fast and flat.dtype == torch.float32 else None

    def work(span_list):
        with torch.no_grad():  # grad mode is per thread
            reader = BitReader(key, device)
            cpu = CpuTransform(dist, flat.dtype, lo_hi, chunk) if fast else None
            total = squares = 0.0
            for a, b in span_list:
                dst = flat[a:b]
                r0 = a // run
                if cpu is not None:
                    if cpu.fused and (b - 1) // run == r0:
                        # one run of the global tensor: the compiled kernels read the stream
                        cpu.from_stream(key, int(starts[r0]) + a - r0 * run, dst)
                    else:  # consumes the bits (fresh per chunk)
                        cpu(_chunk_bits(reader, starts, run, a, b), dst)
                    if sums is not None:
                        ds, dq = part_sums(dst)
                        total, squares = total + ds, squares + dq
                    continue
                bits = _chunk_bits(reader, starts, run, a, b)
                if dst.dtype == cdt:
                    transform(dist, bits, cdt, out=dst)
                    if lo_hi is not None:
                        dst.clamp_(*lo_hi)
                else:
                    x = transform(dist, bits, cdt)
                    if lo_hi is not None:
                        x.clamp_(*lo_hi)
                    dst.copy_(x)
            if sums is not None:
                sums.append((total, squares))

    run_spans(work, spans, threads)
    if sums is not None and sink is not None:  # sums is None without a sink
        moments = moments_from_sums(n, sum(t for t, _ in sums), sum(q for _, q in sums))
        if moments is not None:  # None: the sums could cancel; the caller measures the tensor
            sink.append(moments)


def _check_empty(dist, shape, fans, layout: str, role: str) -> None:
    """What a zero-element tensor or block still gets checked for (see
    :meth:`Initializer.check_empty`): the rank a structured kind needs, for a resolved
    Distribution as for an Initializer."""
    if isinstance(dist, Initializer):
        dist.check_empty(shape, fans=fans, layout=layout, role=role)
    elif isinstance(dist, Distribution):
        dist.check_shape(tuple(shape) if dist.is_elementwise else to_torch_shape(shape, layout))


def counter_fill_(tensor: torch.Tensor, dist, *, seed, name: str, global_shape=None,
                  offsets=None, placements=None, mesh_shape=None, coordinate=None,
                  fans=None, role: str = "weight", layout: str = "torch", threads=None,
                  chunk_size=None, stream=None, sink: list | None = None) -> torch.Tensor:
    """Fill a tensor or a local shard in place from the counter stream; returns ``tensor``.

    Element ``i`` of the flattened global tensor gets the value that is a pure function of
    ``(seed, name, i)`` (Philox4x64-10 keyed by ``stable_u64(seed, canonical_param_name(name))``;
    Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011), so any sharding of
    the tensor gathers to the same values bit for bit. Structured kinds (Orthogonal, Eye, ...) are
    computed in full in float64 on every rank from the same stream and sliced.

    ``tensor``: a plain tensor (the whole parameter, or a local shard with ``global_shape`` plus
    ``offsets``, or plus ``placements`` [+ ``mesh_shape``, ``coordinate``]; without a coordinate
    the default process group's rank is used, row-major on ``mesh_shape``), or a ``DTensor`` (its
    local shard is filled; offsets come from its mesh and placements).
    ``dist``: a :mod:`~initlab.core.distributions` object, or an Initializer (resolved for the
    global shape with ``fans``, ``role`` and ``layout``; ``layout`` is also the layout in which
    structured kinds are drawn). ``stream``: the stream version (default
    :data:`~initlab.scale.COUNTER_STREAM_VERSION`; ``"philox4x64-10-ndtri-v1"`` reproduces values
    drawn before v2; an unknown version is an error). ``sink``: see :func:`fill_block_` (only for
    a whole plain tensor: a shard's moments are not the parameter's).

    Example::

        d = initlab.get("he_normal").resolve((33, 17))      # Normal(0, sqrt(2 / 17))
        w = counter_fill_(torch.empty(33, 17), d, seed=0, name="fc.weight")
        part = torch.empty(33, 9)   # columns 8..16 of the same tensor: w[:, 8:], bit for bit
        counter_fill_(part, d, seed=0, name="fc.weight", global_shape=(33, 17), offsets=(0, 8))
    """
    if not isinstance(tensor, torch.Tensor):
        raise InitlabTypeError(error_message("tensor", "must be a torch.Tensor or DTensor", type(
            tensor).__name__, "pass the parameter (or its local shard)."))
    if is_dtensor(tensor):
        g, o, local = dtensor_layout(tensor)
        for nm, given, derived in (("global_shape", global_shape, g), ("offsets", offsets, o)):
            if given is not None and tuple(given) != tuple(derived):
                raise fail(nm, f"disagrees with the DTensor's own layout ({tuple(derived)})",
                           tuple(given), f"omit `{nm}` for DTensors.")
        if tensor.device_mesh.get_coordinate() is None:
            return tensor
    else:
        local = tensor
        g = tuple(tensor.shape) if global_shape is None else tuple(global_shape)
        if placements is not None:
            if offsets is not None:
                raise fail("offsets", "cannot be combined with `placements`", offsets,
                           "pass either offsets or placements (+ mesh_shape/coordinate).")
            if mesh_shape is not None:
                ms = tuple(mesh_shape)
            elif coordinate is not None:
                raise fail("mesh_shape", "is required with `coordinate`", None,
                           "pass mesh_shape=(n,) or (n, m).")
            else:
                import torch.distributed as tdist

                require_process_group("find this rank's shard from `placements`")
                ms = (tdist.get_world_size(),)
            coord = tuple(coordinate) if coordinate is not None else _rank_coordinate(ms)
            shape, o = shard_layout(g, placements, ms, coord)
            if tuple(local.shape) != shape:
                raise fail("tensor", f"has shape {tuple(local.shape)}, but `placements` "
                           f"{tuple(placements)} give this rank's shard of {g} the shape {shape}",
                           tuple(local.shape), "allocate the local shard with the shape from "
                           "`shard_layout`.")
        else:
            o = tuple(offsets) if offsets is not None else (0,) * len(g)
    _check_fillable(local)
    if 0 in g:  # a zero-element parameter: the documented no-op (its fans of 0 have no formula)
        _check_empty(dist, g, fans, layout, role)
        return tensor
    if isinstance(dist, Initializer):
        dist = dist.resolve(g, fans=fans, role=role, layout=layout)
    if not isinstance(dist, Distribution):
        raise InitlabTypeError(error_message(
            "dist", "must be an initlab Distribution or Initializer", type(dist).__name__,
            "pass e.g. initlab.get('normal', std=0.02) or its .resolve(shape)."))
    whole = not is_dtensor(tensor) and tuple(local.shape) == g  # sink: moments of `tensor`
    fill_block_(local, dist, key=stream_key(seed, name), global_shape=g, offsets=o,
                layout=layout, threads=threads, chunk_size=chunk_size, stream=stream,
                sink=sink if whole else None)
    return tensor


def counter_fill_rows_(tensor: torch.Tensor, dist, rows: tuple[int, int], *, seed, name: str,
                       fans=None, role: str = "weight", layout: str = "torch", threads=None,
                       chunk_size=None, stream=None, single: bool = False) -> torch.Tensor:
    """Fill rows ``[start, stop)`` (dim 0) of a tensor or DTensor as an independent tensor of
    shape ``(stop - start, *rest)`` with its own stream ``name``; returns ``tensor``.

    ``single``: the block is the one slice ``tensor[start]`` (``stop == start + 1``), drawn
    as a tensor of shape ``rest`` (an expert of a bank of stacked matrices: orthogonal or sparse
    then see the expert's own matrix).

    For packed parameters (MultiheadAttention's q/k/v ``in_proj_weight``, RNN gate blocks): each
    rank fills the intersection of its local shard with the block, so the result is independent
    of the sharding like :func:`counter_fill_` (a row slice of a DTensor is not a view of the
    local shard, so slicing first and filling the slice would lose the values).
    """
    if is_dtensor(tensor):
        g, o, local = dtensor_layout(tensor)
        if tensor.device_mesh.get_coordinate() is None:
            return tensor
    else:
        g, o, local = tuple(tensor.shape), (0,) * tensor.dim(), tensor
    try:
        start, stop = (int(rows[0]), int(rows[1]))
    except (TypeError, ValueError, IndexError):
        raise fail("rows", "must be a pair (start, stop) of row indices", rows,
                   "pass rows=(start, stop).") from None
    if not g or not 0 <= start <= stop <= g[0]:
        raise fail("rows", f"must satisfy 0 <= start <= stop <= {g[0] if g else 0} (dim 0 of "
                   f"the global shape {g})", rows, "pass a row range of the parameter.")
    if single and stop != start + 1:
        raise fail("rows", "must be one row (stop == start + 1) with single=True", rows,
                   "pass rows=(e, e + 1) for expert e.")
    sub = tuple(g[1:]) if single else (stop - start, *g[1:])
    if 0 in sub:  # an empty block: nothing to fill (and no fans to resolve a formula with)
        _check_empty(dist, sub, fans, layout, role)
        return tensor
    if isinstance(dist, Initializer):
        dist = dist.resolve(sub, fans=fans, role=role, layout=layout)
    lo, hi = max(o[0], start), min(o[0] + local.shape[0], stop)
    if hi <= lo or local.numel() == 0:
        return tensor
    _check_materialized(local)
    if single:
        fill_block_(local[lo - o[0]], dist, key=stream_key(seed, name), global_shape=sub,
                    offsets=tuple(o[1:]), layout=layout, threads=threads,
                    chunk_size=chunk_size, stream=stream)
        return tensor
    fill_block_(local[lo - o[0]:hi - o[0]], dist, key=stream_key(seed, name), global_shape=sub,
                offsets=(lo - start, *o[1:]), layout=layout, threads=threads,
                chunk_size=chunk_size, stream=stream)
    return tensor
