"""Reproductions (``initlab reproduce NAME``): registry, CLI, output directory rules, Nielsen's
network in NumPy vs PyTorch, and one end-to-end check per case on its reduced config asserting
the published *ordering* (marked slow)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy import special

from initlab.cli import main
from initlab.core.validation import InitlabError
from initlab.lab.reproductions import get_case, names, reproduce
from initlab.lab.reproductions._common import Checkpoint

MNIST10K = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist10k.npz"
needs_mnist = pytest.mark.skipif(not MNIST10K.is_file(),
                                 reason="real MNIST digits not found (shared/data/mnist10k.npz "
                                        "beside the repository)")
ALL = ["depth-sweep", "glorot-bengio", "he-depth", "isometry", "mup-transfer", "ng-circles",
       "nielsen-ch3", "saxe-linear", "symmetry"]


# ------------------------------------------------------------------ registry and CLI
def test_names_and_case_interface():
    assert names() == ALL
    for n in ALL:
        case = get_case(n)
        assert case.NAME == n
        for attr in ("TITLE", "PAPER", "PUBLISHED", "run", "report", "config"):
            assert hasattr(case, attr), (n, attr)
        reduced, full = case.config(), case.config(True)
        assert reduced != full  # --full is a different (published-length) config


def test_unknown_name_lists_cases(capsys):
    with pytest.raises(InitlabError, match="`name` must be one of the reproductions: depth-sweep"):
        get_case("nope")
    assert main(["reproduce", "nope", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "unknown reproduction 'nope'" in err and all(n in err for n in ALL)
    assert main(["reproduce", "--list"]) == 0
    assert "nielsen-ch3" in capsys.readouterr().out


def test_bad_override_is_refused():
    with pytest.raises(InitlabError, match="`overrides` must name fields of symmetry's Config"):
        reproduce("symmetry", overrides={"nope": 1})


def test_glorot_bengio_refuses_an_activation_it_cannot_measure():
    # an unbounded activation once trained every arm, then failed unpacking its bounds (None)
    # with a bare TypeError
    with pytest.raises(InitlabError, match=r"`activations` must be one of 'tanh', 'sigmoid'; "
                       r"got 'relu'\. Fix: pass activations from"):
        reproduce("glorot-bengio", quiet=True,
                  overrides={"activations": ("relu",), "inits": ("standard",), "epochs": 1})


# ------------------------------------------------------------------ output directory
def test_checkpoint_refuses_other_experiments_and_resumes(tmp_path):
    calls = []
    ck = Checkpoint(tmp_path, {"case": "a", "config": {"x": 1}})
    assert ck.run("arm1", lambda: calls.append(1) or {"v": 1.5}) == {"v": 1.5}
    with pytest.raises(InitlabError, match="already holds this experiment"):
        Checkpoint(tmp_path, {"case": "a", "config": {"x": 1}})
    with pytest.raises(InitlabError, match="holds a different experiment"):
        Checkpoint(tmp_path, {"case": "a", "config": {"x": 2}}, resume=True)
    again = Checkpoint(tmp_path, {"case": "a", "config": {"x": 1}}, resume=True)
    assert again.run("arm1", lambda: calls.append(2) or {"v": 0.0}) == {"v": 1.5}
    assert calls == [1]  # the finished arm was not run again
    fresh = Checkpoint(tmp_path, {"case": "a", "config": {"x": 2}}, force=True)
    assert fresh.run("arm1", lambda: {"v": 7}) == {"v": 7}


def test_checkpoint_resumes_the_same_data_by_another_path(tmp_path, monkeypatch):
    # a run started with a relative --data-dir resumes by an absolute path (or from another
    # folder) when the bytes are the same; other data under the old name is refused
    data = tmp_path / "d" / "x.npz"
    data.parent.mkdir()
    data.write_bytes(b"digits" * 1000)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    ident = {"case": "a", "config": {"x": 1}, "data_dir": "d/x.npz"}
    Checkpoint(out, ident).run("arm1", lambda: {"v": 1})
    same = Checkpoint(out, {**ident, "data_dir": str(data)}, resume=True)
    assert same.arms == {"arm1": {"v": 1}} and same.identity == ident   # the held record kept
    copy = tmp_path / "elsewhere.npz"
    copy.write_bytes(data.read_bytes())
    assert Checkpoint(out, {**ident, "data_dir": str(copy)}, resume=True).arms
    copy.write_bytes(b"other" * 1000)
    with pytest.raises(InitlabError, match="holds a different experiment"):
        Checkpoint(out, {**ident, "data_dir": str(copy)}, resume=True)
    with pytest.raises(InitlabError, match="holds a different experiment"):  # and the config
        Checkpoint(out, {**ident, "config": {"x": 2}, "data_dir": str(data)}, resume=True)
    monkeypatch.chdir(tmp_path / "d")     # the held relative path no longer resolves: refused
    with pytest.raises(InitlabError, match="holds a different experiment"):
        Checkpoint(out, {**ident, "data_dir": str(data)}, resume=True)


def test_checkpoint_additive_fields_upgrade_a_held_run_and_nothing_else(tmp_path, monkeypatch):
    # a field that only adds arms (a case's ADDITIVE_FIELDS), absent from the held run: resumed,
    # arms kept, identity upgraded; by another path to the same bytes too (the held path kept)
    data = tmp_path / "x.npz"
    data.write_bytes(b"digits" * 1000)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    ident = {"case": "a", "config": {"x": 1}, "data_dir": "x.npz"}
    Checkpoint(out, ident).run("arm1", lambda: {"v": 1})
    more = {**ident, "config": {"x": 1, "extra": 3}, "data_dir": str(data)}
    ck = Checkpoint(out, more, resume=True, additive=("extra",))
    assert ck.arms == {"arm1": {"v": 1}}
    assert ck.identity == {**more, "data_dir": "x.npz"}
    ck.run("arm2", lambda: {"v": 2})
    assert json.loads((out / "checkpoint.json").read_text())["identity"] == ck.identity
    fresh = tmp_path / "fresh"
    Checkpoint(fresh, ident).run("a", lambda: 1)
    for bad, kw in (({**ident, "config": {"x": 1, "extra": 3}}, {}),         # not declared
                    ({**ident, "config": {"x": 2, "extra": 4}}, {"additive": ("extra",)})):
        with pytest.raises(InitlabError, match="holds a different experiment"):
            Checkpoint(fresh, bad, resume=True, **kw)
    # the upgraded run is refused without the field (its arms are more than that config's)
    with pytest.raises(InitlabError, match="extra 3 there"):
        Checkpoint(out, ident, resume=True, additive=("extra",))


def test_reproduce_writes_results_and_report(tmp_path):
    out = tmp_path / "sym"
    res = reproduce("symmetry", out=out, quiet=True, overrides={"epochs": 1, "width": 8})
    saved = json.loads((out / "results.json").read_text())
    assert saved["identity"]["case"] == "symmetry"
    assert saved["results"]["headline"] == res["headline"]
    html = (out / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert "data:image/png;base64," in html and "Rumelhart" in html
    # the same experiment again: refused without --resume, reused with it
    with pytest.raises(InitlabError, match="--resume"):
        reproduce("symmetry", out=out, quiet=True, overrides={"epochs": 1, "width": 8})
    res2 = reproduce("symmetry", out=out, quiet=True, resume=True,
                     overrides={"epochs": 1, "width": 8})
    assert res2["runs"] == res["runs"]
    # exit code 2 and a clear message for a different experiment in the same directory
    assert main(["reproduce", "symmetry", "--out", str(out), "--quiet"]) == 2


# ------------------------------------------------------------------ Nielsen's network
def _nielsen_per_example(weights, biases, xs, ys, eta, lmbda, n):
    """network2.py's update_mini_batch/backprop, literally: one example at a time."""
    nabla_b = [np.zeros_like(b) for b in biases]
    nabla_w = [np.zeros_like(w) for w in weights]
    for x, y in zip(xs, ys):
        x, y = x.reshape(-1, 1), y.reshape(-1, 1)
        acts, zs, a = [x], [], x
        for b, w in zip(biases, weights):
            z = w @ a + b
            zs.append(z)
            a = special.expit(z)
            acts.append(a)
        delta = acts[-1] - y
        db, dw = [None] * len(weights), [None] * len(weights)
        db[-1], dw[-1] = delta, delta @ acts[-2].T
        for l in range(2, len(weights) + 1):  # noqa: E741
            sp = special.expit(zs[-l]) * (1 - special.expit(zs[-l]))
            delta = (weights[-l + 1].T @ delta) * sp
            db[-l], dw[-l] = delta, delta @ acts[-l - 1].T
        nabla_b = [a + b for a, b in zip(nabla_b, db)]
        nabla_w = [a + b for a, b in zip(nabla_w, dw)]
    m = len(xs)
    return ([(1 - eta * lmbda / n) * w - (eta / m) * nw for w, nw in zip(weights, nabla_w)],
            [b - (eta / m) * nb for b, nb in zip(biases, nabla_b)])


def test_nielsen_vectorized_update_is_his_per_example_update():
    from initlab.lab.reproductions.nielsen_ch3 import NielsenNetwork, initial_params

    w, b = initial_params([20, 7, 4], "nielsen_large", seed=3)
    rng = np.random.default_rng(0)
    x = rng.random((10, 20))
    y = np.eye(4)[rng.integers(0, 4, 10)]
    net = NielsenNetwork(w, b)
    net.update_mini_batch(x.T, y.T, 0.1, 5.0, 1000)
    ref_w, ref_b = _nielsen_per_example(w, b, x, y, 0.1, 5.0, 1000)
    for a, r in zip(net.weights + net.biases, ref_w + ref_b):
        np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-13)


def test_nielsen_initial_params_follow_his_initializers():
    from initlab.lab.reproductions.nielsen_ch3 import initial_params

    w, b = initial_params([784, 100, 10], "nielsen_default", seed=0)
    # W ~ N(0, 1/784): the sample variance of 78,400 draws has relative std sqrt(2/78399)
    # = 0.0051; 6 sigma = 3.1%. Biases N(0, 1): 100 draws, relative std sqrt(2/99) = 0.14; 6
    # sigma would be 85%, so check only loosely that they are not scaled like the weights.
    assert abs(w[0].var() * 784 - 1.0) < 0.031
    assert w[0].shape == (100, 784) and b[0].shape == (100, 1)
    assert 0.3 < b[0].var() < 2.5


@needs_mnist
def test_nielsen_numpy_and_torch_agree_within_0_2_points():
    from initlab.lab.reproductions import nielsen_ch3 as nc

    cfg = replace(nc.config(), n_train=1000, n_test=1000, epochs=2, seeds=(0,))
    data = nc.load(cfg, str(MNIST10K))
    assert 0.0 <= data[0].min() and data[0].max() <= 1.0  # Nielsen's [0, 1] pixels
    for init in cfg.inits:
        w, b = nc.initial_params([784, 30, 10], init, seed=0)
        orders = nc.batch_orders(len(data[1]), cfg.epochs, seed=1)
        kw = {"eta": cfg.eta, "lmbda": cfg.lmbda, "batch_size": cfg.batch_size}
        a = nc.train_numpy(w, b, data, orders, **kw)["eval_accuracy"]
        t = nc.train_torch(w, b, data, orders, dtype="float64", **kw)["eval_accuracy"]
        assert np.max(np.abs(np.subtract(a, t))) <= 0.2, (init, a, t)
        t32 = nc.train_torch(w, b, data, orders, dtype="float32", **kw)["eval_accuracy"]
        assert np.max(np.abs(np.subtract(a, t32))) <= 1.0, (init, a, t32)


# ------------------------------------------------------------------ end-to-end, reduced configs
@pytest.mark.slow
def test_ng_circles_ordering():
    res = reproduce("ng-circles", quiet=True)
    s = res["summary"]
    assert s["zeros"]["train_acc"] == 0.5 and s["zeros"]["test_acc"] == 0.5
    # zeros: output sigmoid(0) = 1/2 whatever the input, so the cost is exactly ln 2 throughout
    assert all(abs(c - math.log(2)) < 1e-9 for c in res["runs"][0]["cost"])
    assert res["runs"][0]["distinct_first_layer_units"] == 1
    # means over seeds: from randn*10 single seeds range from ~0.6 to 0.99, He is >= 0.97 always
    assert s["he"]["train_acc"] > s["large"]["train_acc"] and s["he"]["test_acc"] > s["large"]["test_acc"]
    assert min(r["train_acc"] for r in res["runs"] if r["init"] == "he") >= 0.95
    assert s["large"]["train_acc"] > 0.6  # large does learn, slowly (Ng: 0.83)


@pytest.mark.slow
@needs_mnist
def test_nielsen_default_above_large_at_epoch_1():
    res = reproduce("nielsen-ch3", data_dir=str(MNIST10K), quiet=True)
    curve = res["summary"]["30"]
    assert curve["nielsen_default"][0] > curve["nielsen_large"][0] + 3.0
    assert all(a["max_abs_diff_points"] <= 0.2 for a in res["torch_agreement"])


@pytest.mark.slow
def test_symmetry_zero_init_units_stay_identical():
    res = reproduce("symmetry", quiet=True)
    by = {r["init"]: r for r in res["runs"]}
    width = res["config"]["width"]
    assert by["zeros"]["distinct_units"] == [1] * len(by["zeros"]["distinct_units"])
    if by["zeros"]["doctor_distinct_units"][0] is not None:  # the doctor's check agrees
        assert set(by["zeros"]["doctor_distinct_units"]) == {1}
        assert by["small_normal"]["doctor_distinct_units"][-1] == width
    assert set(by["constant"]["distinct_units"]) == {1}
    assert by["small_normal"]["distinct_units"][-1] == width
    assert by["small_normal"]["test_acc"][-1] > by["zeros"]["test_acc"][-1]


@pytest.mark.slow
def test_he_depth_signal_ratio_and_training():
    res = reproduce("he-depth", quiet=True)
    sig = res["signal"]
    # The mean log2 std ratio estimates -L/2 = -15 (exactly: on square layers Xavier's weights
    # are He's times 2^(-1/2) in distribution, and ReLU nets are positively homogeneous). Its
    # standard error comes from the spread over independent networks; 6 SE never flakes.
    assert abs(sig["log2_ratio"] - (-15.0)) <= 6 * sig["log2_ratio_se"] + 1e-9
    assert sig["log2_ratio_se"] < 0.6  # the measurement is precise enough to mean something
    acc = res["final_test_acc"]
    assert acc["xavier"] < 0.2 and acc["he"] > acc["xavier"] + 0.15  # Xavier at chance, He learns


@pytest.mark.slow
def test_saxe_orthogonal_flat_gaussian_grows():
    res = reproduce("saxe-linear", quiet=True)
    s = res["summary"]
    d0, d1 = (str(d) for d in (min(res["config"]["depths"]), max(res["config"]["depths"])))
    assert s["orthogonal"][d1] is not None and s["orthogonal"][d1] <= 2 * s["orthogonal"][d0]
    g = s["scaled_gaussian"][d1]
    assert g is None or g > 2 * s["scaled_gaussian"][d0]
    assert g is None or g > s["orthogonal"][d1]


@pytest.mark.slow
def test_depth_sweep_edge_of_chaos_trains_deepest():
    res = reproduce("depth-sweep", quiet=True)
    deepest = max(res["config"]["depths"])
    acc = {g["sigma_w2"]: g["train_acc"] for g in res["grid"] if g["depth"] == deepest}
    assert acc[1.761] > acc[0.5] + 0.3
    xi = res["six_xi_c"]
    if xi["0.5"] is not None:  # initlab.theory installed: the map agrees with 6 xi_c
        assert xi["0.5"] < deepest < xi["1.761"]


@pytest.mark.slow
def test_glorot_bengio_jacobian_singular_values():
    res = reproduce("glorot-bengio", quiet=True)
    by = {(r["activation"], r["init"]): r for r in res["runs"]}
    sv = {k: float(np.mean(r["at_init"]["jacobian_mean_sv"])) for k, r in by.items()}
    # tanh near 0 is linear, so these are the mean singular values of W: sqrt(n Var w) * 8/(3 pi)
    # (quarter-circle law mean) = 0.49 standard, 0.85 normalized, a little less with f' < 1;
    # the paper reports ~0.5 and ~0.8.
    assert 0.4 < sv[("tanh", "standard")] < 0.6
    assert 0.65 < sv[("tanh", "normalized")] < 0.9
    assert sv[("sigmoid", "normalized")] > sv[("sigmoid", "standard")]
    hist = by[("tanh", "standard")]["at_init"]["layers"][0]["hist"]
    assert sum(hist) == res["config"]["n_stats"] * res["config"]["width"]


def test_initialize_goes_through_a_model_level_plan():
    from initlab.lab.reproductions._common import initialize, mlp

    model = mlp([400, 300, 10], "relu")
    assert initialize(model, "he_normal", "zeros", seed=0) == "Plan(Rule(Linear))"
    w = model[0].weight.detach().double().numpy()
    # Var(w) = 2/400; the sample variance of 120,000 normal draws has relative std
    # sqrt(2/119999) = 0.0041; 6 sigma = 2.5%.
    assert abs(w.var() * 200 - 1.0) < 0.025
    assert float(model[0].bias.detach().abs().max()) == 0.0
