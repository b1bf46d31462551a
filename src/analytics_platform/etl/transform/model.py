"""What a conversion is given (:class:`Limits`, :class:`Source`) and what it reports (:class:`ConversionResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analytics_platform.etl.exceptions import PermanentError

CSV, JSON_LINES, JSON_ARRAY = "csv", "jsonl", "json_array"
#: Longest line accepted (CSV and JSON Lines); longer lines are rejected, not loaded into memory.
#: DuckDB sizes its CSV read buffers at 16x this, so it also bounds the reader's memory.
MAX_LINE_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Resource and quality limits of one conversion (by default the worker's).

    ``deadline`` is a ``time.monotonic()`` instant by which the conversion must have stopped (None: no limit).
    """

    memory_mb: int = 307
    threads: int = 1
    max_reject_ratio: float = 0.1
    max_line_bytes: int = MAX_LINE_BYTES
    deadline: float | None = None


@dataclass(frozen=True)
class Sniffed:
    """What the first bytes say about a file; ``sample`` is its first (decompressed) bytes, read once."""

    kind: str
    compressed: bool
    delimiter: str = ","
    sample: bytes = b""
    complete: bool = True


@dataclass(frozen=True)
class Source:
    """One conversion's input and outputs: the single argument shape of every reader."""

    path: Path
    sniffed: Sniffed
    limits: Limits
    work: Path
    output: Path
    quarantine: Path


@dataclass
class ReadResult:
    """What a reader wrote: rows, rejected rows and the output schema (column name, DuckDB type)."""

    rows_out: int
    rejected: int
    schema: list[tuple[str, str]]


@dataclass
class ConversionResult:
    """Figures of one conversion; ``quarantine_path`` is set when rows were rejected.

    ``failure`` is set when the file cannot become a dataset (bad format, too many rejects, ...): the job
    ends FAILED with it, the Parquet output is removed and the figures say how far it got.
    """

    input_format: str
    compressed: bool
    rows_in: int
    rows_out: int
    rows_rejected: int
    bytes_in: int
    bytes_out: int
    output_path: Path
    quarantine_path: Path | None
    schema: list[tuple[str, str]] = field(default_factory=list)
    failure: PermanentError | None = None

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary, as ``tap etl convert`` prints it."""
        return {
            "format": self.input_format + ("+gzip" if self.compressed else ""),
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "rows_rejected": self.rows_rejected,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "output": str(self.output_path),
            "quarantine": str(self.quarantine_path) if self.quarantine_path else None,
            "schema": {name: kind for name, kind in self.schema},
        }
