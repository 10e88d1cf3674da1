"""The ``mup-transfer`` reproduction (Tensor Programs V, Fig. 1): plumbing in the default suite,
the reduced config's ordering in the slow group."""

from __future__ import annotations

import json
import math

import pytest

from initlab.core.validation import InitlabError
from initlab.lab.reproductions import reproduce
from initlab.lab.reproductions.mup_transfer import (
    Config,
    seed_shifts,
    shifts,
    summarize,
    train_one,
    tune_base,
)

TINY = {"sweeps": ("mlp", "depth"), "mlp_widths": (8, 16, 32), "depths": (1, 2, 3),
        "depth_width": 8, "log2_lrs": (-8, -6), "n_train": 128, "seeds": (0,)}


def test_tiny_run_writes_results_and_report_and_resumes(tmp_path):
    out = tmp_path / "mt"
    res = reproduce("mup-transfer", out=out, quiet=True, overrides=TINY)
    assert len(res["arms"]) == 2 * 2 * 3 * 2       # sweeps x parametrizations x sizes x lrs
    assert {r["sweep"] for r in res["optima"]} == {"mlp", "depth"}
    saved = json.loads((out / "results.json").read_text())
    assert saved["results"]["shifts"] == res["shifts"]
    html = (out / "report.html").read_text()
    assert "log2 learning rate" in html and "<img" in html
    again = reproduce("mup-transfer", out=out, quiet=True, overrides=TINY, resume=True)
    assert again["arms"] == res["arms"]            # every arm came from the checkpoint


def test_base_tuning_stage_picks_a_pair_and_uses_it_at_every_size(tmp_path):
    tiny = {**TINY, "sweeps": ("mlp",), "output_mults": (1.0, 4.0)}
    res = reproduce("mup-transfer", out=tmp_path / "mt", quiet=True, overrides=tiny)
    t = res["tuned"]["mlp"]["mup"]
    n_oms = 2 + len(t["widened"]["output_mult"])     # the grid and what grew past its edge
    assert len(res["tune_arms"]) == n_oms * 2        # output mults x lrs, at the base width
    assert {a["size"] for a in res["tune_arms"]} == {8}
    assert res["tuned"]["mlp"]["sp"] == t            # one model at the base size
    assert len(t["grid"]) == n_oms and t["size"] == 8
    assert t["output_mult"] in {g[0] for g in t["grid"]}
    assert {(a["output_mult"], a["init_scale"]) for a in res["arms"]} == {
        (t["output_mult"], 1.0)}
    assert set(res["widest"]["mlp"]) == {"sp", "mup"}
    assert "base-model tuning" in (tmp_path / "mt" / "report.html").read_text()


def test_workers_train_the_same_arms_bit_for_bit_as_one_process(tmp_path):
    # the arms are independent and seed their own generators, so where they run must not matter
    # when each uses the same torch threads (1 here, as the workers get on a 2-core machine)
    import torch

    tiny = {**TINY, "sweeps": ("mlp",), "output_mults": (1.0, 4.0)}
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        serial = reproduce("mup-transfer", out=tmp_path / "one", quiet=True, overrides=tiny)
        torch.set_num_threads(2)                      # 2 workers get 2 // 2 = 1 thread each
        par = reproduce("mup-transfer", out=tmp_path / "two", quiet=True, overrides=tiny,
                        workers=2)
    finally:
        torch.set_num_threads(threads)
    assert par["tune_arms"] == serial["tune_arms"] and par["arms"] == serial["arms"]
    assert par["tuned"] == serial["tuned"] and par["shifts"] == serial["shifts"]
    saved = json.loads((tmp_path / "two" / "checkpoint.json").read_text())["arms"]
    assert len(saved) == len(par["tune_arms"]) + len(par["arms"])
    # and a run resumed with another worker count trains nothing new
    again = reproduce("mup-transfer", out=tmp_path / "two", quiet=True, overrides=tiny,
                      resume=True, workers=3)
    assert again["arms"] == par["arms"]


def test_run_arms_trains_only_the_unfinished_arms_and_keeps_the_task_order(tmp_path):
    from initlab.lab.reproductions import _common
    from initlab.lab.reproductions._common import jsonable
    from initlab.lab.reproductions.mup_transfer import _arm

    cfg = Config(mlp_widths=(8, 16), n_train=64)
    spec = {"name": "digits", "seed": 0, "data_dir": None, "n_train": 64}
    data = _common.load_data(**spec)
    tasks = [(f"k{i}", ("mlp", "sp", 8, lr, 0, cfg, 1.0, 1.0))
             for i, lr in enumerate((-9, -8, -7))]
    ck = _common.Checkpoint(tmp_path, {"case": "t"})
    ck.arms["k1"] = {"held": True}                    # finished earlier: not trained again
    import torch

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)                      # 2 workers get 2 // 2 = 1 thread each
        got = _common.run_arms(ck, tasks, _arm, data, data_spec=spec, workers=2, desc="t",
                               quiet=True)
        torch.set_num_threads(1)                      # as each worker ran
        alone = jsonable(train_one("mlp", "sp", 8, -9, 0, cfg, data))
    finally:
        torch.set_num_threads(threads)
    assert got[1] == {"held": True}
    assert [g["log2_lr"] for g in (got[0], got[2])] == [-9, -7]
    assert got[0] == alone
    # a worker's error reaches the caller, and no result is saved for that arm
    bad = [("bad", ("no-such-sweep", "sp", 8, -9, 0, cfg, 1.0, 1.0)), ("k3", tasks[0][1])]
    with pytest.raises(KeyError):
        _common.run_arms(ck, bad, _arm, data, data_spec=spec, workers=2, desc="t", quiet=True)
    assert "bad" not in ck.arms


def test_threads_are_set_per_arm_for_the_call_and_restored(tmp_path):
    # threads=1 with 2 workers: each worker gets 1, the same numbers as threads=1 in one
    # process; torch's setting is the caller's again afterwards, and the report names it
    import torch

    tiny = {**TINY, "sweeps": ("mlp",)}
    before = torch.get_num_threads()
    one = reproduce("mup-transfer", out=tmp_path / "one", quiet=True, overrides=tiny, threads=1)
    assert torch.get_num_threads() == before
    two = reproduce("mup-transfer", out=tmp_path / "two", quiet=True, overrides=tiny, threads=1,
                    workers=2)
    assert torch.get_num_threads() == before
    assert two["arms"] == one["arms"]
    assert one["machine"]["torch_threads"] == 1 and two["machine"]["torch_threads"] == 1
    assert two["machine"]["workers"] == 2
    assert "1 thread(s) per arm, in 2 worker processes" in (
        tmp_path / "two" / "report.html").read_text()


@pytest.mark.parametrize("threads, error", [(0, ValueError), (1.5, TypeError), ("1", TypeError)])
def test_threads_must_be_a_positive_whole_number(threads, error, tmp_path):
    with pytest.raises(error, match="--threads"):
        reproduce("mup-transfer", out=tmp_path / "t", quiet=True, overrides=TINY,
                  threads=threads)
    assert not (tmp_path / "t").exists()              # refused before anything is written


def test_cli_reproduce_runs_at_one_thread_per_arm_by_default(tmp_path, monkeypatch):
    from initlab.lab import reproduce as cli

    seen = {}
    monkeypatch.setattr("initlab.lab.reproductions.reproduce",
                        lambda name, **kw: seen.update(kw) or {"seconds": 0})
    import argparse

    args = argparse.Namespace(list=False, name="mup-transfer", out=str(tmp_path / "c"),
                              full=False, data_dir=None, quiet=True, resume=False, force=False,
                              workers=2, threads=None)
    assert cli.handler(args) == 0
    assert seen["threads"] == 1 and seen["workers"] == 2
    args.threads = 3
    cli.handler(args)
    assert seen["threads"] == 3


@pytest.mark.parametrize("workers, error", [(0, ValueError), (-1, ValueError), (1.5, TypeError),
                                             (True, TypeError), ("2", TypeError)])
def test_workers_must_be_a_positive_whole_number(workers, error, tmp_path):
    # the library's scalar check: a wrong type is a TypeError, an integer below 1 a ValueError
    with pytest.raises(error, match="--workers"):
        reproduce("mup-transfer", out=tmp_path / "w", quiet=True, overrides=TINY,
                  workers=workers)


def test_workers_are_refused_by_a_case_that_runs_its_arms_in_order(tmp_path):
    with pytest.raises(ValueError, match="--workers.*ng-circles.*in order"):
        reproduce("ng-circles", out=tmp_path / "w", quiet=True, workers=2)
    assert not (tmp_path / "w").exists()              # refused before anything is written


def test_tune_seeds_set_the_tuning_stage_seeds_only(tmp_path):
    tiny = {**TINY, "sweeps": ("mlp",), "output_mults": (1.0, 4.0), "seeds": (0, 1),
            "tune_seeds": (1,)}
    res = reproduce("mup-transfer", out=tmp_path / "mt", quiet=True, overrides=tiny)
    assert {a["seed"] for a in res["tune_arms"]} == {1}
    n_oms = 2 + len(res["tuned"]["mlp"]["mup"]["widened"]["output_mult"])
    assert len(res["tune_arms"]) == n_oms * 2        # output mults x lrs, one seed
    assert {a["seed"] for a in res["arms"]} == {0, 1}


def test_a_proxy_wider_than_the_base_is_tuned_for_each_parametrization(tmp_path):
    tiny = {**TINY, "sweeps": ("mlp",), "output_mults": (1.0, 4.0), "tune_sizes": (("mlp", 16),)}
    res = reproduce("mup-transfer", out=tmp_path / "mt", quiet=True, overrides=tiny)
    # parametrizations x output mults (the grid's and what grew past its edge, each for
    # itself) x lrs
    assert len(res["tune_arms"]) == sum(
        (2 + len(res["tuned"]["mlp"][p]["widened"]["output_mult"])) * 2 for p in ("sp", "mup"))
    assert {(a["parametrization"], a["size"]) for a in res["tune_arms"]} == {("sp", 16),
                                                                           ("mup", 16)}
    for p in ("sp", "mup"):
        t = res["tuned"]["mlp"][p]
        assert t["size"] == 16
        assert {a["output_mult"] for a in res["arms"] if a["parametrization"] == p} == {
            t["output_mult"]}


@pytest.mark.parametrize("par_name", ["sp", "mup"])
def test_readout_zero_init_starts_every_arm_from_zero_logits(par_name):
    # with the readout (and its bias) zeroed the logits are 0 for every input, so at a learning
    # rate too small to move anything (2^-40) the loss is ln(10) to float32 precision; the
    # random readout starts elsewhere
    from initlab.lab.reproductions._common import load_data

    data = load_data("digits", seed=0, data_dir=None, n_train=128)
    zero, plain = (train_one("mlp", par_name, 32, -40, 0,
                             Config(mlp_widths=(16, 32), n_train=128, readout_zero_init=z), data)
                   for z in (True, False))
    assert zero["train_loss"] == pytest.approx(math.log(10), abs=1e-5)
    assert abs(plain["train_loss"] - math.log(10)) > 1e-3


def test_readout_zero_init_can_name_the_parametrizations_it_applies_to():
    # ("mup",): μP's arms start from zero logits (ln 10 at a negligible lr), SP's from torch's
    # default readout; at the base size the two are then different models, so a proxy there is
    # tuned for each (not once for both)
    from initlab.core.validation import InitlabError
    from initlab.lab.reproductions import mup_transfer as mt
    from initlab.lab.reproductions._common import load_data

    data = load_data("digits", seed=0, data_dir=None, n_train=128)
    cfg = Config(mlp_widths=(16, 32), n_train=128, readout_zero_init=("mup",))
    assert mt.zero_readout(cfg, "mup") and not mt.zero_readout(cfg, "sp")
    mu, sp = (train_one("mlp", p, 32, -40, 0, cfg, data) for p in ("mup", "sp"))
    assert mu["train_loss"] == pytest.approx(math.log(10), abs=1e-5)
    assert abs(sp["train_loss"] - math.log(10)) > 1e-3
    assert not mt._tuned_at_base("mlp", cfg)
    assert mt._tuned_at_base("mlp", Config(mlp_widths=(16, 32), readout_zero_init=True))
    with pytest.raises(InitlabError, match="`readout_zero_init` must be a bool or names"):
        mt.zero_readout(Config(readout_zero_init=("mu",)), "sp")


def test_query_zero_init_applies_to_the_transformer_under_the_named_parametrizations(
        monkeypatch):
    # ("mup",): the transformer's μP arms start with zero queries, SP's keep the draw; the MLP
    # sweep has no attention and ignores the setting; at the transformer's base size the two are
    # then different models (tuned separately)
    from initlab.core.validation import InitlabError
    from initlab.lab.reproductions import mup_transfer as mt
    from initlab.modelinit import parametrization as pz

    seen = []
    real = pz.parametrize

    def spy(model, name, **kw):
        seen.append((name, kw.get("query_zero_init")))
        return real(model, name, **kw)

    monkeypatch.setattr(pz, "parametrize", spy)
    from initlab.lab.reproductions._common import load_data

    data = load_data("digits", seed=0, data_dir=None, n_train=64)
    cfg = Config(transformer_widths=(16, 32), n_train=64, transformer_epochs=1,
                 query_zero_init=("mup",))
    assert mt.zero_query(cfg, "mup") and not mt.zero_query(cfg, "sp")
    for p in ("mup", "sp"):
        train_one("transformer", p, 32, -40, 0, cfg, data)
    train_one("mlp", "mup", 32, -40, 0, Config(mlp_widths=(16, 32), n_train=64,
                                               query_zero_init=True), data)
    assert seen == [("mup", True), ("sp", False), ("mup", False)]
    assert not mt._tuned_at_base("transformer", cfg)
    assert mt._tuned_at_base("mlp", cfg)
    with pytest.raises(InitlabError, match="`query_zero_init` must be a bool or names"):
        mt.zero_query(Config(query_zero_init=("mu",)), "sp")


def test_sp_and_mup_are_one_model_at_the_base_size_with_tuned_hyperparameters():
    # the tuning stage trains the base size once: that is only fair if SP with the pair (a
    # constant readout multiplier, init x scale) is there exactly μP with it
    from initlab.lab.reproductions._common import load_data

    cfg = Config(mlp_widths=(16, 32), n_train=128)
    data = load_data("digits", seed=0, data_dir=None, n_train=128)
    sp, mup = (train_one("mlp", p, 16, -6, 0, cfg, data, 4.0, 2.0) for p in ("sp", "mup"))
    assert sp["train_loss"] == mup["train_loss"]
    plain = train_one("mlp", "sp", 16, -6, 0, cfg, data)
    assert plain["train_loss"] != sp["train_loss"]    # the pair is applied
    wide = [train_one("mlp", p, 32, -6, 0, cfg, data, 4.0, 2.0)["train_loss"]
            for p in ("sp", "mup")]
    assert wide[0] != wide[1]


def test_tune_base_takes_the_pair_with_the_lowest_loss_at_its_best_lr():
    cfg = Config(sweeps=("mlp",), log2_lrs=(-2, -1), seeds=(0, 1), output_mults=(1.0, 2.0),
                 init_scales=(1.0,))
    arms = [{"sweep": "mlp", "output_mult": om, "init_scale": 1.0, "log2_lr": k, "seed": s,
             "size": 8, "parametrization": "mup",
             "diverged": False, "train_loss": {(1.0, -2): 0.5, (1.0, -1): 0.3,
                                               (2.0, -2): 0.2, (2.0, -1): 0.9}[(om, k)]}
            for om in (1.0, 2.0) for k in (-2, -1) for s in (0, 1)]
    t = tune_base(arms, cfg, "mlp")
    assert (t["output_mult"], t["init_scale"], t["log2_lr"]) == (2.0, 1.0, -2)
    assert t["grid"] == [[1.0, 1.0, -1, 0.3], [2.0, 1.0, -2, 0.2]]
    assert tune_base([], cfg, "mlp")["output_mult"] == 1.0


def _tuned(grid, best):
    return {"output_mult": best[0], "init_scale": best[1], "argmin": list(best),
            "grid": [[om, isc, -5, 0.1] for om, isc in grid]}


def test_widened_grows_the_tuning_grid_past_the_edge_the_best_pair_sits_on():
    from initlab.lab.reproductions.mup_transfer import TUNE_WIDEN, widened

    cfg = Config(output_mults=(1.0, 2.0, 4.0), init_scales=(0.5, 1.0))
    grid = [(om, isc) for om in cfg.output_mults for isc in cfg.init_scales]
    # best on the top output multiplier and the bottom init scale: both axes grow outward, the
    # new init scale for every output multiplier including the new one
    assert widened(_tuned(grid, (4.0, 0.5)), cfg) == [
        (8.0, 0.5), (8.0, 1.0), (1.0, 0.25), (2.0, 0.25), (4.0, 0.25), (8.0, 0.25)]
    assert widened(_tuned(grid, (2.0, 1.0)), cfg) == [(1.0, 2.0), (2.0, 2.0), (4.0, 2.0)]
    assert widened(_tuned(grid, (1.0, 1.0)), cfg)[:2] == [(0.5, 0.5), (0.5, 1.0)]
    # an interior best needs nothing; an axis of one value is not tuned and never grows
    interior = Config(output_mults=(1.0, 2.0, 4.0), init_scales=(1.0,))
    assert widened(_tuned([(om, 1.0) for om in (1.0, 2.0, 4.0)], (2.0, 1.0)), interior) == []
    assert widened(_tuned([(om, 1.0) for om in (1.0, 2.0, 4.0)], (4.0, 1.0)), interior) == [
        (8.0, 1.0)]
    # at most TUNE_WIDEN values past the config's grid
    far = [(om, 1.0) for om in (1.0, 2.0, 4.0) + tuple(8.0 * 2 ** i for i in range(TUNE_WIDEN))]
    assert widened(_tuned(far, (far[-1][0], 1.0)), interior) == []
    assert widened({"grid": []}, cfg) == []


def test_tuning_stage_brackets_its_optimum_or_stops_after_the_widening_limit(tmp_path):
    from initlab.lab.reproductions.mup_transfer import TUNE_WIDEN

    # two values: whichever wins sits on an edge, so the grid must grow toward it
    tiny = {**TINY, "sweeps": ("mlp",), "output_mults": (1.0, 2.0)}
    res = reproduce("mup-transfer", out=tmp_path / "mt", quiet=True, overrides=tiny)
    t = res["tuned"]["mlp"]["mup"]
    oms = sorted({g[0] for g in t["grid"]})
    grown = t["widened"]["output_mult"]
    assert 1 <= len(grown) <= TUNE_WIDEN and len(oms) == 2 + len(grown)
    assert len(res["tune_arms"]) == len(oms) * 2            # every value over the 2 lrs
    assert t["output_mult"] not in (oms[0], oms[-1]) or len(grown) == TUNE_WIDEN
    assert {a["output_mult"] for a in res["arms"]} == {t["output_mult"]}
    assert "so it grew: output multiplier" in (tmp_path / "mt" / "report.html").read_text()


def test_summary_reads_the_optimum_and_its_shift():
    cfg = Config(sweeps=("mlp",), mlp_widths=(1, 2), log2_lrs=(-3, -2, -1), seeds=(0, 1))
    arms = []
    for pname, best in (("sp", {1: -1, 2: -3}), ("mup", {1: -2, 2: -2})):
        for size in (1, 2):
            for k in (-3, -2, -1):
                for seed in (0, 1):
                    arms.append({"sweep": "mlp", "parametrization": pname, "size": size,
                                 "log2_lr": k, "seed": seed, "diverged": False,
                                 "train_loss": 1.0 + abs(k - best[size])})
    arms[0]["train_loss"] = None                    # a diverged arm counts as infinite loss
    rows = summarize(arms, cfg)
    assert [r["best_log2_lr"] for r in rows] == [-1, -3, -2, -2]
    assert shifts(rows, cfg) == {"mlp": {"sp": 2.0, "mup": 0.0}}
    # each seed's own shift (seed 0 of SP at size 1 has a diverged arm, not its optimum)
    assert seed_shifts(arms, cfg) == {"mlp": {"sp": [2.0, 2.0], "mup": [0.0, 0.0]}}


@pytest.mark.slow
def test_reduced_config_mup_moves_the_optimum_less_than_sp(tmp_path):
    # reduced config: MLP widths 64-1024 (2 seeds), row transformer widths 16-64, residual MLPs
    # of 1-8 blocks (2 seeds), Adam, log2 lr grid -12..-3, short training. Measured here (refined
    # optima, grid steps): MLP SP 2.8 / μP 1.4, transformer SP 2.0 / μP 0.7, depth SP 1.7 /
    # μP with 1/sqrt(L) 0.4. The ordering is the claim the reduced run can check; the full
    # config's numbers against the paper's are in RESULTS.md.
    res = reproduce("mup-transfer", out=tmp_path / "mt", quiet=True)
    assert set(res["shifts"]) == {"mlp", "transformer", "depth"}
    for sweep, moved in res["shifts"].items():
        assert moved["mup"] < moved["sp"], (sweep, moved, res["optima"])


def test_vertex_refines_the_optimum_between_grid_points():
    import math

    from initlab.lab.reproductions.mup_transfer import _vertex

    losses = [math.exp((x - 0.3) ** 2) for x in (-2, -1, 0, 1, 2)]   # log loss: a parabola
    assert _vertex(losses, 2) == pytest.approx(0.3)
    assert _vertex(losses, 0) == 0.0 and _vertex([1.0, float("inf"), 2.0], 1) == 0.0


def _tune_arms(losses):
    """Tuning arms at one size: ``losses[(output_mult, init_scale)][log2_lr]`` = per-seed losses."""
    return [{"sweep": "mlp", "parametrization": "mup", "output_mult": om, "init_scale": isc,
             "size": 256, "log2_lr": k, "seed": s, "train_loss": v, "diverged": False}
            for (om, isc), by_lr in losses.items() for k, vs in by_lr.items()
            for s, v in enumerate(vs)]


def test_the_one_standard_error_rule_picks_the_pair_nearest_the_defaults_within_the_noise():
    from dataclasses import replace

    from initlab.lab.reproductions.mup_transfer import tune_base, widened

    cfg = Config(log2_lrs=(-8, -7), output_mults=(1.0, 2.0, 8.0), init_scales=(1.0, 4.0))
    losses = {  # (8, x4) is lowest: mean 0.100 at -7, seeds 0.09 / 0.11, standard error 0.01
        (8.0, 4.0): {-8: [0.20, 0.22], -7: [0.09, 0.11]},
        (2.0, 1.0): {-8: [0.105, 0.107], -7: [0.30, 0.30]},   # 0.106: within 0.01
        (1.0, 4.0): {-8: [0.108, 0.108], -7: [0.20, 0.20]},   # 0.108: within, distance 2 too
        (1.0, 1.0): {-8: [0.111, 0.111], -7: [0.20, 0.20]},   # 0.111: just outside
        (8.0, 1.0): {-8: [0.50, 0.50], -7: [0.40, 0.40]},
        (2.0, 4.0): {-8: [0.50, 0.50], -7: [0.40, 0.40]},
    }
    arms = _tune_arms(losses)
    best = tune_base(arms, cfg, "mlp", "mup")
    assert (best["output_mult"], best["init_scale"], best["log2_lr"]) == (8.0, 4.0, -7)
    assert best["argmin"] == [8.0, 4.0] and best["tied"] == [[8.0, 4.0]]
    # sample std of (0.09, 0.11) is 0.01414; over sqrt(2) seeds: 0.01
    assert best["se"] == pytest.approx(0.01)
    one = tune_base(arms, replace(cfg, tie_rule="1se"), "mlp", "mup")
    # tied: (2, x1), (1, x4) and (8, x4) itself; (2, x1) and (1, x4) are both one doubling
    # from (1, x1) in |log2|: the lower loss of the two, (2, x1), at its own best lr
    assert sorted(map(tuple, one["tied"])) == [(1.0, 4.0), (2.0, 1.0), (8.0, 4.0)]
    assert (one["output_mult"], one["init_scale"], one["log2_lr"]) == (2.0, 1.0, -8)
    assert one["loss"] == pytest.approx(0.106)
    # the grid still grows around the lowest pair (8, x4 sits on the top of both axes), not
    # around the one the rule uses (2, x1: interior on both)
    assert widened(one, cfg) == widened(best, cfg) == [
        (16.0, 1.0), (16.0, 4.0), (1.0, 8.0), (2.0, 8.0), (8.0, 8.0), (16.0, 8.0)]
    with pytest.raises(InitlabError, match=r"`tie_rule` must be one of 'best', '1se'; got 'min'"):
        reproduce("mup-transfer", quiet=True, overrides={**TINY, "tie_rule": "min"})


def test_a_field_added_after_a_run_was_recorded_keeps_its_identity(tmp_path):
    """tie_rule at its default is left out of the identity, so run folders recorded before the
    field existed (results/mup-transfer-*) resume; another value is another experiment."""
    import json

    out = tmp_path / "mt"
    reproduce("mup-transfer", out=out, quiet=True, overrides={**TINY, "sweeps": ("mlp",)})
    held = json.loads((out / "checkpoint.json").read_text())["identity"]
    assert "tie_rule" not in held["config"]
    again = reproduce("mup-transfer", out=out, quiet=True, resume=True,
                      overrides={**TINY, "sweeps": ("mlp",)})
    assert again["shifts"]
    with pytest.raises(InitlabError, match=r"holds a different experiment \(another config: "
                       r"tie_rule \(not recorded: its default\) there, '1se' here\)"):
        reproduce("mup-transfer", out=out, quiet=True, resume=True,
                  overrides={**TINY, "sweeps": ("mlp",), "tie_rule": "1se"})
