"""What every command group shares: how a subcommand is declared (description and examples), the target options
(``--env/--config/--region/--local``), ``--json``, and the value types checked before anything runs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from analytics_platform.exit_codes import ExitCode

Handler = Callable[[argparse.Namespace], int]
Subparsers = Any  # argparse's _SubParsersAction is private

ENV_HELP = "named environment: environments/ENV.toml over the defaults"
CONFIG_HELP = "JSON or TOML file over the defaults (and over --env's file)"
LOCAL_HELP = "the running local platform (tap local up) instead of AWS"
REGION_HELP = "the AWS region to act on, e.g. eu-west-1 (one of the environment's regions)"
REGIONS_HELP = "only this region (repeatable; default: every region of the environment)"


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors read like every other ``tap`` error: ``error: tap CMD: ...`` on stderr,
    a pointer to ``--help``, exit 2."""

    def error(self, message: str) -> Any:  # argparse's signature says NoReturn
        self.print_usage(sys.stderr)
        self.exit(
            int(ExitCode.USAGE),
            f"error: {self.prog}: {message}{did_you_mean(message, _option_strings(self))} (see {self.prog} --help)\n",
        )


def _option_strings(parser: argparse.ArgumentParser) -> list[str]:
    """Every option of ``parser`` and of its subcommands (argparse reports an unknown option from the top)."""
    found: list[str] = []
    for action in parser._actions:
        found += [option for option in action.option_strings if option.startswith("--")]
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                found += _option_strings(child)
    return sorted(set(found))


class Default(str):
    """A path option's default value: it names a place at the project's root, while a path typed on the command
    line (even the same text) stays relative to where it was typed."""

    __slots__ = ()


def did_you_mean(message: str, options: Sequence[str] = ()) -> str:
    """``; did you mean 'query'?`` for argparse's "invalid choice: 'qeury' (choose from ...)" message, or
    ``; did you mean '--region'?`` for "unrecognized arguments: --regoin ..." (among ``options``), else ``""``."""
    import difflib
    import re

    found = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
    if found:
        word, choices = found.group(1), re.findall(r"'([^']*)'", found.group(2))
    else:
        unknown = re.search(r"unrecognized arguments: (--[^\s=]+)", message)
        if not unknown:
            return ""
        word, choices = unknown.group(1), list(options)
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


@dataclass(frozen=True)
class Command:
    """One subcommand: its name, handler (``None`` for a group), one-line summary and examples."""

    name: str
    handler: Handler | None
    summary: str
    examples: Sequence[str] = ()
    details: str = ""


def add_command(sub: Subparsers, command: Command) -> argparse.ArgumentParser:
    """Register ``command`` on ``sub``: the summary in the parent's list, summary + details + examples in its
    own ``--help``."""
    description = command.summary + (f"\n\n{command.details}" if command.details else "")
    epilog = "examples:\n" + "\n".join(f"  {line}" for line in command.examples) if command.examples else None
    parser: argparse.ArgumentParser = sub.add_parser(
        command.name, help=command.summary, description=description, epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    if command.handler is not None:
        parser.set_defaults(handler=command.handler, parser=parser)
    return parser


def config_options(parser: argparse.ArgumentParser, *, keep_parent: bool = False) -> None:
    """``--env`` and ``--config``. ``keep_parent``: a value given before a nested subcommand
    (``tap jobs --env prod retry ...``) is not reset by the subcommand's default."""
    default: dict[str, Any] = {"default": argparse.SUPPRESS} if keep_parent else {}
    parser.add_argument("--env", metavar="ENV", help=ENV_HELP, **default)
    parser.add_argument("--config", metavar="FILE", help=CONFIG_HELP, **default)


def target_options(parser: argparse.ArgumentParser, *, regions: str, keep_parent: bool = False) -> None:
    """The target of a command: ``--region`` (``regions``: "one" required, "one-checked" required but checked by
    the handler, "many" repeatable and optional), ``--local`` and the configuration options."""
    if regions == "many":
        parser.add_argument("--region", action="append", metavar="REGION", help=REGIONS_HELP)
    else:
        parser.add_argument("--region", required=regions == "one", metavar="REGION", help=f"{REGION_HELP}; required")
    parser.add_argument("--local", action="store_true", help=LOCAL_HELP)
    config_options(parser, keep_parent=keep_parent)


def json_option(parser: argparse.ArgumentParser, what: str) -> None:
    """``--json``: ``what`` says what is printed (its schema is in the README)."""
    parser.add_argument("--json", action="store_true", help=f"print {what} as JSON instead of text")


def usage_error(args: argparse.Namespace, message: str) -> int:
    """A usage error found by a handler, in the parser's own format; returns :attr:`ExitCode.USAGE`."""
    parser: argparse.ArgumentParser = args.parser
    parser.print_usage(sys.stderr)
    print(f"error: {parser.prog}: {message} (see {parser.prog} --help)", file=sys.stderr)
    return int(ExitCode.USAGE)


def _number(text: str, kind: type[int] | type[float], within: Callable[[Any], bool], outside: str, what: str) -> Any:
    """``text`` read as ``kind`` and held to ``within`` (argparse type errors otherwise; nan is never within)."""
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    if not within(value):
        raise argparse.ArgumentTypeError(f"{text} {outside}")
    return value


def port(text: str) -> int:
    """A TCP port (argparse type): anything else is a usage error before anything starts."""
    return int(_number(text, int, lambda n: 1 <= n <= 65535, "is not a port (1 to 65535)", "a port number"))


def reject_ratio(text: str) -> float:
    """``--max-reject-ratio`` within the worker setting's own range (argparse type)."""
    from analytics_platform.etl.settings import tunable_fields

    (definition,) = [f for f in tunable_fields() if f.name == "max_reject_ratio"]
    low, high = definition.metadata["minimum"], definition.metadata["maximum"]
    outside = f"is outside {low} to {high} (a share of the rows, not a percentage)"
    return float(_number(text, float, lambda r: low <= r <= high, outside, "a number"))


def fault_rate(text: str) -> float:
    """``--fault-rate``: a share from 0 to below 1 (argparse type)."""
    return float(_number(text, float, lambda r: 0 <= r < 1, "is outside 0 to below 1", "a number"))


def positive_int(text: str) -> int:
    """A whole number of at least 1 (argparse type)."""
    return int(_number(text, int, lambda n: n >= 1, "is below 1", "a whole number"))


__all__ = [
    "Command", "Default", "Handler", "Parser", "Subparsers", "add_command", "config_options", "fault_rate",
    "json_option", "port", "positive_int", "reject_ratio", "target_options", "usage_error",
]  # fmt: skip
