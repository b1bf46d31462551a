"""Live progress for long work: per region, resources done / planned and the resource in flight (from Terraform's
machine-readable ``-json`` stream); a spinner with elapsed time; bytes read of a file being converted.

On a terminal (stdout a TTY, ``NO_COLOR`` unset, ``TERM`` not ``dumb``) it draws with ``rich``; otherwise it prints
plain lines: a start and an end line per region and one line each time a region passes a quarter of its plan.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Say = Callable[[str], None]
#: Hook actions the plan's change summary does not count (a data source read during the apply, a no-op).
UNCOUNTED_ACTIONS = frozenset({"read", "noop"})


def live_terminal(stream: Any = None) -> bool:
    """Whether to draw live: a TTY, no ``NO_COLOR``, no dumb terminal."""
    stream = stream or sys.stdout
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


@dataclass
class RegionState:
    """What one region is doing."""

    region: str
    verb: str
    planned: int | None = None
    done: int = 0
    in_flight: str = ""
    started: float = 0.0
    finished: str = ""
    #: The quarters of the plan already announced in plain mode.
    quarters: int = 0


class RegionBoard:
    """Progress of one piece of work per region (see the module docstring). Use as a context manager; the
    per-region hooks are thread-safe (regions run in parallel)."""

    def __init__(self, regions: list[str], verb: str, *, say: Say = print, live: bool | None = None) -> None:
        self.states = {region: RegionState(region, verb) for region in regions}
        self._say = say
        self._live_wanted = live_terminal() if live is None else live
        self._live: Any = None
        self._lock = threading.Lock()
        self._say_lock = threading.Lock()

    def _emit(self, text: str) -> None:
        """One plain line (whole: regions print from their own threads)."""
        with self._say_lock:
            self._say(text)

    def __enter__(self) -> RegionBoard:
        if self._live_wanted:
            from rich.console import Console
            from rich.live import Live

            # redrawn from the states on every refresh
            self._live = Live(console=Console(), refresh_per_second=4, get_renderable=self._render)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.update(self._render(), refresh=True)
            self._live.__exit__(*exc)
            self._live = None

    # --- hooks ------------------------------------------------------------------------------------------------
    def start(self, region: str, verb: str | None = None) -> None:
        with self._lock:
            state = self.states[region]
            state.verb, state.started, state.finished = verb or state.verb, time.monotonic(), ""
            state.done, state.planned, state.in_flight, state.quarters = 0, None, "", 0
        if self._live is None:
            self._emit(f"  [{region}] {state.verb}...")

    def plan(self, region: str, total: int) -> None:
        with self._lock:
            self.states[region].planned = total

    def finish(self, region: str, text: str) -> None:
        """The region's end: ``text`` such as ``done in 101.2s`` or ``FAILED after 3.0s``."""
        with self._lock:
            state = self.states[region]
            state.finished, state.in_flight = text, ""
        if self._live is None:
            self._emit(f"  [{region}] {text}")

    def terraform_events(self, region: str) -> Callable[[dict[str, Any]], None]:
        """A consumer of ``terraform ... -json`` messages for ``region``."""
        return lambda message: self._terraform_event(region, message)

    def _terraform_event(self, region: str, message: dict[str, Any]) -> None:
        kind = message.get("type")
        hook = message.get("hook", {})
        address = hook.get("resource", {}).get("addr", "")
        announce = ""
        with self._lock:
            state = self.states[region]
            if kind == "change_summary" and message.get("changes", {}).get("operation") == "plan":
                changes = message["changes"]
                state.planned = int(changes.get("add", 0)) + int(changes.get("change", 0)) + int(
                    changes.get("remove", 0))  # fmt: skip
            elif kind in {"apply_start", "refresh_start"}:
                state.in_flight = f"{'refreshing ' if kind == 'refresh_start' else ''}{address}"
            elif kind in {"apply_complete", "apply_errored"} and hook.get("action") not in UNCOUNTED_ACTIONS:
                state.done += 1
                if state.in_flight == address:
                    state.in_flight = ""
                if state.planned:
                    quarter = min(4, state.done * 4 // state.planned)
                    if quarter > state.quarters and quarter < 4:
                        state.quarters = quarter
                        announce = f"  [{region}] {state.done}/{state.planned} resources"
        if announce and self._live is None:
            self._emit(announce)

    # --- drawing ----------------------------------------------------------------------------------------------
    def _render(self) -> Any:
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        table = Table.grid(padding=(0, 2))
        for state in self.states.values():
            elapsed = time.monotonic() - state.started if state.started else 0.0
            total = state.planned or 0
            bar = ProgressBar(total=total or None, completed=state.done, width=24)
            counts = f"{state.done}/{total}" if total else f"{state.done}"
            status = state.finished or f"{state.verb} {elapsed:5.1f}s"
            table.add_row(f"[bold]{state.region}[/bold]", bar, counts, status, state.in_flight[-60:])
        return table


@contextmanager
def spinner(text: str, *, say: Say = print, live: bool | None = None) -> Iterator[None]:
    """A spinner with elapsed time while the block runs (plain mode: one line before, one after)."""
    started = time.monotonic()
    if not (live_terminal() if live is None else live):
        say(f"{text}...")
        yield
        say(f"{text}: done in {time.monotonic() - started:.1f}s")
        return
    from rich.console import Console

    with (
        Console(stderr=False).status(f"{text}...") as status,
        _every(0.5, lambda: status.update(f"{text}... {time.monotonic() - started:.0f}s")),
    ):
        yield
    say(f"{text}: done in {time.monotonic() - started:.1f}s")


def bytes_read(path: Path) -> int | None:
    """How far this process has read ``path``: the largest file offset among its open descriptors of that file
    (Linux ``/proc``); None where that cannot be known."""
    target = path.resolve()
    best: int | None = None
    try:
        descriptors = os.listdir("/proc/self/fd")
    except OSError:
        return None
    for fd in descriptors:
        try:
            if Path(os.readlink(f"/proc/self/fd/{fd}")) != target:
                continue
            with open(f"/proc/self/fdinfo/{fd}", encoding="ascii") as info:
                position = int(info.readline().split()[1])
        except (OSError, ValueError, IndexError):
            continue
        best = position if best is None else max(best, position)
    return best


@contextmanager
def reading(path: Path, text: str, *, say: Say = print, live: bool | None = None) -> Iterator[None]:
    """A bar of bytes read / total of ``path`` while the block reads it (plain mode: nothing; the caller prints
    its result)."""
    if not (live_terminal() if live is None else live):
        yield
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

    total = path.stat().st_size
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeElapsedColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task(text, total=total)

        def poll() -> None:
            position = bytes_read(path)
            if position is not None:
                bar.update(task, completed=min(position, total))

        with _every(0.2, poll):
            yield


@contextmanager
def _every(seconds: float, tick: Callable[[], None]) -> Iterator[None]:
    """Call ``tick`` every ``seconds`` in a background thread while the block runs."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(seconds):
            tick()

    ticker = threading.Thread(target=loop, daemon=True)
    ticker.start()
    try:
        yield
    finally:
        stop.set()
        ticker.join()


__all__ = ["RegionBoard", "bytes_read", "live_terminal", "reading", "spinner"]
