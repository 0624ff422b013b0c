"""``gradmod report``: re-render a comparison's report and plots from its results.json."""

from __future__ import annotations

import argparse
import json

from gradmod.cli import UsageError

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "report",
        help="re-render report.md and plots from a compare folder's results.json",
        description="Recompute the paired summary from DIR/results.json and rewrite DIR/report.md and the PNG plots.",
    )
    parser.add_argument("folder", metavar="DIR", help="a folder written by gradmod compare")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from gradmod.benchmark import render

    try:
        render(args.folder)
    except FileNotFoundError as error:
        raise UsageError(str(error)) from None
    except json.JSONDecodeError as error:
        raise UsageError(f"{args.folder}/results.json is not valid JSON: {error}") from None
    except (ValueError, KeyError) as error:
        raise UsageError(f"{args.folder}/results.json is not a compare result: {error!r}") from None
    print(f"wrote {args.folder}/report.md and plots")
    return 0
