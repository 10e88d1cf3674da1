"""Shared utilities: canonical parameter names, stable hashing, atomic writes."""

from __future__ import annotations

import os
import stat

import pytest

from initlab.util.atomic import atomic_write_text
from initlab.util.hashing import canonical_param_name, stable_u64


@pytest.mark.parametrize("name, canon", [
    ("fc.weight", "fc.weight"),
    ("module.fc.weight", "fc.weight"),                       # DDP
    ("module.module.fc.weight", "fc.weight"),                # DDP of DDP
    ("_orig_mod.fc.weight", "fc.weight"),                    # torch.compile
    ("_orig_mod.module.fc.weight", "fc.weight"),             # compile(DDP(m))
    ("module._orig_mod.fc.weight", "fc.weight"),             # DDP(compile(m))
    ("blocks.0._fsdp_wrapped_module.attn.weight", "blocks.0.attn.weight"),
    ("encoder.module.weight", "encoder.module.weight"),      # a user's submodule named module
    ("module", "module"),
])
def test_canonical_param_name(name, canon):
    assert canonical_param_name(name) == canon
    assert canonical_param_name(canon) == canon              # idempotent


def test_stable_u64_is_stable_and_separates_items():
    # pinned: the key (and so every stream) must not change across processes, machines, Python
    # versions or initlab releases with the same stream version; a change here is a new stream
    assert stable_u64(0, "fc.weight") == 1174139401830448985
    assert stable_u64(0, "fc.weight") != stable_u64(1, "fc.weight")
    assert stable_u64("ab", "c") != stable_u64("a", "bc")     # length-prefixed items
    assert 0 <= stable_u64(0, "x") < 2**64


def test_atomic_write_replaces_whole_and_is_readable(tmp_path):
    p = tmp_path / "sub" / "r.json"
    atomic_write_text(p, "one")
    atomic_write_text(p, "two")
    assert p.read_text() == "two"
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o644
    assert [f.name for f in p.parent.iterdir()] == ["r.json"]  # no temporary left behind
