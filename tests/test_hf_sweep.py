"""``scripts/hf_sweep.py``: a plan on transformers model types built from shrunk configs, each
in a forked process, results resumed from the JSON file."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("transformers")

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "hf_sweep.py"


@pytest.fixture(scope="module")
def sweep():
    spec = importlib.util.spec_from_file_location("hf_sweep", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_shrink_reaches_sub_configs_and_keeps_head_sizes_and_token_ids(sweep):
    import transformers

    def head_size(c):
        return c.hidden_size // c.num_attention_heads

    full = transformers.CONFIG_MAPPING["llava"]()
    cfg = sweep.shrink(transformers.CONFIG_MAPPING["llava"]())
    for tower in ("text_config", "vision_config"):
        small, big = getattr(cfg, tower), getattr(full, tower)
        assert small.num_hidden_layers == 2 and small.hidden_size < big.hidden_size
        assert head_size(small) == head_size(big)                # rotary sizes still fit
    gpt2 = sweep.shrink(transformers.CONFIG_MAPPING["gpt2"]())
    assert gpt2.n_layer == 2 and gpt2.n_embd // gpt2.n_head == 768 // 12
    assert gpt2.vocab_size > gpt2.eos_token_id          # 50256 is still a token
    # a hybrid's per-layer pattern keeps one layer of each kind, in order
    zamba = sweep.shrink(transformers.CONFIG_MAPPING["zamba"]())
    kinds = transformers.CONFIG_MAPPING["zamba"]().layers_block_type
    assert set(zamba.layers_block_type) == set(kinds)
    assert zamba.num_hidden_layers == len(zamba.layers_block_type) <= 3
    # a pattern computed from the layer count (Jamba's periods) follows the count
    jamba = sweep.shrink(transformers.CONFIG_MAPPING["jamba"]())
    assert jamba.num_hidden_layers == len(jamba.layers_block_type) <= 3


def test_one_type_and_a_sub_model_config(sweep):
    res = sweep.run_one("gpt2", "auto", 10**8)
    assert (res["outcome"], res["method"], res["unmatched"]) == ("ok", "probe", 0)
    assert res["initialized"] == res["records"] > 0
    sub = sweep.run_one("align_text_model", "auto", 10**8)   # no Auto class: AlignTextModel
    assert sub["outcome"] == "ok" and sub["head"] == "AlignTextModel"


def test_the_sweep_writes_each_type_and_resumes(sweep, tmp_path, capsys):
    out = tmp_path / "sweep.json"
    assert sweep.main(["--only", "bert,llama", "--out", str(out), "--workers", "2"]) == 0
    first = json.loads(out.read_text())
    assert first["plan"] == "auto" and set(first["types"]) == {"bert", "llama"}
    assert all(r["outcome"] == "ok" for r in first["types"].values())
    capsys.readouterr()
    sweep.main(["--only", "bert,llama", "--out", str(out)])            # nothing to run again
    assert "[1/" not in capsys.readouterr().out
    assert json.loads(out.read_text())["types"] == first["types"]
    with pytest.raises(SystemExit, match="not a model type"):
        sweep.main(["--only", "no_such_model", "--out", str(out)])
    with pytest.raises(SystemExit, match="holds a sweep of plan 'auto'"):
        sweep.main(["--only", "bert", "--out", str(out), "--plan", "he"])
