"""The DuckDB session of one conversion and its deadline watchdog."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from analytics_platform.etl.exceptions import TimeBudgetExceededError
from analytics_platform.etl.transform.columns import quote_literal
from analytics_platform.etl.transform.model import Limits

#: Parquet row groups: up to 500k rows or 48 MB, whichever comes first. Bigger groups than DuckDB's default
#: (122,880 rows) write ~10% faster and suit analytics scans; the byte cap keeps wide rows inside the memory
#: limit (benchmarks/etl_throughput.py).
ROW_GROUP_ROWS = 500_000
ROW_GROUP_MB = 48
WATCH_INTERVAL_SECONDS = 0.2


@dataclass(frozen=True)
class _Phase:
    """One sequential read of a file: a CSV pass, the JSON Lines splitter, DuckDB reading the clean copy."""

    path: str
    size: int
    read_ahead: int
    started: float


def read_ahead(limits: Limits, *, compressed: bool) -> int:
    """How far DuckDB's reads of a file run ahead of its work: one 16x ``max_line_bytes`` buffer of an
    uncompressed file (DuckDB sizes its buffers so); compressed input is read in small chunks."""
    return 0 if compressed else 16 * limits.max_line_bytes


class Watchdog:
    """Stops a conversion at its deadline and measures how far it got.

    A conversion is phases, each reading one file from its start (:meth:`follow`). A phase's progress is its
    file's read offset less the reader's buffer: the offset of the file descriptor (``/proc/self/fdinfo``)
    over the file's size, as DuckDB reads sequentially; Python loops report theirs with :meth:`report`.
    (DuckDB 1.2's Python connection has no ``query_progress()``.) The estimate is the finished phases' time
    plus the current phase's at its measured rate; later phases are not counted, so it is a lower bound.

    From the deadline on, the DuckDB connection is interrupted at every tick: DuckDB drops an interrupt that
    arrives between two statements, so one interrupt is not enough.
    """

    def __init__(self, deadline: float | None) -> None:
        self.deadline = deadline
        self._started = time.monotonic()
        self._phase: _Phase | None = None
        self._done = 0.0
        self.fired = False
        self._stop = threading.Event()
        self._connection: duckdb.DuckDBPyConnection | None = None

    def follow(self, path: Path, *, ahead: int = 0) -> None:
        """A new phase reads ``path`` from its start; its reader buffers ``ahead`` bytes beyond its work."""
        self._phase = _Phase(str(path.resolve()), max(1, path.stat().st_size), ahead, time.monotonic())
        self._done = 0.0

    def report(self, fraction: float) -> None:
        """A Python reader's own progress in the current phase (0..1); raises once the deadline has passed."""
        self._done = max(self._done, fraction)
        if self.fired or (self.deadline is not None and time.monotonic() >= self.deadline):
            self.fired = True
            raise self.error()

    def _read_offset(self) -> None:
        phase = self._phase
        if phase is None:
            return
        try:
            for fd in os.listdir("/proc/self/fd"):
                if os.readlink(f"/proc/self/fd/{fd}") == phase.path:
                    position = int(Path(f"/proc/self/fdinfo/{fd}").read_text().split()[1])
                    done = min(1.0, max(0, position - phase.read_ahead) / phase.size)
                    if phase is self._phase:  # not a phase that ended meanwhile
                        self._done = max(self._done, done)
        except (OSError, ValueError, IndexError):
            return  # no /proc (not Linux), or the descriptor closed meanwhile

    def _watch(self) -> None:
        while not self._stop.wait(WATCH_INTERVAL_SECONDS):
            self._read_offset()
            if self.deadline is not None and time.monotonic() >= self.deadline and self._connection is not None:
                self.fired = True
                self._connection.interrupt()

    @contextmanager
    def guarding(self, connection: duckdb.DuckDBPyConnection) -> Iterator[None]:
        """Watch ``connection`` while the block runs."""
        self._connection = connection
        thread = threading.Thread(target=self._watch, name="conversion-watchdog", daemon=True)
        thread.start()
        try:
            yield
        finally:
            self._stop.set()
            thread.join()
            self._connection = None

    def estimate(self) -> float | None:
        """Seconds the whole conversion needs at the measured rate; None when nothing was measured yet."""
        phase, done = self._phase, self._done
        if phase is None or done <= 0.01:
            return None
        now = time.monotonic()
        return (phase.started - self._started) + (now - phase.started) / done

    def error(self) -> TimeBudgetExceededError:
        """The error that stops the job: how long it ran, how far it got, what it would need."""
        self._read_offset()
        estimate = self.estimate()
        elapsed = time.monotonic() - self._started
        share = f" at {elapsed / estimate:.0%} done" if estimate else ""
        return TimeBudgetExceededError(
            f"conversion stopped before the function's deadline after {elapsed:.{1 if elapsed < 10 else 0}f} s{share}",
            elapsed_seconds=elapsed,
            estimated_total_seconds=max(estimate, elapsed) if estimate else None,
        )


@contextmanager
def duckdb_session(limits: Limits, temp_dir: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB capped at ``limits.memory_mb``, spilling to ``temp_dir``, no extensions loaded."""
    temp_dir.mkdir(parents=True, exist_ok=True)
    connection = duckdb.connect(
        ":memory:",
        config={
            "memory_limit": f"{limits.memory_mb}MB",
            "threads": limits.threads,
            "preserve_insertion_order": False,
            "temp_directory": str(temp_dir),
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        },
    )
    connection.execute("SET enable_progress_bar = false")  # it would print into the function's log
    try:
        yield connection
    finally:
        connection.close()


def describe(con: duckdb.DuckDBPyConnection, relation_sql: str) -> list[tuple[str, str]]:
    """(name, type) of each column of a relation."""
    rows = con.execute(f"DESCRIBE SELECT * FROM {relation_sql}").fetchall()
    return [(str(row[0]), str(row[1])) for row in rows]


def copy_to_parquet(con: duckdb.DuckDBPyConnection, select_sql: str, output: Path) -> int:
    """Write a query to zstd Parquet; returns the rows written."""
    row = con.execute(
        f"COPY ({select_sql}) TO {quote_literal(str(output))} "
        f"(FORMAT PARQUET, COMPRESSION ZSTD, ROW_GROUP_SIZE {ROW_GROUP_ROWS}, ROW_GROUP_SIZE_BYTES '{ROW_GROUP_MB}MB')"
    ).fetchone()
    return int(row[0]) if row else 0
