"""One rank of the initlab.scale multi-process tests (launched by test_scale_distributed.py).

Usage: RANK=r WORLD_SIZE=n MASTER_ADDR=127.0.0.1 MASTER_PORT=p python scale_dist_worker.py OUT

Initializes a small Transformer-like model with odd shapes (and a mixture-of-experts bank of 5
experts) by ``initlab.apply(rng="counter")``:
DTensor parameters with per-parameter placements (1-D mesh, and a 2-D mesh when the world size
is 4), FSDP2 ``fully_shard`` built on the meta device then ``to_empty``, the DTensor model under
the old stream version (``rng="counter:philox4x64-10-ndtri-v1"``), and ``counter_fill_`` on each
DTensor with two threads and odd chunk sizes; gathers every parameter and, on rank 0, saves
``{mode: {name: tensor}}`` plus the names of sharded parameters whose shards on two ranks were
identical.
"""

from __future__ import annotations

import sys

import torch
import torch.distributed as dist
import torch.nn as nn

import initlab

SEED = 1234


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(17, 33)      # weight 33x17
        self.proj = nn.Linear(7, 13)      # weight 13x7 (orthogonal)
        self.norm = nn.LayerNorm(12)


class Experts(nn.Module):
    """A mixture-of-experts bank (stacked per-expert matrices, as transformers' MixtralExperts):
    each expert drawn as its own matrix, so Shard(0) is expert parallelism."""

    def __init__(self):
        super().__init__()
        self.num_experts = 5
        # 1-D mesh placements by parameter order: w1 Replicate, w2 Shard(0) (experts over
        # ranks), w3 Shard(1) (rows of every expert over ranks)
        self.w1 = nn.Parameter(torch.empty(5, 9, 7))
        self.w2 = nn.Parameter(torch.empty(5, 7, 9))     # orthogonal per expert
        self.w3 = nn.Parameter(torch.empty(5, 9, 7))     # orthogonal per expert


class TinyTransformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(50, 12)
        self.block = Block()
        self.head = nn.Linear(12, 50, bias=False)
        self.experts = Experts()


def plan():
    return {
        "emb.weight": initlab.get("normal", std=0.02),
        "block.norm.weight": "ones",
        "block.norm.bias": "zeros",
        "block.proj.weight": initlab.get("orthogonal", gain=1.0),
        "experts.w[23]": initlab.get("orthogonal", gain=1.0),
        "*.bias": initlab.get("uniform", low=-0.1, high=0.1),
        "block.qkv.weight": initlab.get("truncated_normal", std=0.02, a=-0.04, b=0.04),
        "*": initlab.get("he_uniform"),
    }


def as_plan():
    from initlab.modelinit.rules import Plan, Rule

    return Plan([Rule(k, v) for k, v in plan().items()])


def reference(rng: str = "counter") -> dict[str, torch.Tensor]:
    """Single-process result: the plain model initialized by ``apply(rng=rng)``."""
    m = TinyTransformer()
    initlab.apply(m, as_plan(), seed=SEED, rng=rng)
    return {n: p.detach().clone() for n, p in m.named_parameters()}


V1_RNG = "counter:philox4x64-10-ndtri-v1"


def packed(t: torch.Tensor) -> torch.Tensor:
    """A packed (3E, E) q/k/v tensor filled block by block with counter_fill_rows_."""
    from initlab.scale import counter_fill_rows_

    for i, label in enumerate("qkv"):
        counter_fill_rows_(t, initlab.get("glorot_uniform"), (12 * i, 12 * (i + 1)), seed=SEED,
                           name=f"attn.in_proj_weight/{label}")
    return t


def _placements_1d(i: int):
    from torch.distributed.tensor import Replicate, Shard

    return [(Shard(0),), (Shard(1),), (Replicate(),)][i % 3]


def _placements_2d(i: int):
    from torch.distributed.tensor import Replicate, Shard

    return [(Shard(0), Shard(1)), (Shard(1), Replicate()), (Shard(0), Shard(0)),
            (Replicate(), Shard(0))][i % 4]


def dtensor_model(mesh, two_d: bool):
    """The model with every parameter replaced by an uninitialized DTensor (local shard only)."""
    from torch.distributed.tensor import Shard
    from torch.distributed.tensor import empty as dt_empty

    with torch.device("meta"):
        m = TinyTransformer()
    i = 0
    for mod in m.modules():
        for local, p in list(mod.named_parameters(recurse=False)):
            pl = _placements_2d(i) if two_d else _placements_1d(i)
            pl = tuple(Shard(0) if isinstance(x, Shard) and x.dim >= p.dim() else x for x in pl)
            setattr(mod, local, nn.Parameter(dt_empty(*p.shape, device_mesh=mesh,
                                                      placements=pl)))
            i += 1
    return m


def report_moments(rep, full: dict) -> dict:
    """Per parameter: (reported mean, reported std, the gathered tensor's mean and std)."""
    out = {}
    for n, t in full.items():
        x = t.double()
        out[n] = (rep[n].mean, rep[n].std, float(x.mean()), float(x.std(unbiased=False)))
    return out


def gather(m) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Full tensors (on every rank) and the names of parameters two of whose shards at
    *different* global offsets hold identical values."""
    from torch.distributed.tensor import DTensor

    from initlab.scale.sharded import dtensor_layout

    full, identical = {}, []
    world = dist.get_world_size()
    for n, p in m.named_parameters():
        if isinstance(p, DTensor):
            full[n] = p.full_tensor().detach().clone()
            _, offsets, local = dtensor_layout(p)
            shards = [None] * world
            dist.all_gather_object(shards, (offsets, local.detach().clone()))
            seen = [s for s in shards if s[1].numel() > 0]
            for a in range(len(seen)):
                for b in range(a + 1, len(seen)):
                    (oa, ta), (ob, tb) = seen[a], seen[b]
                    if oa != ob and ta.shape == tb.shape and torch.equal(ta, tb):
                        identical.append(n)
        else:
            full[n] = p.detach().clone()
    return full, sorted(set(identical))


def main(out: str) -> int:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    result: dict = {"identical": {}}

    mesh = init_device_mesh("cpu", (world,))
    m = dtensor_model(mesh, two_d=False)
    rep = initlab.apply(m, as_plan(), seed=SEED, rng="counter")
    result["dtensor_1d"], result["identical"]["dtensor_1d"] = gather(m)
    result["report_moments"] = {"dtensor_1d": report_moments(rep, result["dtensor_1d"])}

    if world == 4:
        mesh2 = init_device_mesh("cpu", (2, 2))
        m = dtensor_model(mesh2, two_d=True)
        rep = initlab.apply(m, as_plan(), seed=SEED, rng="counter")
        result["dtensor_2d"], result["identical"]["dtensor_2d"] = gather(m)
        result["report_moments"]["dtensor_2d"] = report_moments(rep, result["dtensor_2d"])

    with torch.device("meta"):
        m = TinyTransformer()
    for mod in (m.emb, m.block.qkv, m.block.proj, m.head):
        fully_shard(mod, mesh=mesh)
    fully_shard(m, mesh=mesh)
    m.to_empty(device="cpu")
    initlab.apply(m, as_plan(), seed=SEED, rng="counter")
    result["fsdp2"], result["identical"]["fsdp2"] = gather(m)

    from torch.distributed.tensor import Replicate, Shard
    from torch.distributed.tensor import empty as dt_empty

    result["packed"], result["identical"]["packed"] = {}, []
    for pl in (Shard(0), Shard(1), Replicate()):
        t = packed(dt_empty(36, 12, device_mesh=mesh, placements=(pl,)))
        result["packed"][str(pl)] = t.full_tensor()

    # the old stream version, selected by name, on the sharded model
    m = dtensor_model(mesh, two_d=False)
    initlab.apply(m, as_plan(), seed=SEED, rng=V1_RNG)
    result["v1"], result["identical"]["v1"] = gather(m)

    # thread counts and chunk sizes: each DTensor filled by counter_fill_ with 2 threads and
    # chunks that split rows (the distribution is the one apply resolved for the global shape)
    from initlab.scale import counter_fill_, counter_fill_rows_

    ref = TinyTransformer()
    rep = initlab.apply(ref, as_plan(), seed=SEED, rng="counter")
    m = dtensor_model(mesh, two_d=False)
    for i, (n, p) in enumerate(m.named_parameters()):
        init = rep[n].init
        from initlab.core.registry import from_dict

        init = from_dict(init)
        fans = rep[n].fans[0] if rep[n].fans else None
        # the report's role (weight, bias, embedding, norm_scale, norm_shift) -> the samplers'
        # fan role: a bias or norm shift takes its layer's fans as a bias, the rest as weights
        role = "bias" if rep[n].role in ("bias", "norm_shift") else "weight"
        chunk = (5, 37, 1000)[i % 3]
        if len(rep[n].stream_keys) > 1:
            # an expert bank: each expert its own stream key, drawn as a matrix of its own
            for e, (key, f) in enumerate(zip(rep[n].stream_keys, rep[n].fans)):
                counter_fill_rows_(p, init, (e, e + 1), seed=SEED, name=key, fans=f, role=role,
                                   layout=rep[n].layout or "torch", threads=2,
                                   chunk_size=chunk, single=True)
            continue
        counter_fill_(p, init, seed=SEED, name=n, fans=fans, role=role,
                      layout=rep[n].layout or "torch", threads=2, chunk_size=chunk)
    result["threads"], result["identical"]["threads"] = gather(m)

    # all or nothing without a rollback copy (the counter source is trusted): a Partial
    # placement, which no fill can serve, is refused before the first write
    from torch.distributed.tensor import Partial

    from initlab.core.validation import InitlabError

    m = dtensor_model(mesh, two_d=False)
    for p in m.parameters():
        p.to_local().detach().fill_(1.5)
    m.head.weight = nn.Parameter(dt_empty(*m.head.weight.shape, device_mesh=mesh,
                                          placements=(Partial(),)))
    try:
        initlab.apply(m, as_plan(), seed=SEED, rng="counter")
        result["atomic"] = "no error"
    except InitlabError as exc:
        untouched = all(bool((p.to_local() == 1.5).all()) for n, p in m.named_parameters()
                        if n != "head.weight")
        result["atomic"] = "untouched" if untouched else f"written before the error: {exc}"

    if rank == 0:
        torch.save(result, out)
    dist.barrier()
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
