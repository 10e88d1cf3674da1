"""initlab.scale with real torch.distributed: 1-4 gloo ranks on CPU, loopback only.

Each world size launches ``scale_dist_worker.py`` once per rank (``OMP_NUM_THREADS=1``, a free
localhost port) and checks that every gathered parameter equals the single-process result bit
for bit -- for ``initlab.apply(rng="counter")`` on DTensor placements Shard(0) / Shard(1) / Replicate
(uneven shards: 33, 17, 13, 7 and 50 over 2-4 ranks; an expert bank's 5 experts, each drawn as
its own matrix, over 2-4 ranks: expert parallelism), a 2-D mesh at 4 ranks, FSDP2
``fully_shard`` from the meta device, the old stream version selected by name, and
``counter_fill_`` with two threads and odd chunk sizes -- and that no two shards of a random parameter are identical
(the bug of CPU/gloo DTensor init, where every shard receives the same values).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent
WORKER = HERE / "scale_dist_worker.py"
# parameters whose plan entry is a constant: their shards are legitimately identical
CONSTANT = {"block.norm.weight", "block.norm.bias"}
# structured kinds (orthogonal) are drawn by the same algorithm under both stream versions
STRUCTURED = {"block.proj.weight", "experts.w2", "experts.w3"}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(world: int, out: Path) -> None:
    env = dict(os.environ, WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
               MASTER_PORT=str(_free_port()), OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo",
               PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    procs = []
    logs = [out.parent / f"rank{r}.log" for r in range(world)]
    for r in range(world):
        with open(logs[r], "w") as log:
            procs.append(subprocess.Popen([sys.executable, str(WORKER), str(out)],
                                          env=dict(env, RANK=str(r), LOCAL_RANK=str(r)),
                                          stdout=log, stderr=subprocess.STDOUT))
    try:
        codes = [p.wait(timeout=100) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    if any(codes):
        text = "\n".join(f"--- rank {r} (exit {c}) ---\n{logs[r].read_text()[-3000:]}"
                         for r, c in enumerate(codes))
        raise AssertionError(f"worker failed:\n{text}")


def _worker_module():
    sys.path.insert(0, str(HERE))
    try:
        import scale_dist_worker
    finally:
        sys.path.remove(str(HERE))
    return scale_dist_worker


@pytest.fixture(scope="module")
def reference():
    return _worker_module().reference()


@pytest.fixture(scope="module")
def reference_v1():
    w = _worker_module()
    return w.reference(w.V1_RNG)


@pytest.mark.distributed
@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_sharded_init_equals_single_process(world, reference, reference_v1, tmp_path):
    out = tmp_path / "result.pt"
    _run(world, out)
    result = torch.load(out)
    modes = ["dtensor_1d", "fsdp2", "threads", "v1"] + (["dtensor_2d"] if world == 4 else [])
    for name in reference:
        if name not in CONSTANT | STRUCTURED:  # the two versions draw different values
            assert not torch.equal(reference[name], reference_v1[name]), name
    for mode in modes:
        got = result[mode]
        ref_all = reference_v1 if mode == "v1" else reference
        assert sorted(got) == sorted(ref_all), mode
        for name, ref in ref_all.items():
            assert got[name].dtype == ref.dtype and got[name].shape == ref.shape, (mode, name)
            assert torch.equal(got[name], ref), f"{mode}: {name} differs from single-process"
        identical = set(result["identical"][mode]) - CONSTANT
        assert not identical, f"{mode}: shards of {sorted(identical)} are identical"
        if world > 1:
            # the check above is live: constant parameters do have identical shards
            assert set(result["identical"][mode]) >= {"block.norm.bias"}, mode
    # the report's moments of sharded parameters are the whole tensor's (DTensor reductions)
    for mode, per in result["report_moments"].items():
        for name, (mean, std, true_mean, true_std) in per.items():
            assert std == pytest.approx(true_std, rel=1e-4, abs=1e-12), (mode, name)
            assert mean == pytest.approx(true_mean, abs=1e-4 * max(true_std, 1e-12)), (mode, name)
    assert result["atomic"] == "untouched"
    # packed q/k/v blocks filled row-range by row-range on a sharded (3E, E) tensor
    ref = _worker_module().packed(torch.zeros(36, 12))
    assert len(result["packed"]) == 3
    for placement, got in result["packed"].items():
        assert torch.equal(got, ref), placement
