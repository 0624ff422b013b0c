"""The ``gradmod`` command line: one module per subcommand.

Each subcommand module defines ``add_parser(subparsers)``, which registers its
parser and sets ``func`` to a callable that takes the parsed arguments and
returns an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

__all__ = ["main", "build_parser", "UsageError"]

# Subcommands in the order ``gradmod --help`` lists them.
SUBCOMMANDS = ("train", "compare", "attack", "report")


class UsageError(ValueError):
    """Invalid user input: printed as one message, exit code 2, no traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gradmod",
        description="Layerwise gradient modulation for PyTorch: train, compare, attack, report.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"gradmod.cli.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"gradmod.cli.{name}":
                raise
            continue  # subcommand not built yet
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UsageError as error:
        print(f"gradmod {args.command}: error: {error}", file=sys.stderr)
        return 2
