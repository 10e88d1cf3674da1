"""initlab.load_pretrained and apply(..., pretrained=...): formats, mapping, partial loads and
the all-or-nothing behaviour."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

import initlab
from initlab.modelinit import LoadReport


def backbone():
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(),
                         nn.Linear(8 * 4 * 4, 16))


def with_head(n_out=5):
    return nn.Sequential(backbone(), nn.ReLU(), nn.Linear(16, n_out))


def trained():
    m = backbone()
    initlab.apply(m, "he", seed=123)
    with torch.no_grad():
        m[1].running_mean.uniform_(-1, 1, generator=torch.Generator().manual_seed(0))
        m[1].num_batches_tracked.fill_(5)
    return m


def same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def snapshot(m):
    return {k: v.clone() for k, v in m.state_dict().items()}


def unchanged(m, snap):
    return all(torch.equal(v, snap[k]) for k, v in m.state_dict().items())


@pytest.mark.parametrize("fmt", ["safetensors", "pt", "npz", "dict"])
def test_round_trip(tmp_path, fmt):
    src = trained()
    sd = src.state_dict()
    if fmt == "safetensors":
        from safetensors.torch import save_file

        path = tmp_path / "w.safetensors"
        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    elif fmt == "pt":
        path = tmp_path / "w.pt"
        torch.save(sd, path)
    elif fmt == "npz":
        path = tmp_path / "w.npz"
        np.savez(path, **{k: v.numpy() for k, v in sd.items()})
    else:
        path = sd
    dst = backbone()
    rep = initlab.load_pretrained(dst, path)
    assert isinstance(rep, LoadReport)
    assert same_state(src, dst)
    assert rep.missing == [] and rep.unexpected == [] and rep.mismatched == []
    assert len(rep.loaded) == len(sd)


def test_pt_with_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"weights": backbone().state_dict(), "obj": LoadReport("x")}, path)
    m = backbone()
    snap = snapshot(m)
    with pytest.raises(ValueError, match="weights-only torch checkpoint"):
        initlab.load_pretrained(m, path)
    assert unchanged(m, snap)


def test_nested_state_dict_key(tmp_path):
    path = tmp_path / "ckpt.pt"
    torch.save({"state_dict": trained().state_dict(), "epoch": torch.tensor(3)}, path)
    m = backbone()
    initlab.load_pretrained(m, path)
    assert same_state(m, trained())


def test_shape_mismatch_is_all_or_nothing():
    sd = trained().state_dict()
    sd["4.weight"] = torch.zeros(16, 99)
    sd["0.bias"] = torch.zeros(7)
    m = backbone()
    snap = snapshot(m)
    with pytest.raises(ValueError) as exc:
        initlab.load_pretrained(m, sd, strict=False)
    msg = str(exc.value)
    assert "`4.weight`: checkpoint shape (16, 99) != model shape (16, 128)" in msg
    assert "`0.bias`" in msg and "the model is unchanged" in msg
    assert unchanged(m, snap)


def test_strict_missing_and_unexpected():
    sd = trained().state_dict()
    del sd["4.bias"]
    sd["extra.weight"] = torch.zeros(2)
    m = backbone()
    snap = snapshot(m)
    with pytest.raises(ValueError, match=r"missing from the checkpoint: 4.bias"):
        initlab.load_pretrained(m, sd)
    assert unchanged(m, snap)
    rep = initlab.load_pretrained(m, sd, strict=False)
    assert rep.missing == ["4.bias"] and rep.unexpected == ["extra.weight"]
    assert torch.equal(m[4].bias, snap["4.bias"])
    assert "1 missing, 1 unexpected" in rep.summary()


def test_mapping_renames_and_drops():
    src = trained()
    sd = {f"encoder.{k}": v for k, v in src.state_dict().items()}
    sd["classifier.weight"] = torch.zeros(3, 3)
    m = backbone()
    rep = initlab.load_pretrained(m, sd, mapping={"encoder.*": "*", "classifier.*": None})
    assert same_state(m, src)
    assert rep.dropped == ["classifier.weight"] and rep.renamed["encoder.0.weight"] == "0.weight"
    m2 = backbone()
    initlab.load_pretrained(m2, sd, mapping=lambda k: k[len("encoder."):]
                            if k.startswith("encoder.") else None)
    assert same_state(m2, src)


def test_dtype_cast_and_refusal():
    sd = {k: (v.double() if v.is_floating_point() else v)
          for k, v in trained().state_dict().items()}
    m = backbone()
    rep = initlab.load_pretrained(m, sd)
    assert m[0].weight.dtype == torch.float32
    assert ("0.weight", "torch.float64", "torch.float32") in rep.cast
    sd["0.weight"] = torch.zeros(8, 3, 3, 3, dtype=torch.int64)
    with pytest.raises(ValueError, match="dtype torch.int64 cannot be loaded"):
        initlab.load_pretrained(m, sd)


def test_apply_with_pretrained_initializes_only_the_new_head(tmp_path):
    from safetensors.torch import save_file

    src = trained()
    path = tmp_path / "backbone.safetensors"
    save_file(src.state_dict(), str(path))
    model = with_head()
    rep = initlab.apply(model, "he", seed=0, pretrained=path, mapping={"*": "0.*"})
    assert same_state(model[0], src)                     # backbone loaded, not re-initialized
    assert rep.loaded[:2] == ["0.0.weight", "0.0.bias"]
    assert rep.initialized == ["2.weight", "2.bias"]
    assert int(model[0][1].num_batches_tracked) == 5     # loaded BN stats are not reset
    fresh = with_head()                                  # same head values as a fresh init
    initlab.apply(fresh, "he", seed=0)
    assert torch.equal(model[2].weight, fresh[2].weight)
    assert "loaded" in str(rep) and rep.load.summary() in str(rep)


def test_apply_with_bad_pretrained_changes_nothing():
    sd = {"0.0.weight": torch.zeros(8, 3, 5, 5)}
    model = with_head()
    snap = snapshot(model)
    with pytest.raises(ValueError, match="checkpoint shape"):
        initlab.apply(model, "he", seed=0, pretrained=sd)
    assert unchanged(model, snap)


def test_bad_sources():
    m = backbone()
    with pytest.raises(ValueError, match="`path` must be an existing checkpoint file"):
        initlab.load_pretrained(m, "/nonexistent/x.safetensors")
    with pytest.raises(TypeError, match="`source` must be a path or a state dict"):
        initlab.load_pretrained(m, 3)
    with pytest.raises(TypeError, match="`model` must be a torch.nn.Module"):
        initlab.load_pretrained({}, {})
