"""The ``marginrank`` command: registers the command modules and dispatches to them.

Every command is a module of ``ranking.app`` with one shape:

- ``add_arguments(subparsers)`` adds its parser to the ``subparsers`` it is given, each leaf with
  ``set_defaults(run=...)``; a group (``experiment``, ``config``, ``clv``, ``simulate``) adds its
  own parser and registers its actions on it the same way;
- ``run(args) -> int`` does the work and returns the exit code (a module holding two sibling
  actions names them ``run_<action>``);
- heavy libraries (pandas, xgboost, cvxpy, dask, duckdb, fastapi) are imported inside ``run``,
  so that importing every command, as ``marginrank --help`` does, stays cheap.

This module only lists the commands, dispatches, and turns a :class:`MarginRankError` (or a
missing optional dependency) into one line ``marginrank: error: ...`` and exit code 2.
"""

from __future__ import annotations

import argparse
import sys

from clv.errors import MarginRankError
from ranking.app import (
    audit_command,
    bench_command,
    build_command,
    clv_command,
    config_command,
    demo_command,
    experiment_command,
    preview_command,
    search_command,
    serve_command,
    simulate_command,
    tune_command,
    validate_command,
)
from ranking.app.demo_command import DEMO_DATA
from ranking.app.search_command import format_results

__all__ = ["COMMANDS", "DEMO_DATA", "EXTRAS", "format_results", "main"]

#: Every command, in the order ``marginrank --help`` lists them.
COMMANDS = (demo_command, build_command, search_command, validate_command, preview_command,
            tune_command, bench_command, clv_command, audit_command, experiment_command,
            config_command, simulate_command, serve_command)

DESCRIPTION = """\
Rank product search results for relevance first, then for the business (margin, customer
lifetime value, returns, inventory), with blend weights tuned so that relevance does not fall.
Start with `marginrank demo`; `marginrank COMMAND --help` explains each command."""

#: Optional dependencies by the extra that installs them, and what needs them.
EXTRAS = {
    "fastapi": ("service", "the service"), "uvicorn": ("service", "the service"),
    "httpx": ("service", "the service"), "prometheus_client": ("service", "the service"),
    "dask": ("scale", "running on a cluster"), "distributed": ("scale", "running on a cluster"),
    "bm25s": ("bench", "this benchmark"), "tantivy": ("bench", "this benchmark"),
}


def main(argv: list[str] | None = None) -> int:
    """Entry point; every MarginRankError becomes a one-line message and exit code 2, and so
    does a missing optional dependency (naming the extra that installs it)."""
    args = _parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    try:
        return args.run(args)
    except MarginRankError as exc:
        print(f"marginrank: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        extra = EXTRAS.get((exc.name or "").partition(".")[0])
        if extra is None:
            raise
        print(f"marginrank: error: {extra[1]} needs the '{extra[0]}' extra: "
              f"pip install 'marginrank[{extra[0]}]'", file=sys.stderr)
        return 2


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"marginrank {version('marginrank')}"
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "marginrank (not installed)"


class _VersionAction(argparse.Action):
    """--version, reading the installed version only when asked."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        print(_version())
        parser.exit()


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line. ``command`` is accepted for callers that name the command they
    will parse; every command is registered either way."""
    parser = argparse.ArgumentParser(prog="marginrank", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.add_arguments(sub)
    return parser


if __name__ == "__main__":
    sys.exit(main())
