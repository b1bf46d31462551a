"""The operations' command line: help, options, exit codes of refusals."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from analytics_platform import cli
from analytics_platform.cli import jobs, operations
from analytics_platform.ops import runs
from analytics_platform.ops.runs import RegionRun
from tests.unit.ops_support import (
    FakeStdin,
)


# --- command line -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["bootstrap", "plan", "deploy", "destroy", "drift", "redrive", "jobs"])
def test_operation_commands_have_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.build_parser().parse_args([command, "--help"])
    assert exited.value.code == 0
    assert f"usage: tap {command}" in capsys.readouterr().out


def test_operation_commands_parse_their_options() -> None:
    parser = cli.build_parser()
    args = parser.parse_args(
        ["deploy", "--env", "staging", "--region", "us-east-1", "--region", "eu-west-1", "--local"]
    )
    assert (args.env, args.region, args.local, args.handler) == (
        "staging", ["us-east-1", "eu-west-1"], True, operations._cmd_terraform,
    )  # fmt: skip
    assert parser.parse_args(["destroy", "--yes"]).yes is True
    assert parser.parse_args(["drift", "--publish"]).publish is True
    retry = parser.parse_args(["jobs", "retry", "job-1", "job-2", "--region", "eu-west-1"])
    assert (retry.handler, retry.job_ids, retry.region) == (jobs._cmd_retry, ["job-1", "job-2"], "eu-west-1")
    with pytest.raises(SystemExit):
        parser.parse_args(["plan", "--yes"])  # only destroy asks


def test_jobs_without_region_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["jobs"]) == 2
    assert "--region" in capsys.readouterr().err


def test_destroy_without_yes_and_without_a_terminal_exits_2_and_destroys_nothing(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN no terminal, and a Terraform run that fails the test if it is ever reached
    monkeypatch.setattr(sys, "stdin", FakeStdin("dev\n", tty=False))
    called: list[Callable[..., Any]] = []

    def forbidden(*args: Any, **kwargs: Any) -> list[RegionRun]:
        called.append(forbidden)
        pytest.fail("destroy ran Terraform without confirmation")

    monkeypatch.setattr(runs, "terraform_runs", forbidden)
    # WHEN
    code = cli.main(["destroy", "--env", "dev"])
    # THEN
    assert code == 2
    assert not called
    assert "--yes" in capsys.readouterr().err


def test_an_unknown_region_on_the_command_line_exits_2(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["plan", "--env", "dev", "--region", "mars-north-1"]) == 2
    assert "mars-north-1" in capsys.readouterr().err


def test_local_with_nothing_up_exits_2(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["deploy", "--local"]) == 2
    assert "tap local up" in capsys.readouterr().err


def test_options_given_before_jobs_retry_are_kept() -> None:
    from analytics_platform.cli import build_parser

    args = build_parser().parse_args(["jobs", "--env", "prod", "retry", "--region", "eu-west-1", "--status", "FAILED"])
    assert (args.env, args.region, args.status) == ("prod", "eu-west-1", "FAILED")
    args = build_parser().parse_args(["jobs", "retry", "--env", "staging", "--region", "eu-west-1", "abc"])
    assert (args.env, args.job_ids) == ("staging", ["abc"])


@pytest.mark.parametrize("command", [["plan"], ["deploy", "--skip-preflight"], ["destroy", "--yes"], ["drift"]])
def test_a_held_operation_lock_is_refused_with_exit_2_before_terraform_runs(
    command: list[str], workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from analytics_platform.ops import drift
    from analytics_platform.targeting.deployment import resolve_deployment

    # GIVEN another tap command holding dev's lock, and Terraform that fails the test if it is ever reached
    def forbidden(*args: Any, **kwargs: Any) -> Any:
        pytest.fail("Terraform ran while another command held the environment's lock")

    monkeypatch.setattr(runs, "terraform_runs", forbidden)
    monkeypatch.setattr(drift, "detect_drift", forbidden)
    monkeypatch.setattr("analytics_platform.targeting.deployment.Deployment.synthesize", lambda self: None)
    with resolve_deployment(env="dev").exclusive():
        # WHEN the command runs THEN it is refused before anything happened: exit 2, the reason named
        code = cli.main([*command, "--env", "dev"])
    assert code == 2
    assert "another tap command is operating on dev" in capsys.readouterr().err
