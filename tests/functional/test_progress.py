"""Live progress: drawn on a terminal, plain lines elsewhere (CI, a pipe, ``NO_COLOR``); fed by Terraform's real
``-json`` stream (built-in ``terraform_data`` resources, no provider needed)."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

from analytics_platform.local.terraform import TerraformRunner
from analytics_platform.progress import RegionBoard, bytes_read, live_terminal
from tests.pty_run import run_in_pty

ROOT = Path(__file__).resolve().parents[2]
STACK = {"resource": {"terraform_data": {f"r{i}": {"input": str(i)} for i in range(8)}}}

#: A script applying the stack in two "regions" through a board, as ``tap local up`` does.
SCRIPT = """
import sys
from pathlib import Path
from analytics_platform.local.terraform import TerraformRunner
from analytics_platform.local.terraform_runs import run_per_region
from analytics_platform.progress import RegionBoard
work, stacks = Path(sys.argv[1]), Path(sys.argv[2])
runner = TerraformRunner.create(work)
regions = ["us-east-1", "eu-west-1"]
with RegionBoard(regions, "applying") as board:
    run_per_region(lambda r: runner.apply(stacks / r, f"apply-{r}", board.terraform_events(r)), regions, board=board)
print("ALL APPLIED")
"""


@pytest.fixture
def stacks(tmp_path: Path) -> Path:
    for region in ("us-east-1", "eu-west-1"):
        (tmp_path / "stacks" / region).mkdir(parents=True)
        (tmp_path / "stacks" / region / "main.tf.json").write_text(json.dumps(STACK))
    (tmp_path / "work").mkdir()
    return tmp_path


def run_script(stacks: Path, *, tty: bool, no_color: bool = False) -> tuple[int, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    argv = [sys.executable, "-c", SCRIPT, str(stacks / "work"), str(stacks / "stacks")]
    if tty:
        if no_color:
            env["NO_COLOR"] = "1"
            argv = ["env", "NO_COLOR=1", *argv]
        return run_in_pty(argv, env=env, cwd=ROOT, timeout=120)
    import subprocess

    done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    return done.returncode, done.stdout + done.stderr


def test_on_a_terminal_each_region_is_drawn_live_with_resources_done_of_planned(stacks: Path) -> None:
    code, shown = run_script(stacks, tty=True)
    assert code == 0, shown
    assert "\x1b[" in shown  # drawn, not printed
    for region in ("us-east-1", "eu-west-1"):
        assert re.search(rf"{region}.*8/8.*done in", shown), shown[-2000:]
    assert "ALL APPLIED" in shown


def test_without_a_terminal_the_lines_are_plain(stacks: Path) -> None:
    code, shown = run_script(stacks, tty=False)
    assert code == 0, shown
    assert "\x1b[" not in shown
    lines = shown.splitlines()
    for region in ("us-east-1", "eu-west-1"):
        assert f"  [{region}] applying..." in lines
        assert f"  [{region}] 2/8 resources" in lines and f"  [{region}] 6/8 resources" in lines
        assert any(re.fullmatch(rf"  \[{region}\] done in \d+\.\ds", line) for line in lines)


def test_no_color_on_a_terminal_gives_plain_lines(stacks: Path) -> None:
    code, shown = run_script(stacks, tty=True, no_color=True)
    assert code == 0, shown
    assert "\x1b[" not in shown and "  [eu-west-1] applying..." in shown


def test_the_log_keeps_terraforms_human_text(stacks: Path) -> None:
    runner = TerraformRunner.create(stacks / "work")
    board = RegionBoard(["r"], "applying", say=lambda line: None, live=False)
    runner.apply(stacks / "stacks" / "eu-west-1", "apply-r", board.terraform_events("r"))
    log = (stacks / "work" / "logs" / "apply-r.log").read_text()
    assert "terraform_data.r0: Creation complete after" in log and "Apply complete! Resources: 8 added" in log
    assert (board.states["r"].planned, board.states["r"].done) == (8, 8)


def test_a_failing_apply_still_reports_terraforms_error_text(stacks: Path) -> None:
    broken = stacks / "stacks" / "broken"
    broken.mkdir()
    (broken / "main.tf.json").write_text(json.dumps({"resource": {"terraform_data": {"x": {"nope": 1}}}}))
    runner = TerraformRunner.create(stacks / "work")
    board = RegionBoard(["r"], "applying", say=lambda line: None, live=False)
    with pytest.raises(Exception, match='No argument or block type is named "nope"'):
        runner.apply(broken, "apply-broken", board.terraform_events("r"))


def test_live_is_off_for_pipes_dumb_terminals_and_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty:
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert live_terminal(Tty()) is True
    assert live_terminal(open(os.devnull, "w")) is False  # noqa: SIM115
    monkeypatch.setenv("NO_COLOR", "1")
    assert live_terminal(Tty()) is False
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("TERM", "dumb")
    assert live_terminal(Tty()) is False


def test_bytes_read_follows_this_process_reading_a_file(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_bytes(b"x" * 100_000)
    assert bytes_read(path) is None  # not open
    with path.open("rb") as handle:
        handle.read(40_000)
        assert 40_000 <= (bytes_read(path) or 0) <= 100_000  # where the buffered reader got to


def test_etl_convert_shows_bytes_read_of_total_on_a_terminal_and_nothing_more_elsewhere(tmp_path: Path) -> None:
    source = tmp_path / "wide.csv"
    source.write_text("id,name,score\n" + "".join(f"{i},name-{i % 97},{i * 0.5}\n" for i in range(400_000)))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    argv = [sys.executable, "-m", "analytics_platform.cli", "etl", "convert", str(source)]
    code, shown = run_in_pty(argv, env=env, cwd=tmp_path, timeout=120)
    assert code == 0, shown
    total_mb = f"{source.stat().st_size / 1e6:.1f} MB"
    assert "converting wide.csv" in shown and f"/{total_mb}" in shown, shown[-1500:]
    assert "SUCCEEDED" in shown
    import subprocess

    done = subprocess.run([*argv, "--json"], env=env, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert done.returncode == 0 and json.loads(done.stdout)["status"] == "SUCCEEDED"  # JSON only on stdout
    assert "converting" not in done.stdout + done.stderr


def test_data_source_reads_during_an_apply_are_not_counted_as_planned_changes() -> None:
    board = RegionBoard(["r"], "applying", say=lambda line: None, live=False)
    events = board.terraform_events("r")
    events({"type": "change_summary", "changes": {"add": 2, "change": 0, "remove": 0, "operation": "plan"}})
    for address, action in (("data.aws_region.here", "read"), ("aws_s3_bucket.a", "create"),
                            ("aws_s3_bucket.b", "create")):  # fmt: skip
        hook = {"resource": {"addr": address}, "action": action}
        events({"type": "apply_start", "hook": hook})
        events({"type": "apply_complete", "hook": hook})
    assert (board.states["r"].done, board.states["r"].planned) == (2, 2)


def test_odd_lines_in_the_stream_never_stop_the_command_it_reads(tmp_path: Path) -> None:
    from analytics_platform.local.terraform_runs import run_streaming

    # GIVEN a command printing a diagnostic without detail object, JSON that is no object, a stray byte, then more
    script = tmp_path / "noisy.sh"
    script.write_bytes(
        b'printf \'{"type":"diagnostic","diagnostic":null,"@message":"odd"}\\n[1,2]\\n\\377\\376 raw\\n\'\n'
        b'sleep 0.2\nprintf \'{"type":"apply_complete","@message":"later"}\\n\'\necho done > "$1"\n'
    )
    marker, log = tmp_path / "finished", tmp_path / "run.log"
    seen: list[dict[str, object]] = []
    with log.open("w") as handle:
        code = run_streaming(["sh", str(script), str(marker)], tmp_path, dict(os.environ), handle, seen.append)
    # THEN the command ran to its end, every line is in the log, and the messages reached the consumer
    assert code == 0 and marker.read_text() == "done\n"
    text = log.read_text()
    assert "odd" in text and "[1,2]" in text and "raw" in text and "later" in text
    assert [m["@message"] for m in seen] == ["odd", "later"]
