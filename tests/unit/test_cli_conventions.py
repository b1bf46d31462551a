"""The command line behaves like the tools platform engineers know: a version, every subcommand described with
examples, one error format with a "did you mean", distinct exit codes."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

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
        "demo", "completion", "console",
    }  # fmt: skip


@pytest.mark.parametrize("path", [p for p, _ in ALL], ids=" ".join)
def test_every_subcommand_has_a_description_examples_and_help_on_every_option(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    parser = dict(ALL)[path]
    assert parser.description and len(parser.description) > 20
    has_handler = parser.get_default("handler") is not None
    if has_handler:  # groups (etl, local) only list their subcommands
        assert parser.epilog and parser.epilog.startswith("examples:\n  ") and "tap " in parser.epilog, path
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
        (["plan", "--env", "dev", "--allow-dataloss"], "--allow-data-loss"),
        (["check", "--skip-checkof"], "--skip-checkov"),
        (["query", "--region", "eu-west-1", "--as-qeury-role", "SELECT 1"], "--as-query-role"),
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


@pytest.fixture
def nested(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project (cdktf.json, environments/dev.toml with a mistake) and a folder two levels down to run from."""
    (tmp_path / "cdktf.json").write_text("{}")
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "dev.toml").write_text("lambda_memory_mb = 1\n")
    deep = tmp_path / "data" / "incoming"
    deep.mkdir(parents=True)
    monkeypatch.delenv("TAP_ENVIRONMENTS_DIR", raising=False)
    monkeypatch.delenv("ENVIRONMENT_SUFFIX", raising=False)
    monkeypatch.chdir(deep)
    return tmp_path


def test_the_project_root_is_found_from_a_subdirectory_and_given_paths_stay_where_they_were_given(
    nested: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN tap run two folders below the project's root, with a --config file named relative to that folder
    Path("mine.toml").write_text('backend = "gcs"\n')
    # WHEN
    code = cli.main(["synth", "--env", "dev", "--config", "mine.toml"])
    # THEN the environment was found at the root, the file where it was given, and tap came back
    err = capsys.readouterr().err
    assert code == ExitCode.USAGE
    assert "environments/dev.toml: lambda_memory_mb" in err
    assert f"{nested / 'data' / 'incoming' / 'mine.toml'}: backend" in err
    assert Path.cwd() == nested / "data" / "incoming"


def test_a_path_typed_equal_to_its_default_still_stays_where_it_was_typed(nested: Path) -> None:
    here = Path.cwd()
    parser = cli.build_parser()
    for argv, expected in ((["synth", "--out", "cdktf.out"], str(here / "cdktf.out")), (["synth"], "cdktf.out")):
        args = parser.parse_args(argv)
        args.parser = parser
        back = cli._enter_project(args, parser)
        try:
            assert Path.cwd() == nested and args.out == expected  # typed: where typed; default: at the root
        finally:
            os.chdir(back or here)


def test_dash_c_runs_as_if_started_in_that_folder(nested: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (nested / "data" / "root.toml").write_text("lambda_batch_size = 0\n")
    code = cli.main(["-C", str(nested / "data"), "synth", "--config", "root.toml"])
    assert code == ExitCode.USAGE and "root.toml: lambda_batch_size" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stopped:
        cli.main(["-C", str(nested / "nope"), "synth"])
    assert stopped.value.code == ExitCode.USAGE
    assert "error: tap: -C " in capsys.readouterr().err
    assert Path.cwd() == nested / "data" / "incoming"


def test_dash_c_finds_the_project_root_from_that_folder(
    nested: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN tap started outside the project, pointed at a folder two levels inside it with a file named from there
    outside = nested.parent / "elsewhere"
    outside.mkdir()
    monkeypatch.chdir(outside)
    (nested / "data" / "incoming" / "mine.toml").write_text('backend = "gcs"\n')
    # WHEN
    code = cli.main(["-C", str(nested / "data" / "incoming"), "synth", "--env", "dev", "--config", "mine.toml"])
    # THEN the environments are the root's and the file is the one in DIR, as if tap was started in DIR
    err = capsys.readouterr().err
    assert code == ExitCode.USAGE
    assert "environments/dev.toml: lambda_memory_mb" in err
    assert f"{nested / 'data' / 'incoming' / 'mine.toml'}: backend" in err
    assert Path.cwd() == outside


def test_without_a_project_tap_stays_where_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.project_root(tmp_path) is None or (cli.project_root(tmp_path) / "cdktf.json").is_file()
    assert cli.project_root(tmp_path / "x") == cli.project_root(tmp_path)


def complete(script: Path, line: str) -> list[str]:
    """What bash offers for ``line`` (a trailing space: the next word) with ``script`` loaded."""
    words = line.split() + ([""] if line.endswith(" ") else [])
    program = f"source {script}; COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}; _tap; " \
        'printf "%s\\n" "${COMPREPLY[@]}"'  # fmt: skip
    done = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True)
    return [w for w in done.stdout.splitlines() if w]


def test_bash_completion_offers_commands_options_and_choices(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["completion", "bash"]) == 0
    script = tmp_path / "tap.bash"
    script.write_text(capsys.readouterr().out)
    assert complete(script, "tap lo") == ["local"]
    assert set(complete(script, "tap local ")) == {"-h", "--help", "up", "down", "constrain"}
    assert "--fault-rate" in complete(script, "tap local up --")
    assert complete(script, "tap jobs --status DEAD") == ["DEAD_LETTERED"]
    assert complete(script, "tap check --format ") == ["text", "json", "sarif"]
    assert "--restore" in complete(script, "tap jobs --region eu-west-1 retry --")
    # every command of the parser is offered at the top
    assert set(complete(script, "tap ")) >= {" ".join(p) for p, _ in ALL if len(p) == 1}
    # an option taking a file, a folder or a name offers nothing of tap's: the shell completes file names there
    assert complete(script, "tap synth --config ") == [] and complete(script, "tap -C ") == []
    assert complete(script, "tap etl convert --max-reject-ratio ") == []
    assert "--out" in complete(script, "tap synth --config c.toml --")


def test_zsh_completion_loads_the_same_function_through_bashcompinit(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["completion", "zsh"]) == 0
    out = capsys.readouterr().out
    assert "autoload -U +X bashcompinit && bashcompinit" in out and "complete -o default -F _tap tap" in out
