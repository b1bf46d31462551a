"""How Terraform runs are driven: a ``-json`` command's messages streamed to a consumer as they come (progress) and
to the log as text, and one action per region, in parallel, every region attempted."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from analytics_platform.progress import RegionBoard
from analytics_platform.region_runner import run_each

#: A consumer of Terraform's machine-readable messages (``terraform ... -json``, one JSON object per line).
Events = Callable[[dict[str, Any]], None]


def run_streaming(command: list[str], cwd: Path, env: dict[str, str], log: IO[str], events: Events) -> int:
    """Run ``command`` (a ``-json`` Terraform command), hand each message to ``events`` and write its text to
    ``log`` (a diagnostic with its detail; a line that is not JSON as it is); returns the exit code."""
    with subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        encoding="utf-8",
        errors="replace",  # a provider's or TF_LOG's stray bytes must not stop the reading
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:  # read to the end whatever a line holds: a closed pipe would kill Terraform
            try:
                _handle_line(line, log, events)
            except Exception as error:
                log.write(f"{line.rstrip()}\n(this line could not be read: {type(error).__name__}: {error})\n")
        log.flush()
        return process.wait()


def _handle_line(line: str, log: IO[str], events: Events) -> None:
    """One line of a ``-json`` run: its text to the log, the message to ``events`` (progress never fails a run)."""
    try:
        message = json.loads(line)
    except json.JSONDecodeError:
        log.write(line)
        return
    if not isinstance(message, dict):
        log.write(line)
        return
    diagnostic = message.get("diagnostic")
    detail = diagnostic.get("detail") if message.get("type") == "diagnostic" and isinstance(diagnostic, dict) else None
    log.write(str(message.get("@message", "")) + (f"\n{detail}" if detail else "") + "\n")
    try:
        events(message)
    except Exception as error:  # progress must never stop an apply
        log.write(f"(progress display failed: {type(error).__name__}: {error})\n")


def run_per_region(
    action: Callable[[str], None],
    regions: Sequence[str],
    *,
    parallel: bool = True,
    progress: Callable[[str], None] = print,
    verb: str = "applying",
    board: RegionBoard | None = None,
) -> dict[str, float]:
    """Run ``action(region)`` for every region, in parallel by default; returns seconds per region.

    Every region is attempted even if another fails; the first failure is raised afterwards. ``board`` shows each
    region's progress (by default plain lines through ``progress``).
    """
    board = board or RegionBoard(list(regions), verb, say=progress, live=False)
    outcomes = run_each(regions, action, board=board, verb=verb, parallel=parallel)
    errors = [outcome.error for outcome in outcomes if outcome.error is not None]
    if errors:
        raise errors[0]
    return {outcome.region: outcome.seconds for outcome in outcomes}
