"""``initlab doctor``: run the init doctor on a model built by a Python function.

::

    initlab doctor path/to/module.py:build_model --input-shape 1,28,28
    initlab doctor models.py:build --state weights.pt --input-shape 784 --json
    initlab doctor mypkg.models:build --input-shape 3,32,32 --plot doctor.png --fail-on warning

The target is ``FILE.py:NAME`` or ``package.module:NAME``; ``NAME`` is a function returning an
``nn.Module`` (called without arguments, or with ``--kwargs '{"depth": 50}'``) or a module
object. ``--state`` loads a ``torch.save``d state dict (``weights_only=True``) into the built
model. The probe batch is drawn from a seeded ``torch.Generator``: standard normal (standardized
inputs, the assumption of LeCun/Glorot/He) or uniform on [0, 1) (pixel-like).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

from ..core.validation import InitlabTypeError, error_message, fail

SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}


def parse_shape(text: str) -> tuple[int, ...]:
    """``"1,28,28"`` -> ``(1, 28, 28)``; every entry a positive integer."""
    try:
        dims = tuple(int(p) for p in str(text).split(","))
    except ValueError:
        dims = ()
    if not dims or any(d < 1 for d in dims):
        raise fail("--input-shape", "must be positive integers separated by commas (one example's "
                   "shape, without the batch dimension)", text, "pass e.g. --input-shape 1,28,28.")
    return dims


def load_target(target: str, kwargs: dict[str, Any] | None = None):
    """Build the model named by ``FILE.py:NAME`` or ``package.module:NAME``."""
    from torch import nn

    where, sep, name = str(target).rpartition(":")
    if not sep or not where or not name:
        raise fail("target", "must be FILE.py:NAME or package.module:NAME", target,
                   "pass e.g. models.py:build_model.")
    if where.endswith(".py") or Path(where).exists():
        path = Path(where).resolve()
        if not path.is_file():
            raise FileNotFoundError(f"`target` names a file that does not exist; got {str(path)!r}. "
                                    "Fix: check the path before the colon.")
        from ..util.hashing import stable_u64

        modname = f"_initlab_doctor_{stable_u64(str(path)):016x}"
        spec = importlib.util.spec_from_file_location(modname, path)
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(path.parent))  # so the file can import its neighbours
        try:
            spec.loader.exec_module(module)
        finally:
            try:
                sys.path.remove(str(path.parent))
            except ValueError:  # pragma: no cover  (the module removed it itself)
                pass
    else:
        module = importlib.import_module(where)
    if not hasattr(module, name):
        raise fail("target", f"names `{name}`, which `{where}` does not define", target,
                   "check the name after the colon.")
    obj = getattr(module, name)
    model = obj if isinstance(obj, nn.Module) else obj(**(kwargs or {}))
    if not isinstance(model, nn.Module):
        raise InitlabTypeError(error_message(
            "target", "must return a torch.nn.Module", type(model).__name__,
            "make the builder return the model."))
    return model


def load_state(model, path: str) -> None:
    """Load a ``torch.save``d state dict (or a dict holding one under ``state_dict``/``model``)."""
    import torch

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"`--state` must be an existing file; got {path!r}. "
                                "Fix: pass the path of a torch.save'd state dict.")
    state = torch.load(p, map_location="cpu", weights_only=True)
    if isinstance(state, dict):
        for key in ("state_dict", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict):
        raise fail("--state", "must hold a state dict (a dict of tensors)", type(state).__name__,
                   "save it with torch.save(model.state_dict(), path).")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise fail("--state", "must match the built model's parameters", str(exc).splitlines()[0],
                   "build the same architecture (same --kwargs) the state was saved from.") from None


def probe_batch(shape: tuple[int, ...], batch_size: int, seed: int, kind: str, dtype=None):
    """A probe batch of ``batch_size`` examples from ``torch.Generator().manual_seed(seed)``."""
    import torch

    g = torch.Generator().manual_seed(seed)
    size = (batch_size, *shape)
    x = torch.randn(size, generator=g) if kind == "normal" else torch.rand(size, generator=g)
    return x.to(dtype) if dtype is not None else x


def _loss(kind: str, seed: int):
    if kind == "sum":
        return None
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed + 1)

    def cross_entropy(output):
        """Cross-entropy against random class labels drawn from the seeded generator."""
        target = torch.randint(output.shape[1], (output.shape[0],), generator=g)
        return F.cross_entropy(output, target)

    return cross_entropy


def run(args: argparse.Namespace) -> int:
    """Handler of ``initlab doctor``; returns the exit code."""
    import torch

    from .checkup import doctor

    shape = parse_shape(args.input_shape)
    kwargs = {}
    if args.kwargs:
        try:
            kwargs = json.loads(args.kwargs)
        except json.JSONDecodeError:
            kwargs = None
        if not isinstance(kwargs, dict):
            raise fail("--kwargs", "must be a JSON object", args.kwargs,
                       "pass e.g. --kwargs '{\"depth\": 50}'.")
    model = load_target(args.target, kwargs)
    if args.state:
        load_state(model, args.state)
    param = next(model.parameters(), None)
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    x = probe_batch(shape, args.batch_size, args.seed, args.input, dtype)
    try:
        report = doctor(model, x, loss_fn=_loss(args.loss, args.seed),
                        activation=args.activation, train=not args.eval)
    except RuntimeError as exc:  # almost always a shape mismatch in the model's forward
        raise fail("--input-shape", "must be what the model expects for one example (the "
                   f"forward pass on a batch of shape {tuple(x.shape)} failed: "
                   f"{str(exc).splitlines()[0]})", args.input_shape,
                   "pass the shape of one example without the batch dimension.") from exc
    if args.plot:
        path = report.plot(args.plot)
        print(f"plot written to {path}", file=sys.stderr)
    print(report.to_json() if args.json else report)
    if args.fail_on:
        worst = max((SEVERITY_RANK[f.severity] for f in report.findings), default=-1)
        if worst >= SEVERITY_RANK[args.fail_on]:
            return 1
    return 0


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text!r}")
    return v


def register(subparsers) -> None:
    """Add ``doctor`` to the ``initlab`` command."""
    p = subparsers.add_parser(
        "doctor", help="diagnose a model at initialization (saturation, vanishing, symmetry, ...)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", help="FILE.py:NAME or package.module:NAME (a builder or a model)")
    p.add_argument("--input-shape", required=True,
                   help="shape of one example without the batch dimension, e.g. 1,28,28")
    p.add_argument("--batch-size", type=_positive_int, default=64, help="probe batch size (64)")
    p.add_argument("--seed", type=int, default=0, help="seed of the probe batch (0)")
    p.add_argument("--input", choices=("normal", "uniform"), default="normal",
                   help="probe inputs: standard normal (default) or uniform on [0, 1)")
    p.add_argument("--loss", choices=("sum", "cross_entropy"), default="sum",
                   help="backward on the sum of outputs (default) or on cross-entropy against "
                        "random labels")
    p.add_argument("--state", help="a torch.save'd state dict to load into the built model")
    p.add_argument("--kwargs", help="JSON object of keyword arguments for the builder")
    p.add_argument("--activation", help="functional activation after every layer but the last "
                                        "(for models that call torch.tanh etc. in forward)")
    p.add_argument("--eval", action="store_true", help="measure in eval mode (default: train "
                                                       "mode without dropout)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--plot", metavar="PNG", help="save the per-layer figure here")
    p.add_argument("--fail-on", choices=("info", "warning", "error"),
                   help="exit with code 1 if a finding at this severity or above is found")
    p.set_defaults(func=run)


def main(argv: list[str] | None = None) -> int:
    """``python -m initlab.diagnostics.cli doctor ...``: the same as ``initlab doctor ...``."""
    from ..cli import main as initlab_main

    return initlab_main(argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
