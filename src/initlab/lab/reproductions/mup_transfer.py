"""Yang et al. 2022, "Tensor Programs V: Tuning Large Neural Networks via Zero-Shot Hyperparameter
Transfer", Figure 1: under the standard parametrization (SP) the best learning rate moves as the
model gets wider; under μP it stays, so a learning rate tuned on a small model is right for a
large one. And Tensor Programs VI (Yang et al. 2023): the same in depth with residual branches
scaled by 1/sqrt(L).

Here: each arm trains one model from scratch with Adam at one learning rate of a log2 grid and
records its final training loss. Three sweeps, SP beside μP (:func:`initlab.parametrize`, base
width = the smallest width, base depth = the shallowest depth):

* ``mlp``: a 2-hidden-layer ReLU MLP, widths ``mlp_widths``;
* ``transformer``: :class:`initlab.lab.models.RowTransformer` (rows of pixels as tokens, 4 heads,
  2 pre-norm blocks), widths ``transformer_widths``;
* ``depth``: a residual ReLU MLP (``resmlp``) of fixed width with ``depths`` residual blocks,
  SP against μP with ``depth="sqrt"``.

μTransfer (Tensor Programs V, §"μTransfer"): the hyperparameters other than the lr, here the
output (readout) multiplier and the init scale (a factor on every weight's init std), are tuned on
a small *proxy* model and transferred. With more than one value in ``output_mults`` or
``init_scales`` a first stage trains the proxy size (``tune_sizes``; default the base size:
smallest width, shallowest depth) for every pair over the lr grid; the pair whose best lr gives
the lowest mean loss is used at every size (``tie_rule="1se"``: the pair nearest mup's defaults
among those within one standard error of the lowest; :func:`tune_base`). A pair on an edge of the grid grows it past that
edge (:func:`widened`, at most :data:`TUNE_WIDEN` values per edge), so the optimum is bracketed.
SP and μP are tuned alike on the same proxy, each for
itself (at the base size they are one model, trained once). SP keeps the pair as constants
(readout multiplier, init factor); μP applies it on top of its width scaling (readout multiplier
``output_mult / m``).

For each (sweep, parametrization, width or depth) the optimal log2 lr is the grid point with the
lowest mean training loss over the seeds; its spread is the standard deviation of the seeds' own
optima. The optimum is refined between grid points by a parabola through the log losses around
the best grid point (the basins are flat near the optimum, where the grid argmin alone flips with
noise). The shift is the largest minus the smallest optimum across sizes, in grid steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...core.validation import check_choice, fail
from ._common import Checkpoint, load_data, plt, run_arms

NAME = "mup-transfer"
TITLE = "Yang et al. 2022 (Tensor Programs V), Fig. 1: the optimal learning rate under SP and μP"
PAPER = ('G. Yang, E. J. Hu, I. Babuschkin, S. Sidor, X. Liu, D. Farhi, N. Ryder, J. Pachocki, '
         'W. Chen, J. Gao, "Tensor Programs V: Tuning Large Neural Networks via Zero-Shot '
         'Hyperparameter Transfer", 2022 (fig. 1, 3); G. Yang, D. Yu, C. Zhu, S. Hayou, "Tensor '
         'Programs VI: Feature Learning in Infinite-Depth Neural Networks", 2023')
PUBLISHED = {
    "claim_sp": "under SP the optimal learning rate shifts with width (for Adam, smaller for "
                "wider models), and wider models can do worse than narrower ones",
    "claim_mup": "under μP the optimal learning rate is stable across widths and wider is "
                 "always better (fig. 1: transformers on WikiText-2, widths 128-8192)",
    "claim_depth": "with branches scaled by 1/sqrt(L) the optimal learning rate is stable "
                   "across depths (Tensor Programs VI)",
}
DATA_NOTE = ("The paper trains transformers on WikiText-2 (and MLPs on CIFAR-10) at widths up to "
             "8192; here MLPs and a small row-token transformer on digits (8x8, built in) or the "
             "MNIST subset given by --data-dir, at widths a 2-core CPU can train.")
SWEEPS = ("mlp", "transformer", "depth")
#: how many values the base-model tuning may add past each edge of its grid (:func:`widened`)
TUNE_WIDEN = 2
PARAMETRIZATIONS = ("sp", "mup")
#: what a run costs (1 thread, idle 2-core x86 machine); both resume with --resume
TIME_BUDGET = {"reduced": "about 3 minutes (340 arms)",
               "full": "about 50 minutes on digits (3,640 arms: 2,080 tuning the base "
                       "hyperparameters, 1,560 lr sweeps; each value the tuning adds past an "
                       "edge of its grid adds 26 arms per pair); on the MNIST subset "
                       "(--data-dir) about 9 CPU-hours (3,952 arms with the grid grown past 3 "
                       "edges: 4.4 h wall with --workers 2)"}


@dataclass(frozen=True)
class Config:
    dataset: str = "digits"                       # "mnist" with --data-dir
    mlp_widths: tuple[int, ...] = (64, 256, 1024)
    transformer_widths: tuple[int, ...] = (16, 32, 64)
    depth_width: int = 64
    depths: tuple[int, ...] = (1, 2, 4, 8)        # residual blocks (base depth: the smallest)
    log2_lrs: tuple[int, ...] = tuple(range(-12, -2))
    sweeps: tuple[str, ...] = SWEEPS
    # short training: the optimum is read where the loss still depends on the lr (after many
    # epochs on 1,437 digits every run fits the training set and the curves flatten)
    epochs: int = 1                               # mlp and depth sweeps
    transformer_epochs: int = 2
    batch_size: int = 64
    n_train: int | None = None                    # None: the whole training split
    seeds: tuple[int, ...] = (0, 1)
    transformer_seeds: tuple[int, ...] = (0,)
    # μTransfer's base-model tuning (first stage, at the base size, for SP and μP alike): the
    # readout multiplier and the factor on every weight's init std; one value each = no tuning
    output_mults: tuple[float, ...] = (1.0,)
    init_scales: tuple[float, ...] = (1.0,)
    # the proxy size each sweep is tuned at, as (sweep, size) pairs; a sweep not named is tuned
    # at its base size (where SP and μP are one model)
    tune_sizes: tuple[tuple[str, int], ...] = ()
    # the seeds of the tuning stage (None: each sweep's own seeds)
    tune_seeds: tuple[int, ...] | None = None
    # zero the readout at init (mup's readout_zero_init): True in SP and μP alike, or the
    # parametrizations to zero it in, e.g. ("mup",): μP as Tensor Programs V's practical notes
    # and mup's examples run it, beside SP as torch's default (:func:`zero_readout`)
    readout_zero_init: bool | tuple[str, ...] = False
    # zero every attention's query at init (mutransformers' query_zero_init), in the same form;
    # only the transformer has attention, so the other sweeps ignore it
    query_zero_init: bool | tuple[str, ...] = False
    # which tuned pair is used (:data:`TIE_RULES`): "best", the lowest mean loss; "1se", among
    # the pairs within one standard error of it, the one nearest mup's defaults (1, 1)
    tie_rule: str = "best"


#: ``Config.tie_rule`` values (:func:`tune_base`)
TIE_RULES = ("best", "1se")
#: Config fields added after runs were recorded (results/mup-transfer-*): omitted from a run's
#: identity at these values, so the recorded runs resume and rewrite as before
IDENTITY_DEFAULTS = {"tie_rule": "best"}


def config(full: bool = False) -> Config:
    """The reduced config (default), or with ``full`` the full sweep (:data:`TIME_BUDGET`)."""
    if full:
        return Config(mlp_widths=(64, 128, 256, 512, 1024, 2048),
                      transformer_widths=(32, 64, 128, 256), depth_width=128,
                      depths=(2, 4, 8, 16, 32), log2_lrs=tuple(range(-14, -1)),
                      sweeps=SWEEPS, seeds=(0, 1, 2, 3), transformer_seeds=(0, 1, 2, 3),
                      # the basins are flat: 4 seeds per lr sweep, 2 for the tuning stage
                      tune_seeds=(0, 1),
                      output_mults=(1.0, 2.0, 4.0, 8.0, 16.0), init_scales=(0.5, 1.0, 2.0, 4.0),
                      # width 64 is too narrow a proxy for the MLP (RESULTS.md: the pair best
                      # there is not the one best at 256 and 2048); the transformer's width 32
                      # is tuned at the base to bound the cost
                      tune_sizes=(("mlp", 256),))
    return Config()


def _builder(sweep: str, cfg: Config, data, width: int | None = None):
    """size -> model (size: width for mlp/transformer, residual blocks for depth; ``width``: the
    depth sweep's width instead of ``cfg.depth_width``)."""
    from ..models import ModelConfig, RowTransformer, build_model

    if sweep == "transformer":
        side = int(round(math.sqrt(data.n_features)))
        return lambda w: RowTransformer(w, rows=side, cols=data.n_features // side,
                                        n_classes=data.n_classes)
    if sweep == "mlp":
        return lambda w: build_model(ModelConfig(kind="mlp", depth=2, width=w, activation="relu",
                                                 in_shape=(data.n_features,),
                                                 n_classes=data.n_classes))
    return lambda d: build_model(ModelConfig(kind="resmlp", depth=d, width=width or cfg.depth_width,
                                             activation="relu", in_shape=(data.n_features,),
                                             n_classes=data.n_classes))


def seeds(sweep: str, cfg: Config) -> tuple[int, ...]:
    return cfg.transformer_seeds if sweep == "transformer" else cfg.seeds


def sizes(sweep: str, cfg: Config) -> tuple[int, ...]:
    return {"mlp": cfg.mlp_widths, "transformer": cfg.transformer_widths,
            "depth": cfg.depths}[sweep]


def train_one(sweep: str, par_name: str, size: int, log2_lr: int, seed: int, cfg: Config,
              data, output_mult: float = 1.0, init_scale: float = 1.0) -> dict:
    """One arm: the model at ``size`` under ``par_name`` with the base hyperparameters
    ``output_mult`` and ``init_scale`` (see the module docs), Adam at lr ``2**log2_lr``."""
    from ...modelinit.parametrization import parametrize
    from ..train import TrainConfig, train

    build = _builder(sweep, cfg, data)
    model = build(size)
    base = min(sizes(sweep, cfg))
    lr = 2.0 ** log2_lr
    if sweep == "depth":
        # the width does not change: μP is SP in width here, and depth="sqrt" scales branches;
        # the same depth at twice the width (delta) tells which layer is the readout
        wide = _builder(sweep, cfg, data, width=2 * cfg.depth_width)
        kw: dict[str, Any] = {"base": lambda: build(size), "delta": lambda: wide(size)}
        if par_name == "mup":
            kw.update(depth="sqrt", base_depth=base)   # one residual branch per block
    else:
        # delta (the base at twice its width) finds the widths at the base width too
        kw = {"base": lambda: build(base), "delta": lambda: build(2 * base)}
    par = parametrize(model, par_name, seed=seed, output_mult=output_mult,
                      readout_zero_init=zero_readout(cfg, par_name),
                      query_zero_init=sweep == "transformer" and zero_query(cfg, par_name), **kw)
    _base_hyperparameters(model, init_scale)
    epochs = cfg.transformer_epochs if sweep == "transformer" else cfg.epochs
    tc = TrainConfig(optimizer="adam", lr=lr, batch_size=cfg.batch_size, epochs=epochs)
    hist = train(model, data, tc, seed=seed, param_groups=par.param_groups(lr, "adam"))
    par.remove()
    last = hist[-1]
    return {"sweep": sweep, "parametrization": par_name, "size": size, "log2_lr": log2_lr,
            "seed": seed, "output_mult": output_mult, "init_scale": init_scale,
            "train_loss": last["train_loss"], "test_acc": last["test_acc"],
            "diverged": bool(last["diverged"])}


def _arm(sweep: str, par_name: str, size: int, log2_lr: int, seed: int, cfg: Config,
         output_mult: float, init_scale: float, *, data) -> dict:
    """:func:`train_one` in :func:`run_arms`' calling convention (``data`` by keyword)."""
    return train_one(sweep, par_name, size, log2_lr, seed, cfg, data, output_mult, init_scale)


def _base_hyperparameters(model, init_scale: float):
    """Apply the tuned base hyperparameter that :func:`parametrize` does not: every weight's
    init x ``init_scale`` (both parametrizations; the output multiplier is ``parametrize``'s:
    a constant under SP, ``output_mult / m`` under μP)."""
    import torch

    if init_scale != 1.0:
        with torch.no_grad():
            for p in model.parameters():
                if p.dim() >= 2:
                    p.mul_(init_scale)


def tune_base(arms: list[dict], cfg: Config, sweep: str, par_name: str | None = None) -> dict:
    """The base hyperparameters of ``sweep`` (for ``par_name``; None: any) from the first-stage
    arms: for each (output_mult, init_scale) the mean loss over seeds at its best lr; the lowest
    wins under ``cfg.tie_rule`` "best" (the defaults when there is nothing to tune). Under
    "1se" (the one-standard-error rule of Breiman et al. 1984's CART): among the pairs whose
    loss is within one standard error of the lowest (the lowest pair's seeds' std / sqrt(n) at
    its best lr), the one nearest mup's defaults, by |log2 output_mult| + |log2 init_scale|
    (then by loss): the choice then does not hang on differences the seeds cannot resolve. The
    pairs are the ones the arms hold: the config's grid and any value :func:`widened` added.
    Returns ``{"output_mult", "init_scale", "log2_lr", "loss", "size", "grid": [[output_mult,
    init_scale, best log2 lr, loss], ...], "widened": {"output_mult": [...], "init_scale":
    [...]}}`` (the values beyond the config's), with ``"argmin"``: the lowest pair
    ``[output_mult, init_scale]`` (the one :func:`widened` brackets), ``"se"``: its standard
    error, and ``"tied"``: the pairs within it (under "1se"; else just the lowest)."""
    sel = [a for a in arms if a["sweep"] == sweep
           and (par_name is None or a["parametrization"] == par_name)]
    grid = []
    se_of = {}
    size = None
    oms = sorted({a["output_mult"] for a in sel})
    iscs = sorted({a["init_scale"] for a in sel})
    for om in oms:
        for isc in iscs:
            cell = [a for a in sel if a["output_mult"] == om and a["init_scale"] == isc]
            if not cell:
                continue
            size = cell[0]["size"]
            mean = [np.mean([_loss(a) for a in cell if a["log2_lr"] == k])
                    for k in cfg.log2_lrs]
            best = int(np.argmin(mean))
            grid.append([om, isc, cfg.log2_lrs[best], float(mean[best])])
            at = [_loss(a) for a in cell if a["log2_lr"] == cfg.log2_lrs[best]]
            se_of[(om, isc)] = (float(np.std(at, ddof=1) / math.sqrt(len(at)))
                                if len(at) > 1 and all(map(math.isfinite, at)) else 0.0)
    widened = {"output_mult": [v for v in oms if v not in cfg.output_mults],
               "init_scale": [v for v in iscs if v not in cfg.init_scales]}
    if not grid:
        return {"output_mult": 1.0, "init_scale": 1.0, "log2_lr": None, "loss": None,
                "size": None, "grid": [], "widened": widened, "argmin": [1.0, 1.0], "se": None,
                "tied": []}
    low = min(grid, key=lambda g: g[3])
    se = se_of[(low[0], low[1])]
    tied = [g for g in grid if g[3] <= low[3] + se] if cfg.tie_rule == "1se" else [low]
    om, isc, k, loss = min(tied, key=lambda g: (abs(math.log2(g[0])) + abs(math.log2(g[1])),
                                                g[3]))
    return {"output_mult": om, "init_scale": isc, "log2_lr": k, "loss": loss, "size": size,
            "grid": grid, "widened": widened, "argmin": [low[0], low[1]], "se": se,
            "tied": [[g[0], g[1]] for g in tied]}


def widened(t: dict, cfg: Config) -> list[tuple[float, float]]:
    """The (output_mult, init_scale) pairs the tuning stage trains next, given its result ``t``
    (:func:`tune_base`): when the best pair sits on the largest (smallest) value of a tuned axis,
    that axis grows by the next value, x2 (/2), for every value of the other axis, so the optimum
    is bracketed instead of taken at the grid's edge. An axis of one value is not tuned and never
    grows; one grows at most :data:`TUNE_WIDEN` times past the config's grid."""
    if not t["grid"]:
        return []
    oms = sorted({g[0] for g in t["grid"]})
    iscs = sorted({g[1] for g in t["grid"]})

    def grow(values, given, best):
        if len(given) < 2 or len(values) - len(given) >= TUNE_WIDEN:
            return []
        if best == values[-1]:
            return [best * 2.0]
        if best == values[0]:
            return [best / 2.0]
        return []

    best_om, best_isc = t["argmin"]  # bracket the lowest pair, whichever the tie rule uses
    new_oms = grow(oms, cfg.output_mults, best_om)
    new_iscs = grow(iscs, cfg.init_scales, best_isc)
    return ([(om, isc) for om in new_oms for isc in iscs]
            + [(om, isc) for isc in new_iscs for om in oms + new_oms])


def tune_size(sweep: str, cfg: Config) -> int:
    """The proxy size ``sweep`` is tuned at (:attr:`Config.tune_sizes`, else its base size)."""
    return dict(cfg.tune_sizes).get(sweep, min(sizes(sweep, cfg)))


def _zero_for(field_name: str, z, par_name: str) -> bool:
    if isinstance(z, bool):
        return z
    bad = sorted(set(z) - set(PARAMETRIZATIONS))
    if bad:
        raise fail(field_name, f"must be a bool or names from {list(PARAMETRIZATIONS)}",
                   bad, "pass e.g. ('mup',) to zero it under μP only.")
    return par_name in z


def zero_readout(cfg: Config, par_name: str) -> bool:
    """Whether arms under ``par_name`` start with a zero readout (:attr:`Config.readout_zero_init`)."""
    return _zero_for("readout_zero_init", cfg.readout_zero_init, par_name)


def zero_query(cfg: Config, par_name: str) -> bool:
    """Whether transformer arms under ``par_name`` start with zero queries
    (:attr:`Config.query_zero_init`)."""
    return _zero_for("query_zero_init", cfg.query_zero_init, par_name)


def _tuned_at_base(sweep: str, cfg: Config) -> bool:
    """Whether ``sweep``'s proxy is its base size with one readout (and, for the transformer,
    query) init for SP and μP: there they are one model (tuned once)."""
    same_query = sweep != "transformer" or len({zero_query(cfg, p)
                                                for p in PARAMETRIZATIONS}) == 1
    return (tune_size(sweep, cfg) == min(sizes(sweep, cfg)) and same_query
            and len({zero_readout(cfg, p) for p in PARAMETRIZATIONS}) == 1)


def _tuned_as(sweep: str, par_name: str, cfg: Config) -> str | None:
    """The ``par_name`` :func:`tune_base` reads ``sweep``'s tuning arms under: None (either) when
    the proxy is the base size, where SP and μP are one model tuned once."""
    return None if _tuned_at_base(sweep, cfg) else par_name


def _tuning(cfg: Config) -> bool:
    return len(cfg.output_mults) * len(cfg.init_scales) > 1


def _loss(a: dict) -> float:
    v = a["train_loss"]
    return float("inf") if v is None or a["diverged"] or not math.isfinite(v) else float(v)


def _vertex(losses: list[float], k: int) -> float:
    """Offset (in grid steps, within +-1/2) of the minimum of the parabola through log(loss) at
    grid points k-1, k, k+1: the optimum between grid points, less noisy than the argmin alone
    where the basin is flat. 0 at the grid's ends or where a neighbour diverged."""
    if k == 0 or k == len(losses) - 1:
        return 0.0
    y = np.log(np.asarray(losses[k - 1:k + 2], dtype=float))
    if not np.all(np.isfinite(y)):
        return 0.0
    curv = y[0] - 2 * y[1] + y[2]
    return float(np.clip(0.5 * (y[0] - y[2]) / curv, -0.5, 0.5)) if curv > 0 else 0.0


def _grid_step(lrs) -> float:
    """The log2 lr grid's step (1 for a one-point grid)."""
    return float(np.median(np.diff(lrs))) if len(lrs) > 1 else 1.0


def _refined(losses: list[float], lrs: list[int]) -> float:
    """The optimal log2 lr: the grid argmin of ``losses``, refined by :func:`_vertex`."""
    best = int(np.argmin(losses))
    return float(lrs[best]) + _vertex(losses, best) * _grid_step(lrs)


def summarize(arms: list[dict], cfg: Config) -> list[dict]:
    """Per (sweep, parametrization, size): the optimal log2 lr (lowest mean loss over seeds),
    the seeds' spread of their own optima, and the loss there."""
    from ..compare import mean_std

    rows = []
    lrs = list(cfg.log2_lrs)
    for sweep in cfg.sweeps:
        for pname in PARAMETRIZATIONS:
            for size in sizes(sweep, cfg):
                cell = [a for a in arms if a["sweep"] == sweep and a["parametrization"] == pname
                        and a["size"] == size]
                if not cell:
                    continue
                mean = [float(np.mean([_loss(a) for a in cell if a["log2_lr"] == k]))
                        for k in lrs]
                best = int(np.argmin(mean))
                refined = _refined(mean, lrs)
                per_seed = []
                for s in seeds(sweep, cfg):
                    ls = [next((_loss(a) for a in cell if a["log2_lr"] == k and a["seed"] == s),
                               float("inf")) for k in lrs]
                    per_seed.append(lrs[int(np.argmin(ls))])
                rows.append({"sweep": sweep, "parametrization": pname, "size": size,
                             "best_log2_lr": lrs[best], "refined_log2_lr": refined,
                             # sample std of the seeds' own optima, as RESULTS.md
                             "seed_std": mean_std(per_seed)[1],
                             "best_loss": float(mean[best]),
                             "losses": [None if not math.isfinite(m) else float(m)
                                        for m in mean]})
    return rows


def shifts(rows: list[dict], cfg: Config, key: str = "refined_log2_lr"
           ) -> dict[str, dict[str, float]]:
    """sweep -> parametrization -> how far the optimum moves across sizes, in grid steps (the
    refined optimum by default; ``key="best_log2_lr"`` for the grid argmin)."""
    step = _grid_step(cfg.log2_lrs)
    out: dict[str, dict[str, float]] = {}
    for sweep in cfg.sweeps:
        for pname in PARAMETRIZATIONS:
            best = [r[key] for r in rows
                    if r["sweep"] == sweep and r["parametrization"] == pname]
            if best:
                out.setdefault(sweep, {})[pname] = round(float((max(best) - min(best)) / step), 3)
    return out


def seed_shifts(arms: list[dict], cfg: Config) -> dict[str, dict[str, list[float]]]:
    """sweep -> parametrization -> each seed's own shift (its refined optimum per size, largest
    minus smallest across sizes, in grid steps): the seeds' spread of :func:`shifts`."""
    lrs = list(cfg.log2_lrs)
    step = _grid_step(lrs)
    out: dict[str, dict[str, list[float]]] = {}
    for sweep in cfg.sweeps:
        for pname in PARAMETRIZATIONS:
            per_seed = []
            for s in seeds(sweep, cfg):
                opt = []
                for size in sizes(sweep, cfg):
                    by_lr = {a["log2_lr"]: _loss(a) for a in arms if a["sweep"] == sweep
                             and a["parametrization"] == pname and a["size"] == size
                             and a["seed"] == s}
                    if by_lr:
                        opt.append(_refined([by_lr.get(k, float("inf")) for k in lrs], lrs))
                if len(opt) > 1:
                    per_seed.append(round((max(opt) - min(opt)) / step, 3))
            if per_seed:
                out.setdefault(sweep, {})[pname] = per_seed
    return out


def widest(rows: list[dict], cfg: Config) -> dict[str, dict[str, float]]:
    """sweep -> parametrization -> the largest size's mean training loss at its own best lr."""
    out: dict[str, dict[str, float]] = {}
    for sweep in cfg.sweeps:
        top = max(sizes(sweep, cfg))
        for r in rows:
            if r["sweep"] == sweep and r["size"] == top:
                out.setdefault(sweep, {})[r["parametrization"]] = r["best_loss"]
    return out


def run(cfg: Config, *, data_dir=None, quiet: bool = False,
        checkpoint: Checkpoint | None = None, workers: int = 1) -> dict:
    """Run every arm (finished arms come from ``checkpoint``); return the results: first the
    base-model tuning (when ``cfg`` has more than one output multiplier or init scale), then the
    lr sweeps at every size with the tuned base hyperparameters. ``workers``: processes to train
    the arms in (:func:`~initlab.lab.reproductions._common.run_arms`; the arms are independent,
    so the results do not depend on it)."""
    check_choice(cfg.tie_rule, "tie_rule", TIE_RULES,
                 fix="pass 'best' (the lowest loss) or '1se' (the pair nearest the defaults "
                     "within one standard error of it).")
    ck = checkpoint or Checkpoint(None, {})
    name = "mnist" if data_dir is not None else cfg.dataset
    spec = {"name": name, "seed": 0, "data_dir": data_dir, "n_train": cfg.n_train}
    data = load_data(**spec)
    tune_arms: list[dict] = []
    if _tuning(cfg):
        # at the base size SP and μP are one model: trained once, as μP (with delta); at a
        # larger proxy each parametrization is tuned for itself
        def tune_key(sw, p, om, isc, k, seed):
            if _tuned_at_base(sw, cfg):
                return f"tune/{sw}/{om:g}/{isc:g}/{k}/{seed}"
            return f"tune/{sw}/{p}/{tune_size(sw, cfg)}/{om:g}/{isc:g}/{k}/{seed}"

        def tasks(pairs):
            """The tuning arms of the (output_mult, init_scale) pairs ``pairs(sweep, par)``
            gives (par as :func:`tune_base` takes it), over the lr grid and tuning seeds."""
            return [(tune_key(sw, p, om, isc, k, seed),
                     (sw, p, tune_size(sw, cfg), k, seed, cfg, om, isc))
                    for sw in cfg.sweeps
                    for p in (PARAMETRIZATIONS if not _tuned_at_base(sw, cfg) else ("mup",))
                    for om, isc in pairs(sw, _tuned_as(sw, p, cfg))
                    for k in cfg.log2_lrs for seed in (cfg.tune_seeds or seeds(sw, cfg))]

        grid = [(om, isc) for om in cfg.output_mults for isc in cfg.init_scales]
        tune_arms = run_arms(ck, tasks(lambda sw, p: grid), _arm, data, data_spec=spec,
                             workers=workers, desc=f"{NAME} base tuning", quiet=quiet)
        for _ in range(TUNE_WIDEN):      # each round adds at most one value per edge
            more = tasks(lambda sw, p, arms=tune_arms: widened(tune_base(arms, cfg, sw, p),
                                                               cfg))
            if not more:
                break
            tune_arms = tune_arms + run_arms(ck, more, _arm, data, data_spec=spec,
                                             workers=workers, quiet=quiet,
                                             desc=f"{NAME} base tuning, past the grid's edge")
    tuned = {sw: {p: tune_base(tune_arms, cfg, sw, _tuned_as(sw, p, cfg))
                  for p in PARAMETRIZATIONS} for sw in cfg.sweeps}
    cells = [(sw, p, s, k, seed) for sw in cfg.sweeps for p in PARAMETRIZATIONS
             for s in sizes(sw, cfg) for k in cfg.log2_lrs for seed in seeds(sw, cfg)]

    def key(sw, p, s, k, seed):
        om, isc = tuned[sw][p]["output_mult"], tuned[sw][p]["init_scale"]
        tail = f"/om{om:g}/is{isc:g}" if (om, isc) != (1.0, 1.0) else ""
        return f"{sw}/{p}/{s}/{k}/{seed}{tail}"

    arms = run_arms(ck, [(key(sw, p, s, k, seed),
                          (sw, p, s, k, seed, cfg, tuned[sw][p]["output_mult"],
                           tuned[sw][p]["init_scale"])) for sw, p, s, k, seed in cells],
                    _arm, data, data_spec=spec, workers=workers, desc=NAME, quiet=quiet)
    rows = summarize(arms, cfg)
    moved = shifts(rows, cfg)
    spread = seed_shifts(arms, cfg)
    headline = [f"{sw}: the optimum moves {v['sp']:.2f} grid step(s) under SP, {v['mup']:.2f} "
                "under μP"
                for sw, v in moved.items() if "sp" in v and "mup" in v]
    return {"case": NAME, "config": cfg, "dataset": data.name, "arms": arms, "optima": rows,
            "shifts": moved, "seed_shifts": spread, "widest": widest(rows, cfg),
            "tuned": tuned, "tune_arms": tune_arms, "published": PUBLISHED,
            "data_note": DATA_NOTE, "headline": headline}


def _tie_note(t: dict, cfg: dict) -> str:
    """The tie rule's part of a tuning table's caption (nothing under "best"); ``cfg``: the
    results' config (a results.json written before the rule existed has no ``tie_rule``)."""
    if cfg.get("tie_rule", "best") != "1se" or not t.get("tied"):
        return ""
    pairs = ", ".join(f"({om:g}, x{isc:g})" for om, isc in t["tied"])
    return (f" (one-standard-error rule: the lowest is ({t['argmin'][0]:g}, "
            f"x{t['argmin'][1]:g}), standard error {t['se']:.4f}; within it {pairs}; the one "
            "nearest (1, x1) is used)")


def report(results: dict):
    """The HTML report of ``results``: Figure 1 (training loss vs log2 lr, a curve per width) for
    SP and μP side by side, per sweep, and the table of optima."""
    from ...report.html import HtmlReport

    cfg = results["config"]
    rep = HtmlReport(TITLE, PAPER)      # reproduce() puts the headline first, as the verdict
    rep.paragraph(DATA_NOTE, note=True)
    rows = results["optima"]
    for sweep, by_par in (results.get("tuned") or {}).items():
        for pname, t in by_par.items():
            if not t.get("grid") or (pname == "sp" and by_par["mup"]["grid"] == t["grid"]):
                continue                   # tuned once at the base size: one table
            who = ("SP and μP (one model there)" if by_par["sp"]["grid"] == t["grid"]
                   else ("SP" if pname == "sp" else "μP"))
            rep.table(["output multiplier", "init scale", "best log2 lr", "loss there"],
                      [[f"{g[0]:g}", f"{g[1]:g}", g[2], f"{g[3]:.4f}"] for g in t["grid"]],
                      caption=f"{sweep}: base-model tuning of {who} at size {t['size']}; "
                              f"chosen output multiplier {t['output_mult']:g}, init scale "
                              f"{t['init_scale']:g}, used at every size"
                              + _tie_note(t, cfg) + _widened_note(t.get("widened")))
    rep.table(["sweep", "parametrization", "width or depth", "best log2 lr (grid)",
               "refined", "seeds' sample std", "loss at best"],
              [[r["sweep"], r["parametrization"], r["size"], r["best_log2_lr"],
                f"{r['refined_log2_lr']:.2f}", f"{r['seed_std']:.2f}", f"{r['best_loss']:.4f}"]
               for r in rows],
              caption=f"Optimal learning rate per size (Adam; {cfg['epochs']} epoch(s) for the "
                      f"MLP and depth sweeps, {cfg['transformer_epochs']} for the transformer)")
    for sweep in cfg["sweeps"]:
        rep.figure(figure(results, [sweep]),
                   f"{sweep}: training loss against log2 learning rate (Fig. 1)")
    return rep


def _widened_note(w: dict | None) -> str:
    """The caption's note on the values the tuning added past its grid's edge (:func:`widened`)."""
    words = {"output_mult": "output multiplier", "init_scale": "init scale"}
    parts = [f"{words[name]} {', '.join(f'{v:g}' for v in vals)}"
             for name, vals in (w or {}).items() if vals]
    return (f" (the best pair was on the grid's edge, so it grew: {'; '.join(parts)})"
            if parts else "")


def figure(results: dict, sweeps=None):
    """Figure 1 of Tensor Programs V from ``results``: one row per sweep, SP beside μP, training
    loss against log2 lr with a curve per width (or depth), shared y axis per row."""
    cfg = results["config"]
    rows = results["optima"]
    sweeps = list(sweeps or cfg["sweeps"])
    pyplot = plt()
    fig, axes = pyplot.subplots(len(sweeps), 2, figsize=(10, 3.6 * len(sweeps)), sharey="row",
                                squeeze=False)
    cmap = pyplot.get_cmap("viridis")
    for axrow, sweep in zip(axes, sweeps):
        sz = {"mlp": cfg["mlp_widths"], "transformer": cfg["transformer_widths"],
              "depth": cfg["depths"]}[sweep]
        for ax, pname in zip(axrow, PARAMETRIZATIONS):
            for i, size in enumerate(sz):
                r = next((r for r in rows if r["sweep"] == sweep and r["parametrization"] == pname
                          and r["size"] == size), None)
                if r is None:
                    continue
                ys = [np.nan if v is None else v for v in r["losses"]]
                ax.plot(cfg["log2_lrs"], ys, marker="o", ms=3,
                        color=cmap(i / max(1, len(sz) - 1)),
                        label=f"{'depth' if sweep == 'depth' else 'width'} {size}")
            t = ((results.get("tuned") or {}).get(sweep) or {}).get(pname) or {}
            tuned = (f" (tuned at {t['size']}: output mult {t['output_mult']:g}, init x"
                     f"{t['init_scale']:g})" if t.get("grid") else "")
            ax.set_title(f"{sweep}: {'SP' if pname == 'sp' else 'μP'}{tuned}", fontsize=10)
            ax.set_xlabel("log2 learning rate")
            ax.set_yscale("log")
        axrow[0].set_ylabel("training loss")
        # a diverging arm (loss 1e30) would flatten every curve: losses above 10 (4x chance's
        # 2.3 on 10 classes) are off the top of the panel
        lo = min((v for r in rows if r["sweep"] == sweep for v in r["losses"] if v), default=1)
        axrow[0].set_ylim(0.8 * lo, 10.0)
        axrow[1].legend(fontsize=8)
    fig.tight_layout()
    return fig
