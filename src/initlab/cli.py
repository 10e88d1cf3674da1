"""The ``initlab`` command.

Subcommands live beside the code they drive; each such module exposes ``register(subparsers)``,
which adds its subcommands with ``set_defaults(func=handler)``; a handler takes the parsed
arguments and returns an exit code. ``initlab`` with no arguments runs ``initlab demo``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules that contribute subcommands, in the order they appear in --help.
SUBCOMMAND_MODULES = (
    "initlab.lab.cli",            # demo, compare
    "initlab.lab.reproduce",      # reproduce
    "initlab.diagnostics.cli",    # doctor
    "initlab.theory.cli",         # theory
)


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

    parser = argparse.ArgumentParser(
        prog="initlab",
        description="Neural-network initialization: catalog, theory, doctor and laboratory. "
                    "With no arguments, runs `initlab demo`.")
    parser.add_argument("--version", action="version", version=f"initlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("list", help="list every initializer in the catalog")
    p.set_defaults(func=_cmd_list)
    for modname in SUBCOMMAND_MODULES:
        importlib.import_module(modname).register(sub)
    return parser


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
        return int(args.func(args) or 0)
    except BrokenPipeError:  # e.g. `initlab list | head`: the reader left; not an error
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("interrupted; finished work is saved (rerun with --resume to continue)", file=sys.stderr)
        return 130
    except (ValueError, TypeError, FileNotFoundError) as exc:
        from .core.validation import InitlabError, InitlabTypeError

        if isinstance(exc, (InitlabError, InitlabTypeError, FileNotFoundError)):
            print(f"initlab: error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
