"""The ``initlab`` command.

Subcommands live beside the code they drive; each such module exposes ``register(subparsers)``,
which adds its subcommands with ``set_defaults(func=handler)``; a handler takes the parsed
arguments and returns an exit code. ``initlab`` with no arguments runs ``initlab demo``.

Building the parser never imports torch, so ``initlab --help`` and every ``initlab CMD --help``
answer at once. The contract for a registrant module (checked by tests/test_bad_input_cli.py,
which looks at ``sys.modules`` after every ``--help``):

* importing it and calling ``register`` imports no framework: heavy imports go inside the
  handlers, or the handler is named as a string ``"package.module:function"``, which :func:`main`
  imports only when that command runs;
* defaults shown in the help come from the configs that own them; a config in a module that
  imports torch is read with :func:`config_defaults` (its source, not its import);
* options get help texts; :class:`HelpFormatter` (the default of every subparser) appends
  ``(default: X)`` to each one that has a default and does not state it.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

# Modules that contribute subcommands, in the order they appear in --help.
SUBCOMMAND_MODULES = (
    "initlab.lab.cli",            # demo, compare
    "initlab.lab.reproduce",      # reproduce
    "initlab.diagnostics.cli",    # doctor, coord-check
    "initlab.theory.cli",         # theory
)


class HelpFormatter(argparse.HelpFormatter):
    """Plain-text help: description paragraphs wrapped to the terminal, indented lines (examples)
    kept as written, and "(default: X)" after each option's help."""

    def _fill_text(self, text, width, indent):
        import textwrap

        out = []
        for para in text.strip("\n").split("\n\n"):
            lines = para.splitlines()
            if any(line.startswith(" ") for line in lines[1:]) or para.startswith(" "):
                out.append("\n".join(indent + line for line in lines))   # examples: as written
            else:
                out.append(textwrap.fill(" ".join(line.strip() for line in lines), width,
                                         initial_indent=indent, subsequent_indent=indent))
        return "\n\n".join(out)

    def _get_help_string(self, action):
        text = action.help or ""
        d = action.default
        if (not text or "default" in text or d is None or d is False or d is argparse.SUPPRESS
                or isinstance(action, (argparse._HelpAction, argparse._VersionAction))):
            return text
        if isinstance(d, (list, tuple)):
            d = " ".join(str(v) for v in d)
        return f"{text} (default: {d})"


class Parser(argparse.ArgumentParser):
    """``ArgumentParser`` whose subparsers default to :class:`HelpFormatter`."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def config_defaults(module: str, cls: str) -> dict[str, SimpleNamespace]:
    """Field defaults of dataclass ``cls`` in ``module``, read from its source without importing
    it (so a CLI can show a torch-importing config's defaults in ``--help``).

    Returns ``{field: SimpleNamespace(default=value)}`` like ``__dataclass_fields__``. Defaults
    must be literals or module-level literal constants; anything else raises, so a test that
    builds every parser catches a config this cannot read.
    """
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin:
        raise ImportError(f"cannot find the source of {module}")
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    consts: dict[str, object] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(
                node.targets[0], ast.Name):
            try:
                consts[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == cls:
            out = {}
            for item in node.body:
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    if item.value is None:
                        continue
                    if isinstance(item.value, ast.Name) and item.value.id in consts:
                        value = consts[item.value.id]
                    else:
                        value = ast.literal_eval(item.value)
                    out[item.target.id] = SimpleNamespace(default=value)
            return out
    raise LookupError(f"no class {cls} in {module}")


def output_file(text: str) -> str:
    """argparse ``type=`` of an output file: not a directory, and no existing file where a
    directory of its path would be (missing directories are created when it is written)."""
    p = Path(text)
    if not text or p.is_dir() or text.endswith(("/", "\\")):
        raise argparse.ArgumentTypeError(f"must be a file path, not a directory; got {text!r} "
                                         "(e.g. out/figure.png)")
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise argparse.ArgumentTypeError(
                    f"cannot be written: {str(parent)!r} is a file, not a directory "
                    f"(got {text!r})")
            break
    return text


def _cmd_list(args: argparse.Namespace) -> int:
    import initlab

    for name in initlab.names():
        init = initlab.get(name)
        canon = initlab.core.canonical_name(name)
        alias = f"  (alias of {canon})" if canon != name else ""
        print(f"{name:20s} {init!r}{alias}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = Parser(
        prog="initlab",
        description="Neural-network initialization: catalog, theory, doctor and laboratory.\n"
                    "With no arguments, runs `initlab demo`. `initlab COMMAND --help` for "
                    "each command's options.")
    parser.add_argument("--version", action="version", version=f"initlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    p = sub.add_parser("list", help="list every initializer in the catalog",
                       description="List every initializer in the catalog with its default "
                                   "parameters (aliases marked).")
    p.set_defaults(func=_cmd_list)
    for modname in SUBCOMMAND_MODULES:
        importlib.import_module(modname).register(sub)
    return parser


def resolve_handler(func):
    """A handler given as ``"package.module:function"`` is imported now (when its command
    runs); a callable is returned as is."""
    if isinstance(func, str):
        modname, _, attr = func.partition(":")
        return getattr(importlib.import_module(modname), attr)
    return func


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        argv = ["demo"]
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(resolve_handler(args.func)(args) or 0)
    except BrokenPipeError:  # e.g. `initlab list | head`: the reader left; not an error
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("interrupted; finished work is saved (rerun with --resume to continue)", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError) as exc:
        from .core.validation import InitlabError, InitlabTypeError

        if isinstance(exc, (InitlabError, InitlabTypeError, FileNotFoundError)):
            first, *rest = str(exc).splitlines() or [""]
            print(f"initlab: error: {first}", file=sys.stderr)
            for line in rest:  # detail a user needs (e.g. the key lists of a state dict)
                print(f"  {line}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
