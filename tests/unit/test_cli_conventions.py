"""The command line behaves like the tools platform engineers know: a version, every subcommand described with
examples, one error format with a "did you mean", distinct exit codes."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator

import pytest

from analytics_platform import cli
from analytics_platform.exit_codes import ExitCode


def subcommands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield (*path, name), child
                yield from subcommands(child, (*path, name))


ALL = list(subcommands(cli.build_parser()))


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        cli.main(["--version"])
    assert stopped.value.code == 0
    assert re.fullmatch(r"tap (\d+\.\d+\.\d+\S*|unknown \(not installed\))\n", capsys.readouterr().out)


def test_every_command_is_listed() -> None:
    names = {" ".join(path) for path, _ in ALL}
    assert names == {
        "synth", "check", "bootstrap", "preflight", "plan", "deploy", "destroy", "drift", "jobs", "jobs retry",
        "redrive", "query", "datasets", "etl", "etl convert", "local", "local up", "local down", "local constrain",
        "demo",
    }  # fmt: skip


@pytest.mark.parametrize("path", [p for p, _ in ALL], ids=" ".join)
def test_every_subcommand_has_a_description_examples_and_help_on_every_option(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    parser = dict(ALL)[path]
    assert parser.description and len(parser.description) > 20
    has_handler = parser.get_default("handler") is not None
    if has_handler:  # groups (etl, local) only list their subcommands
        assert parser.epilog and parser.epilog.startswith("examples:\n  tap "), path
    for action in parser._actions:
        if action.option_strings and action.help != argparse.SUPPRESS:
            assert action.help, f"tap {' '.join(path)} {action.option_strings[0]} has no help"
    with pytest.raises(SystemExit) as stopped:
        cli.main([*path, "--help"])
    assert stopped.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: tap {' '.join(path)}")


@pytest.mark.parametrize(
    ("argv", "suggestion"),
    [
        (["qeury"], "query"),
        (["local", "dwn"], "down"),
        (["jobs", "--region", "eu-west-1", "--status", "FAILD"], "FAILED"),
    ],
)
def test_a_misspelt_choice_is_a_usage_error_that_suggests_the_closest(
    argv: list[str], suggestion: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        cli.main(argv)
    assert stopped.value.code == ExitCode.USAGE
    err = capsys.readouterr().err
    assert f"did you mean '{suggestion}'?" in err
    assert re.search(r"^error: tap[a-z ]*: .*\(see tap[a-z ]* --help\)$", err, re.M), err


def test_nothing_close_suggests_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["xyzzy"])
    assert "did you mean" not in capsys.readouterr().err


def test_a_required_option_checked_by_a_handler_reads_like_argparse(capsys: pytest.CaptureFixture[str]) -> None:
    # tap jobs checks --region itself (tap jobs retry carries its own): same words, same format, same exit code
    assert cli.main(["jobs"]) == ExitCode.USAGE
    handler_error = capsys.readouterr().err.splitlines()[-1]
    with pytest.raises(SystemExit) as stopped:
        cli.main(["datasets"])
    assert stopped.value.code == ExitCode.USAGE
    parser_error = capsys.readouterr().err.splitlines()[-1]
    assert handler_error == "error: tap jobs: the following arguments are required: --region (see tap jobs --help)"
    assert parser_error == (
        "error: tap datasets: the following arguments are required: --region (see tap datasets --help)"
    )


def test_exit_codes_are_distinct_and_documented_in_tap_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert len({int(code) for code in ExitCode}) == len(ExitCode)
    assert ExitCode.DRIFT != ExitCode.USAGE
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for code in (ExitCode.OK, ExitCode.FAILED, ExitCode.USAGE, ExitCode.DRIFT):
        assert f"{int(code)} " in out.split("exit codes:")[1]


def test_a_bad_fault_rate_is_refused_before_anything_starts(capsys: pytest.CaptureFixture[str]) -> None:
    for rate in ("1", "-0.1", "nan", "half"):
        with pytest.raises(SystemExit) as stopped:
            cli.main(["local", "up", "--fault-rate", rate])
        assert stopped.value.code == ExitCode.USAGE and "--fault-rate" in capsys.readouterr().err
