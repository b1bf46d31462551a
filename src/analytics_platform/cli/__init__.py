"""The ``tap`` command line. Each command group registers its own subcommands:

- :mod:`.build`: ``synth``, ``check``
- :mod:`.operations`: ``bootstrap``, ``preflight``, ``plan``, ``deploy``, ``destroy``, ``drift``
- :mod:`.etl`: ``etl convert``
- :mod:`.local`: ``local up|down|constrain``, ``demo``
- :mod:`.jobs`: ``jobs`` (and ``jobs retry``), ``redrive``
- :mod:`.analytics`: ``query``, ``datasets``
- :mod:`.console`: ``console``
- :mod:`.completion`: ``completion bash|zsh``

Shared option helpers live in :mod:`.options`; exit codes in :mod:`analytics_platform.exit_codes`. Heavy modules
(cdktf bindings, DuckDB, moto) are imported inside the handlers that need them, so ``tap --help`` and config errors
answer at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from analytics_platform.cli import analytics, build, completion, console, etl, jobs, local, operations
from analytics_platform.cli.options import Default, Parser
from analytics_platform.exit_codes import ExitCode

#: The command groups, in the order ``tap --help`` lists them.
GROUPS = (build, operations, jobs, analytics, console, etl, local, completion)

EPILOG = """\
exit codes: 0 done, 1 failed (findings, a failed region, a job not re-queued), 2 refused (usage, configuration),
3 drift found (tap drift). TAP_DEBUG=1 shows a traceback with an error.
"""


def package_version() -> str:
    """The installed distribution's version (``tap --version``)."""
    try:
        return version("analytics-platform")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``tap``."""
    parser = Parser(
        prog="tap", description="Multi-region analytics platform as code: one stack per region, data processed and "
        "queried in the region it landed in.", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--version", action="version", version=f"tap {package_version()}")
    parser.add_argument(
        "-C", dest="directory", metavar="DIR",
        help="run as if tap was started in DIR (default: the nearest folder up from here holding cdktf.json)",
    )  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    for group in GROUPS:
        group.register(sub)
    return parser


def run(action: Callable[[], int]) -> int:
    """Run a command: a configuration error or any other failure is one ``error:`` line and its exit code."""
    from analytics_platform.infra.config import ConfigError

    try:
        return int(action())
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return ExitCode.USAGE
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    except Exception as error:  # the user gets one clear line; TAP_DEBUG=1 shows the traceback
        if os.environ.get("TAP_DEBUG"):
            raise
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        return ExitCode.FAILED


def synth_for_cdktf(config_path: str | None) -> int:
    """Entry used by ``tap.py`` (``cdktf synth``)."""
    return run(lambda: build.synth_from_environment(config_path))


#: What marks a project's root folder (as ``.git`` does for git).
ROOT_MARKER = "cdktf.json"
#: Options naming files: given relative to where tap was started, they stay so when tap moves to the root.
PATH_OPTIONS = ("config", "out", "input", "output")


def project_root(start: Path) -> Path | None:
    """The nearest folder from ``start`` up holding :data:`ROOT_MARKER`, or None."""
    for folder in (start, *start.parents):
        if (folder / ROOT_MARKER).is_file():
            return folder
    return None


def _enter_project(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Path | None:
    """Move to the project's root found from where tap was started, or from ``-C DIR`` as if it was started there
    (as git does); file paths given stay relative to that folder. Returns the folder to come back to, or None
    when tap stays."""
    here = Path.cwd()
    start = here
    if args.directory is not None:
        start = here / args.directory
        if not start.is_dir():
            parser.error(f"-C {args.directory}: no such folder")
    target = project_root(start) or start
    if target.resolve() == here.resolve():
        return None
    for name in PATH_OPTIONS:
        value = getattr(args, name, None)
        if isinstance(value, str) and value and not isinstance(value, Default):
            setattr(args, name, str(start / value))
    os.chdir(target)
    return here


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tap``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.parser = getattr(args, "parser", parser)
    back = _enter_project(args, parser)
    try:
        return run(lambda: int(args.handler(args)))
    finally:
        if back is not None:
            os.chdir(back)


__all__ = ["build_parser", "main", "package_version", "run", "synth_for_cdktf"]
