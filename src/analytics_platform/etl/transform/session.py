"""The DuckDB session of one conversion, its deadline watchdog, and how its errors are classified."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from analytics_platform.etl.exceptions import (
    CompressionError,
    DiskFullError,
    EncodingError,
    MalformedContentError,
    PermanentError,
    TimeBudgetExceededError,
    TooLargeError,
)
from analytics_platform.etl.transform.columns import quote_literal
from analytics_platform.etl.transform.model import Limits
from analytics_platform.etl.transform.sniff import DISK_FULL_HINT

#: Parquet row groups: up to 500k rows or 48 MB, whichever comes first. Bigger groups than DuckDB's default
#: (122,880 rows) write ~10% faster and suit analytics scans; the byte cap keeps wide rows inside the memory
#: limit (benchmarks/etl_throughput.py).
ROW_GROUP_ROWS = 500_000
ROW_GROUP_MB = 48
WATCH_INTERVAL_SECONDS = 0.2


class Watchdog:
    """Stops a conversion at its deadline and measures how far it got.

    Progress is the input's read offset: DuckDB reads the (possibly compressed) input sequentially, so the
    offset of its file descriptor (``/proc/self/fdinfo``) over the file size is the share done; Python loops
    report theirs with :meth:`report`. At the deadline the DuckDB connection is interrupted.
    """

    def __init__(self, deadline: float | None, input_path: Path) -> None:
        self.deadline = deadline
        self._input = str(input_path.resolve())
        self._size = max(1, input_path.stat().st_size)
        self._started = time.monotonic()
        self._done = 0.0
        self.fired = False
        self._stop = threading.Event()
        self._connection: duckdb.DuckDBPyConnection | None = None

    def report(self, fraction: float) -> None:
        """A Python reader's own progress (0..1); raises once the deadline has passed."""
        self._done = max(self._done, fraction)
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self.fired = True
            raise self.error()

    def _read_offset(self) -> None:
        try:
            for fd in os.listdir("/proc/self/fd"):
                if os.readlink(f"/proc/self/fd/{fd}") == self._input:
                    position = int(Path(f"/proc/self/fdinfo/{fd}").read_text().split()[1])
                    self._done = max(self._done, min(1.0, position / self._size))
        except (OSError, ValueError, IndexError):
            return  # no /proc (not Linux), or the descriptor closed meanwhile

    def _watch(self) -> None:
        while not self._stop.wait(WATCH_INTERVAL_SECONDS):
            self._read_offset()
            if self.deadline is not None and time.monotonic() >= self.deadline and self._connection is not None:
                self.fired = True
                self._connection.interrupt()
                return

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

    def error(self) -> TimeBudgetExceededError:
        """The error that stops the job: how long it ran, how far it got, what it would need."""
        elapsed = time.monotonic() - self._started
        estimate = elapsed / self._done if self._done > 0.01 else None
        share = f" at {self._done:.0%} done" if self._done else ""
        return TimeBudgetExceededError(
            f"conversion stopped before the function's deadline after {elapsed:.0f} s{share}",
            elapsed_seconds=elapsed,
            estimated_total_seconds=estimate,
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


def classify_duckdb_error(error: duckdb.Error) -> PermanentError:
    """The permanent error a DuckDB failure means for the file; a full disk raises :class:`DiskFullError`."""
    text = str(error).splitlines()[0][:500]
    lowered = text.lower()
    if "no space left" in lowered:
        raise DiskFullError(f"the function's ephemeral storage is full ({text}): {DISK_FULL_HINT}") from error
    if isinstance(error, duckdb.OutOfMemoryException):
        return TooLargeError(f"the file needs more memory than the worker allows: {text}")
    if "non-record json" in lowered:
        return MalformedContentError("JSON of the wrong shape: every element must be an object (a record)")
    if "unicode" in lowered or "utf" in lowered or "encoding" in lowered:
        return EncodingError(f"not UTF-8 text: {text}")
    if "gzip" in lowered or "compression" in lowered:
        return CompressionError(text)
    return MalformedContentError(text)
