"""Compare initializations side by side: same data, model, optimizer and seeds.

>>> cfg = CompareConfig(data="digits", depth=6, width=64, activation="tanh",
...                     inits=("torch_default", "glorot", "orthogonal"), epochs=5, seeds=2)
>>> result = run_compare(cfg, "runs/x")                    # doctest: +SKIP
>>> print(format_table(result.summary))                     # doctest: +SKIP

Every (init, lr, seed) run builds the model from the same config, initializes it with
``initlab.apply(model, init, seed=seed)`` (``batch=`` the first training examples for ``lsuv``),
trains it with :func:`~initlab.lab.train.train`, and appends one JSON line per epoch to
``OUT/results.jsonl``. With a learning-rate grid, each init gets the lr with the best mean final
*validation* accuracy (a fair comparison: deep nets that train at 1e-3 may diverge at 1e-2), and
the table reports that lr's *test* numbers.
"""

from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from ..core.validation import InitlabError, check_choice, check_scalar, fail
from ..util.hashing import stable_u64
from .data import DATASETS, Dataset, load_dataset
from .models import ACTIVATIONS, KINDS, ModelConfig, build_model
from .progress import progress_bar
from .results import RunDir, check_out_dir
from .train import LOSSES, OPTIMIZERS, TrainConfig, train

DEFAULT_INITS = ("torch_default", "glorot", "he", "orthogonal", "lsuv", "critical")


# ----------------------------------------------------------------------------- initialization


def available_plans() -> tuple[str, ...]:
    """The built-in plan names of ``initlab.apply`` (``initlab.modelinit.plans.names()``)."""
    from ..modelinit import plans

    return tuple(plans.names())


def init_model(model: torch.nn.Module, plan: str, *, seed: int, batch=None,
               activation: str | None = None):
    """Initialize ``model`` in place by the named plan; return ``initlab.apply``'s report.

    Calls ``initlab.apply(model, plan, seed=seed)``, with ``batch=`` for the data-dependent plans
    (``lsuv``, ``auto``) and ``activation=`` for ``critical`` (the edge of chaos depends on it).
    """
    from ..modelinit import apply

    kwargs: dict = {"seed": seed}
    if plan in ("lsuv", "auto"):
        kwargs["batch"] = batch
    if plan == "critical" and activation is not None:
        kwargs["activation"] = activation
    return apply(model, plan, **kwargs)


# ----------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class CompareConfig:
    """One comparison. Defaults: a 6-layer tanh MLP on digits, 10 epochs, 3 seeds."""

    data: str = "digits"               # dataset name (initlab.lab.data.DATASETS)
    model: str = "mlp"                 # model kind (initlab.lab.models.KINDS)
    depth: int = 6                     # hidden layers / residual blocks
    width: int = 128                   # hidden units
    activation: str = "tanh"
    bias: bool = True
    channels: int = 16                 # cnn / rescnn
    inits: tuple[str, ...] = DEFAULT_INITS
    epochs: int = 10
    seeds: int = 3                     # seeds 0 .. seeds-1
    lr: float = 0.01                   # used when lr_grid is empty
    lr_grid: tuple[float, ...] = ()    # pick each init's best lr on the validation split
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 64
    loss: str = "cross_entropy"
    n_train: int | None = None         # None: the dataset's default
    n_val: int | None = None           # None: 0, or 15% of the training pool with an lr grid
    data_seed: int = 0                 # seeds the split (fixed across runs: same data for all)
    target_acc: float = 0.9            # for "epochs to reach target accuracy"
    lsuv_batch: int = 256              # first training examples used by data-dependent plans
    data_dir: str | None = None

    def __post_init__(self):
        check_choice(self.data, "data", DATASETS)
        check_choice(self.model, "model", KINDS)
        check_choice(self.activation, "activation", tuple(ACTIVATIONS))
        check_choice(self.optimizer, "optimizer", OPTIMIZERS)
        check_choice(self.loss, "loss", LOSSES)
        check_scalar(self.depth, "depth", min_val=1, integer=True)
        check_scalar(self.width, "width", min_val=1, integer=True)
        check_scalar(self.epochs, "epochs", min_val=0, integer=True)
        check_scalar(self.seeds, "seeds", min_val=1, integer=True)
        check_scalar(self.target_acc, "target_acc", min_val=0, max_val=1)
        if not self.inits:
            raise fail("inits", "must name at least one initialization plan", self.inits,
                       "pass e.g. --inits glorot,he.")
        if len(set(self.inits)) != len(self.inits):
            raise fail("inits", "must not repeat a plan", ",".join(self.inits),
                       "list each plan once.")
        plans = available_plans()
        for name in self.inits:
            check_choice(name, "inits", plans)
        for lr in (self.lr, *self.lr_grid):
            check_scalar(lr, "lr", min_val=0, include_min=False)
        check_scalar(self.lsuv_batch, "lsuv_batch", min_val=1, integer=True)
        object.__setattr__(self, "inits", tuple(self.inits))
        object.__setattr__(self, "lr_grid", tuple(float(v) for v in self.lr_grid))
        for lr in self.lrs:  # the training options (batch size, momentum...) are checked here,
            self.train_config(lr)  # before any output directory is touched

    @property
    def lrs(self) -> tuple[float, ...]:
        return self.lr_grid or (float(self.lr),)

    def to_dict(self) -> dict:
        return asdict(self)

    def train_config(self, lr: float) -> TrainConfig:
        return TrainConfig(optimizer=self.optimizer, lr=lr, momentum=self.momentum,
                           weight_decay=self.weight_decay, batch_size=self.batch_size,
                           epochs=self.epochs, loss=self.loss)


def load_data(cfg: CompareConfig):
    """The dataset of ``cfg`` (the same split for every run)."""
    n_val = cfg.n_val
    if n_val is None:
        n_val = 0
        if cfg.lr_grid:
            pool = load_dataset(cfg.data, seed=cfg.data_seed, data_dir=cfg.data_dir)
            n_val = max(1, round(0.15 * len(pool.y_train)))
    return load_dataset(cfg.data, seed=cfg.data_seed, data_dir=cfg.data_dir,
                        n_train=cfg.n_train, n_val=n_val)


def model_config(cfg: CompareConfig, data) -> ModelConfig:
    in_shape = data.shape if cfg.model in ("cnn", "rescnn") else (data.n_features,)
    return ModelConfig(kind=cfg.model, depth=cfg.depth, width=cfg.width,
                       activation=cfg.activation, bias=cfg.bias, in_shape=in_shape,
                       n_classes=data.n_classes, channels=cfg.channels)


def make_initialized_model(cfg: CompareConfig, data, init: str, seed: int):
    """Build the model of ``cfg`` and initialize it by ``init`` for ``seed``; ``(model, report)``."""
    gen = torch.Generator().manual_seed(stable_u64("initlab.lab.model", seed) % 2**63)
    model = build_model(model_config(cfg, data), generator=gen)
    batch = torch.from_numpy(data.x_train[:cfg.lsuv_batch])
    report = init_model(model, init, seed=seed, batch=batch, activation=cfg.activation)
    return model, report


# ----------------------------------------------------------------------------- running


@dataclass
class CompareResult:
    """A finished comparison: its config and data, every JSONL record, each init's chosen lr,
    the summary rows (:func:`summarize`) and the output directory."""

    config: CompareConfig
    data: Dataset
    records: list[dict]
    best_lr: dict[str, float]
    summary: list[dict] = field(default_factory=list)
    out: str | None = None

    def _repr_html_(self) -> str:  # Jupyter: the compare report, figures inline
        from .compare_report import compare_result_html

        return compare_result_html(self)


RECORD_KEY = ("init", "lr", "seed", "epoch")  # what identifies one line of results.jsonl


def run_dir(cfg: CompareConfig, out) -> RunDir:
    """The output directory of ``cfg``'s comparison (its config.json names the experiment)."""
    return RunDir(out, {"experiment": "initlab.compare", **cfg.to_dict()}, key=RECORD_KEY)


def _key(init: str, lr: float, seed: int) -> str:
    return f"{init}_lr={lr:g}_seed={seed}"


def run_compare(cfg: CompareConfig, out, *, resume: bool = False, force: bool = False,
                quiet: bool = False) -> CompareResult:
    """Train every (init, lr, seed) of ``cfg`` (resuming finished epochs from ``out`` with
    ``resume``) and return all records, each init's chosen lr and the summary rows."""
    check_out_dir(out)  # everything is checked before the output directory is touched
    data = load_data(cfg)
    for init in cfg.inits:  # fail fast on a plan that cannot initialize this model
        try:
            make_initialized_model(cfg, data, init, 0)
        except InitlabError as exc:
            raise InitlabError(f"`inits` entry {init!r} cannot initialize this {cfg.model} model "
                               f"({exc}) Fix: drop it, or use a model it applies to (fixup and "
                               "zero_residual need --model resmlp or rescnn).") from exc
    with run_dir(cfg, out) as rd:
        records = rd.open(resume=resume, force=force)
        if rd.moved_to is not None and not quiet:
            print(f"initlab: moved the previous results in {out} to {rd.moved_to}",
                  file=sys.stderr)
        _train_all(cfg, data, rd, records, quiet)
        records = rd.read()
    best = choose_lr(records, cfg)
    res = CompareResult(cfg, data, records, best, out=str(out))
    res.summary = summarize(records, cfg, best)
    return res


def _train_all(cfg: CompareConfig, data, rd: RunDir, records: list[dict], quiet: bool) -> None:
    """Train what ``records`` does not hold yet, appending to ``rd`` (whose lock is held)."""
    done: dict[tuple, set] = {}
    for r in records:
        done.setdefault((r["init"], r["lr"], r["seed"]), set()).add(r["epoch"])
    runs = [(i, lr, s) for i in cfg.inits for lr in cfg.lrs for s in range(cfg.seeds)]
    todo = sum(cfg.epochs + 1 - len(done.get(r, ())) for r in runs)
    bar = progress_bar(total=todo, desc="compare", unit="epoch", quiet=quiet)
    n_runs, k = len(runs), 0
    try:
        for init, lr, seed in runs:
            have = done.get((init, lr, seed), set())
            ck = rd.checkpoint(_key(init, lr, seed))
            if len(have) == cfg.epochs + 1:
                if ck.is_file():
                    ck.unlink()
                continue
            tag = {"init": init, "lr": lr, "seed": seed}
            if ck.is_file():  # epochs checkpointed but not yet in the JSONL (crash in between)
                state = torch.load(ck, weights_only=True)
                for rec in state["history"]:
                    if rec["epoch"] not in have:
                        rd.append({**tag, **rec})
                        have.add(rec["epoch"])
                        bar.update(1)
            elif have:  # results without a checkpoint to continue from: redo this run
                kept = [r for r in rd.read() if (r["init"], r["lr"], r["seed"]) != (init, lr, seed)]
                rd.rewrite(kept)
                have = set()
            k += 1
            bar.set_description(f"run {k}/{n_runs}: {init} lr={lr:g} seed={seed}")
            model, _ = make_initialized_model(cfg, data, init, seed)

            def on_epoch(rec, tag=tag):
                rd.append({**tag, **rec})
                bar.update(1)

            train(model, data, cfg.train_config(lr), seed=seed, on_epoch=on_epoch,
                  record_layer_stats="init", checkpoint=ck, activation=cfg.activation)
            ck.unlink()
    finally:
        bar.close()


# ----------------------------------------------------------------------------- summaries


def _final(records, init, lr, epochs) -> list[dict]:
    return [r for r in records if r["init"] == init and r["lr"] == lr and r["epoch"] == epochs]


def choose_lr(records: list[dict], cfg: CompareConfig) -> dict[str, float]:
    """Each init's lr: the only one, or the grid's best mean final validation accuracy (ties go
    to the smaller lr)."""
    best = {}
    for init in cfg.inits:
        scores = []
        for lr in cfg.lrs:
            fin = _final(records, init, lr, cfg.epochs)
            accs = [r["val_acc"] if r.get("val_acc") is not None else r["test_acc"] for r in fin]
            scores.append((np.mean(accs) if accs else -1.0, -lr, lr))
        best[init] = max(scores)[2]
    return best


def mean_std(xs) -> tuple[float, float]:
    """Mean and sample std (ddof 1) of a metric over seeds, the lab's one seed statistic
    (None entries, runs without the metric, are dropped): std 0 for one value, both nan for
    none."""
    xs = [x for x in xs if x is not None]
    if not xs:
        return math.nan, math.nan
    return float(np.mean(xs)), float(np.std(xs, ddof=1)) if len(xs) > 1 else 0.0


def summarize(records: list[dict], cfg: CompareConfig, best_lr: dict[str, float]) -> list[dict]:
    """One row per init (at its chosen lr): final test accuracy mean and std over seeds, final
    train loss, epochs to reach ``target_acc`` (median over the seeds that reach it), diverged
    runs, and the per-layer activation std at init (mean over seeds; first and last layer and
    their ratio)."""
    rows = []
    for init in cfg.inits:
        lr = best_lr[init]
        mine = [r for r in records if r["init"] == init and r["lr"] == lr]
        fin = [r for r in mine if r["epoch"] == cfg.epochs]
        acc_m, acc_s = mean_std([r["test_acc"] for r in fin])
        loss_m, _ = mean_std([r["train_loss"] for r in fin])
        reach = []
        for s in range(cfg.seeds):
            eps = sorted((r["epoch"], r["test_acc"]) for r in mine if r["seed"] == s)
            hit = [e for e, a in eps if a is not None and a >= cfg.target_acc]
            if hit:
                reach.append(hit[0])
        init_layers = [r["layers"] for r in mine if r["epoch"] == 0 and r.get("layers")]
        stds = (np.mean([[lay["std"] or 0.0 for lay in ls] for ls in init_layers], 0)
                if init_layers else np.array([]))
        rows.append({
            "init": init, "lr": lr, "acc_mean": acc_m, "acc_std": acc_s, "train_loss": loss_m,
            "epochs_to_target": float(np.median(reach)) if reach else None,
            "reached": len(reach), "seeds": cfg.seeds,
            "diverged": sum(1 for r in fin if r.get("diverged")),
            "init_std": [float(v) for v in stds],
        })
    return rows


def format_table(rows: list[dict], cfg: CompareConfig | None = None) -> str:
    """The results table as aligned text."""
    target = f"{cfg.target_acc:.0%}" if cfg is not None else "target"
    heads = ["init", "lr", "test acc (mean ± std)", "train loss", f"epochs to {target}",
             "act std at init: first → last (ratio)"]
    body = []
    for r in rows:
        acc = ("—" if math.isnan(r["acc_mean"])
               else f"{100 * r['acc_mean']:.1f}% ± {100 * r['acc_std']:.1f}")
        if r["diverged"]:
            acc += f" ({r['diverged']} diverged)"
        loss = "—" if r["train_loss"] is None or math.isnan(r["train_loss"]) else f"{r['train_loss']:.3f}"
        if r["epochs_to_target"] is None:
            reach = "never"
        else:
            reach = f"{r['epochs_to_target']:g}"
            if r["reached"] < r["seeds"]:
                reach += f" ({r['reached']}/{r['seeds']} seeds)"
        s = r["init_std"]
        spread = "—"
        if len(s):
            ratio = f"{s[-1] / s[0]:.2g}x" if s[0] > 0 else "—"
            spread = f"{s[0]:.3g} → {s[-1]:.3g} ({ratio})"
        body.append([r["init"], f"{r['lr']:g}", acc, loss, reach, spread])
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h)
              for i, h in enumerate(heads)]
    line = "  ".join("─" * w for w in widths)
    fmt = lambda cells: "  ".join(  # noqa: E731
        c.ljust(w) if i in (0, 5) else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join(x.rstrip() for x in [fmt(heads), line, *(fmt(b) for b in body)])


def takeaways(rows: list[dict], cfg: CompareConfig) -> list[str]:
    """A few plain sentences on what the table shows (best init, shrinking or exploding signal at
    init, runs that never reached the target or diverged)."""
    done = [r for r in rows if not math.isnan(r["acc_mean"])]
    if not done:
        return []
    best = max(done, key=lambda r: r["acc_mean"])
    worst = min(done, key=lambda r: r["acc_mean"])
    epochs = f"{cfg.epochs} epoch" + ("s" if cfg.epochs != 1 else "")
    out = [f"best: {best['init']} ({100 * best['acc_mean']:.1f}% test accuracy after "
           f"{epochs}); worst: {worst['init']} ({100 * worst['acc_mean']:.1f}%)."]
    anyone = any(r["epochs_to_target"] is not None for r in rows)
    if not anyone:
        out.append(f"no init reached {cfg.target_acc:.0%} test accuracy in {epochs}.")
    for r in rows:
        s = r["init_std"]
        notes = []
        if len(s) and max(s) == 0:
            notes.append("every hidden activation is 0 at init (all units identical: the "
                         "symmetry is never broken)")
        elif len(s) > 1 and s[0] > 0:
            ratio = s[-1] / s[0]
            if ratio < 0.25:
                notes.append(f"its signal shrinks {1 / ratio:.3g}x over {len(s)} hidden layers "
                             "at init (vanishing)")
            elif ratio > 4:
                notes.append(f"its signal grows {ratio:.3g}x over {len(s)} hidden layers at "
                             "init (exploding)")
        if r["epochs_to_target"] is None and anyone:
            notes.append(f"never reached {cfg.target_acc:.0%}")
        if r["diverged"]:
            notes.append(f"diverged in {r['diverged']} of {r['seeds']} seeds")
        if notes:
            out.append(f"{r['init']}: " + "; ".join(notes) + ".")
    return out
