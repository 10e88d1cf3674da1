"""``initlab doctor``: run the init doctor on a model built by a Python function.

The command's help (:data:`DESCRIPTION`) is plain text; this module imports torch only when the
command runs (``initlab doctor --help`` stays light).
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

DESCRIPTION = """\
Diagnose a model at initialization: one forward and one backward pass on a seeded probe
batch, per-layer statistics, findings (saturation, vanishing/exploding signals, symmetry)
and advice.

The target is FILE.py:NAME or package.module:NAME. NAME is a function returning a
torch.nn.Module (called without arguments, or with --kwargs '{"depth": 50}') or a module
object. --state loads a torch.save'd state dict into the built model (weights only: no code
from the file is run). The probe batch comes from a seeded torch.Generator: standard normal
(standardized inputs, what LeCun/Glorot/He assume) or uniform on [0, 1) (pixel-like).

examples:
  initlab doctor path/to/module.py:build_model --input-shape 1,28,28
  initlab doctor models.py:build --state weights.pt --input-shape 784 --json
  initlab doctor mypkg.models:build --input-shape 3,32,32 --plot doctor.png --fail-on warning
"""


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


def load_object(target: str) -> tuple[Any, str]:
    """The object named by ``FILE.py:NAME`` or ``package.module:NAME``, and NAME."""
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
        if spec is None or spec.loader is None:  # a file without a Python suffix (models.txt)
            raise fail("target", "must name a Python source file (FILE.py) before the colon",
                       target, "pass e.g. models.py:build_model (rename the file to end in .py).")
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(path.parent))  # so the file can import its neighbours
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise fail("target", f"names a file that fails to run ({_brief(exc)})", target,
                       "fix the error in that file (run it with python to see the traceback)."
                       ) from None
        finally:
            try:
                sys.path.remove(str(path.parent))
            except ValueError:  # pragma: no cover  (the module removed it itself)
                pass
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as exc:
            raise fail("target", f"names a module that cannot be imported ({_brief(exc)})",
                       target, "pass FILE.py:NAME, or a package.module importable from here "
                       "(check the spelling and PYTHONPATH).") from None
        except Exception as exc:
            raise fail("target", f"names a module that fails on import ({_brief(exc)})",
                       target, "fix the error in that module.") from None
    if not hasattr(module, name):
        raise fail("target", f"names `{name}`, which `{where}` does not define", target,
                   "check the name after the colon.")
    return getattr(module, name), name


def load_target(target: str, kwargs: dict[str, Any] | None = None):
    """Build the model named by ``FILE.py:NAME`` or ``package.module:NAME``."""
    from torch import nn

    obj, name = load_object(target)
    if isinstance(obj, nn.Module):
        if kwargs:
            raise fail("--kwargs", f"cannot be used: `{name}` is a module object, not a builder",
                       kwargs, "drop --kwargs, or name the function that builds the model.")
        model = obj
    elif not callable(obj):
        raise InitlabTypeError(error_message(
            "target", f"must name a builder function or an nn.Module; `{name}` is a "
            f"{type(obj).__name__}", target, "name the function that returns the model."))
    else:
        try:
            model = obj(**(kwargs or {}))
        except TypeError as exc:
            if kwargs:
                raise fail("--kwargs", f"do not fit `{name}` ({_brief(exc)})", kwargs,
                           f"pass only keyword arguments that {name}() accepts.") from None
            raise fail("target", f"`{name}` cannot be called without arguments "
                       f"({_brief(exc)})", target, "give its arguments with --kwargs "
                       "'{\"name\": value}'.") from None
        except Exception as exc:
            raise fail("target", f"`{name}` raised while building the model ({_brief(exc)})",
                       target, "fix the builder, or pass other --kwargs.") from None
    if not isinstance(model, nn.Module):
        raise InitlabTypeError(error_message(
            "target", "must return a torch.nn.Module", type(model).__name__,
            "make the builder return the model."))
    return model


def _brief(exc: BaseException) -> str:
    """``Type: first line`` of an exception, for a one-line error."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def load_state(model, path: str) -> None:
    """Load a ``torch.save``d state dict (or a dict holding one under ``state_dict``/``model``).

    Weights only (``torch.load(weights_only=True)``): a file whose pickle would run code is
    refused, as is a truncated or non-torch file; the model is then unchanged."""
    import torch

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"`--state` must be an existing file; got {path!r}. "
                                "Fix: pass the path of a torch.save'd state dict.")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, not a torch file, or a pickle that wants to run code
        raise fail("--state", f"must be a weights-only torch checkpoint (loading {str(p)!r} "
                   f"failed: {_brief(exc)})", path,
                   "save it with torch.save(model.state_dict(), path); initlab never runs code "
                   "from a checkpoint.") from None
    if isinstance(state, dict):
        for key in ("state_dict", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict):
        raise fail("--state", "must hold a state dict (a dict of tensors)", type(state).__name__,
                   "save it with torch.save(model.state_dict(), path).")
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise fail("--state", "must hold a state dict of name -> tensor", path,
                   "save it with torch.save(model.state_dict(), path).")
    missing, unexpected, mismatched = _compare_state(model, state)
    if missing or unexpected or mismatched:
        lines = []
        for title, keys in (("missing from the file", missing),
                            ("not in the model", unexpected), ("shape differs", mismatched)):
            if keys:
                shown = ", ".join(keys[:30]) + (f" ... (+{len(keys) - 30})" if len(keys) > 30
                                                else "")
                lines.append(f"{title} ({len(keys)}): {shown}")
        raise fail("--state", "must match the built model's parameters (nothing was loaded)",
                   path, "build the same architecture (same --kwargs) the state was saved "
                   "from.\n" + "\n".join(lines))
    model.load_state_dict(state)


def _compare_state(model, state: dict) -> tuple[list[str], list[str], list[str]]:
    """Keys missing from ``state``, keys ``model`` lacks, and keys whose shapes differ."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [f"{k} {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                  for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    return missing, unexpected, mismatched


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
    kwargs: Any = {}
    if args.kwargs:
        try:
            kwargs = json.loads(args.kwargs)
        except json.JSONDecodeError:
            kwargs = None
        if not isinstance(kwargs, dict):
            raise fail("--kwargs", "must be a JSON object (keyword arguments of the builder)",
                       args.kwargs,
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
    if args.html:
        import shlex

        from .html import write_doctor_html

        path = write_doctor_html(report, args.html,
                                 command=shlex.join(["initlab", *sys.argv[1:]]))
        print(f"page written to {path}", file=sys.stderr)
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
    from ..cli import HelpFormatter, output_file
    from ..util.argtypes import whole_number

    p = subparsers.add_parser(
        "doctor", help="diagnose a model at initialization (saturation, vanishing, symmetry, ...)",
        description=DESCRIPTION, formatter_class=HelpFormatter)
    p.add_argument("target", help="FILE.py:NAME or package.module:NAME (a builder or a model)")
    p.add_argument("--input-shape", required=True,
                   help="shape of one example without the batch dimension, e.g. 1,28,28")
    p.add_argument("--batch-size", type=_positive_int, default=64, help="probe batch size")
    p.add_argument("--seed", type=whole_number, default=0, help="seed of the probe batch")
    p.add_argument("--input", choices=("normal", "uniform"), default="normal",
                   help="probe inputs: standard normal or uniform on [0, 1)")
    p.add_argument("--loss", choices=("sum", "cross_entropy"), default="sum",
                   help="backward on the sum of outputs, or on cross-entropy against random "
                        "labels")
    p.add_argument("--state", help="a torch.save'd state dict to load into the built model")
    p.add_argument("--kwargs", help="JSON object of keyword arguments for the builder")
    p.add_argument("--activation", help="functional activation after every layer but the last "
                                        "(for models that call torch.tanh etc. in forward)")
    p.add_argument("--eval", action="store_true",
                   help="measure in eval mode (default: train mode without dropout)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--plot", metavar="PNG", type=output_file,
                   help="save the per-layer figure here")
    p.add_argument("--html", metavar="PAGE", type=output_file,
                   help="write the doctor's HTML page here (self-contained)")
    p.add_argument("--fail-on", choices=("info", "warning", "error"),
                   help="exit with code 1 if a finding at this severity or above is found")
    p.set_defaults(func=run)

    c = subparsers.add_parser(
        "coord-check", help="the coordinate check: is each layer's activation size stable "
        "in width under a parametrization (mup, sp, ntk, mfp)?",
        description=COORD_DESCRIPTION, formatter_class=HelpFormatter)
    c.add_argument("target", help="FILE.py:NAME or package.module:NAME, a function width -> model")
    c.add_argument("--widths", type=_widths, required=True,
                   help="comma-separated widths, at least 3, e.g. 64,128,256,512")
    c.add_argument("--input-shape", required=True,
                   help="shape of one example without the batch dimension, e.g. 784")
    c.add_argument("--classes", type=_positive_int, default=10,
                   help="number of classes of the random cross-entropy targets")
    c.add_argument("--parametrization", choices=("sp", "mup", "ntk", "mfp"), default="mup",
                   help="the width parametrization to check")
    c.add_argument("--base-width", type=_positive_int,
                   help="the base width (default: the smallest width)")
    c.add_argument("--steps", type=_positive_int, default=3,
                   help="optimizer steps; sizes are measured in the forward of each step")
    c.add_argument("--optimizer", choices=("adam", "sgd"), default="adam", help="torch optimizer")
    c.add_argument("--lr", type=_positive_float, default=1e-2, help="learning rate")
    c.add_argument("--seeds", type=_seeds, default=(0,), help="comma-separated seeds, e.g. 0,1")
    c.add_argument("--batch-size", type=_positive_int, default=64, help="probe batch size")
    c.add_argument("--json", action="store_true", help="print the result as JSON")
    c.add_argument("--plot", metavar="PNG", type=output_file,
                   help="save the coordinate-size figure here")
    c.add_argument("--fail", action="store_true",
                   help="exit with code 1 when a layer is not stable in width")
    c.set_defaults(func=run_coord_check)


COORD_DESCRIPTION = """The coordinate check of Tensor Programs V: build the model at each width, parametrize it
(initlab.parametrize), train a few steps on a seeded random batch, and measure every layer's
mean |coordinate| per step. A layer is stable when the log-log slope of size against width
(after the first update) is within +-0.1; the verdict names the layers that break it.

The target is FILE.py:NAME or package.module:NAME, where NAME(width) returns a torch.nn.Module.

examples:
  initlab coord-check models.py:mlp --widths 64,128,256,512 --input-shape 784
  initlab coord-check models.py:mlp --widths 64,128,256 --input-shape 784 --parametrization sp
"""


def _widths(text: str) -> tuple[int, ...]:
    try:
        ws = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        ws = ()
    if len(set(ws)) < 3 or min(ws) < 1:
        raise argparse.ArgumentTypeError(f"must be at least 3 distinct positive widths, comma-"
                                         f"separated; got {text!r} (e.g. 64,128,256)")
    return ws


def _seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        seeds = ()
    if not seeds or min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"must be non-negative integers, comma-separated; got "
                                         f"{text!r} (e.g. 0,1)")
    return seeds


def _positive_float(text: str) -> float:
    import math

    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not math.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number; got {text!r}")
    return v


def run_coord_check(args: argparse.Namespace) -> int:
    """Handler of ``initlab coord-check``; returns the exit code."""
    import torch

    from .coord_check import coord_check

    obj, name = load_object(args.target)
    if not callable(obj) or isinstance(obj, torch.nn.Module):
        raise InitlabTypeError(error_message(
            "target", f"must name a function width -> model; `{name}` is a "
            f"{type(obj).__name__}", args.target, "name the function that builds the model "
            "at a given width."))
    shape = parse_shape(args.input_shape)
    g = torch.Generator().manual_seed(args.seeds[0])
    x = torch.randn((args.batch_size, *shape), generator=g)
    y = torch.randint(args.classes, (args.batch_size,), generator=g)
    try:
        cc = coord_check(obj, args.widths, (x, y), parametrization=args.parametrization,
                         base_width=args.base_width, steps=args.steps, optimizer=args.optimizer,
                         lr=args.lr, seeds=args.seeds)
    except RuntimeError as exc:  # a shape mismatch in the model's forward
        raise fail("--input-shape", "must be what the model expects for one example (the "
                   f"forward pass on a batch of shape {tuple(x.shape)} failed: "
                   f"{str(exc).splitlines()[0]})", args.input_shape,
                   "pass the shape of one example without the batch dimension.") from exc
    if args.plot:
        print(f"plot written to {cc.plot(args.plot)}", file=sys.stderr)
    print(json.dumps(cc.to_dict(), indent=1) if args.json else cc)
    return 1 if args.fail and cc.breaking else 0


def main(argv: list[str] | None = None) -> int:
    """``python -m initlab.diagnostics.cli doctor ...``: the same as ``initlab doctor ...``."""
    from ..cli import main as initlab_main

    return initlab_main(argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
