"""CSV / JSON Lines / JSON array (optionally gzip) to typed, snake_case Parquet (zstd) with DuckDB.

Memory stays bounded whatever the file size: DuckDB streams the file from local disk, with its memory
capped (``memory_limit``), insertion order not preserved, and spill files on the same disk. Rows that do
not parse go to a quarantine file (JSON Lines: line number, raw text, error) with a count.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import re
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import duckdb

from analytics_platform.etl.exceptions import (
    CompressionError,
    EmptyInputError,
    EncodingError,
    MalformedContentError,
    NoRowsError,
    PermanentError,
    RejectShareExceededError,
    SchemaError,
    TooLargeError,
    UnsupportedFormatError,
)

CSV, JSON_LINES, JSON_ARRAY = "csv", "jsonl", "json_array"
SAMPLE_BYTES = 64 * 1024
#: Parquet row groups: up to 500k rows or 48 MB, whichever comes first. Bigger groups than DuckDB's default
#: (122,880 rows) write ~10% faster and suit analytics scans; the byte cap keeps wide rows inside the memory
#: limit (benchmarks/etl_throughput.py).
ROW_GROUP_ROWS = 500_000
ROW_GROUP_MB = 48
#: Longest line accepted (CSV and JSON Lines); longer lines are rejected, not loaded into memory.
#: DuckDB sizes its CSV read buffers at 16x this, so it also bounds the reader's memory.
MAX_LINE_BYTES = 2 * 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"
EXTENSIONS = {
    ".csv": CSV, ".tsv": CSV, ".txt": CSV, ".jsonl": JSON_LINES, ".ndjson": JSON_LINES, ".json": None,
}  # fmt: skip
UNSUPPORTED_HINTS = {".parquet", ".xlsx", ".xls", ".zip", ".avro", ".orc", ".bz2", ".xz", ".zst", ".7z"}


@dataclass(frozen=True)
class Limits:
    """Resource and quality limits of one conversion (by default the worker's)."""

    memory_mb: int = 307
    threads: int = 1
    max_reject_ratio: float = 0.1
    max_line_bytes: int = MAX_LINE_BYTES


@dataclass
class ConversionResult:
    """Figures of one conversion; ``quarantine_path`` is set when rows were rejected."""

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


def snake_case(name: str, position: int) -> str:
    """``"Joined At"`` -> ``joined_at``, ``"userID"`` -> ``user_id``; empty names become ``column_N``."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name.strip())
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", text)
    text = re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_").lower()
    if not text:
        return f"column_{position + 1}"
    return f"_{text}" if text[0].isdigit() else text


def normalise_columns(names: list[str]) -> list[str]:
    """snake_case every name; duplicates (before or after normalising) are a :class:`SchemaError`."""
    normalised = [snake_case(name, index) for index, name in enumerate(names)]
    seen: dict[str, str] = {}
    for original, new in zip(names, normalised, strict=True):
        if new in seen:
            raise SchemaError(f"duplicate column name {new!r} (from {seen[new]!r} and {original!r})")
        seen[new] = original
    return normalised


def _quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class Sniffed:
    """What the first bytes say about a file."""

    kind: str
    compressed: bool
    delimiter: str = ","


def _open_text_sample(path: Path, compressed: bool) -> bytes:
    if not compressed:
        with path.open("rb") as handle:
            return handle.read(SAMPLE_BYTES)
    try:
        with gzip.open(path, "rb") as handle:
            return handle.read(SAMPLE_BYTES)
    except (OSError, EOFError, zlib.error) as error:
        raise CompressionError(f"corrupt gzip stream: {error}") from error


#: CSV delimiters tried, in order of preference when two fit equally well.
DELIMITERS = (",", ";", "\t", "|")


def detect_delimiter(sample: bytes, complete: bool) -> str:
    """The delimiter that splits the sample's rows into the same number (>= 2) of fields as its header.

    Rows are parsed with RFC 4180 quoting, so delimiters inside quoted fields do not count. The fraction of
    rows as wide as the header decides (it must be a majority), then the width; a file that no candidate
    splits that way is one column (``,``). ``complete`` is False when the sample is cut from a longer file
    (its last line is dropped).
    """
    text = sample.decode("utf-8", "replace")
    if not complete and "\n" in text:
        text = text[: text.rindex("\n") + 1]
    best, best_score = DELIMITERS[0], (0.0, 0)
    for delimiter in DELIMITERS:
        try:
            rows = [row for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter) if row]
        except csv.Error:
            continue
        if not rows or len(rows[0]) < 2:
            continue
        width = len(rows[0])
        score = (sum(len(row) == width for row in rows) / len(rows), width)
        if score[0] > 0.5 and score > best_score:
            best, best_score = delimiter, score
    return best


def _strip_name_suffixes(name: str) -> tuple[str, bool]:
    lowered = name.lower()
    if lowered.endswith(".gz"):
        return lowered[:-3], True
    if lowered.endswith(".gzip"):
        return lowered[:-5], True
    return lowered, False


def sniff(path: Path, name: str | None = None) -> Sniffed:
    """Detect format and compression from the name and the content; raises a :class:`PermanentError`."""
    size = path.stat().st_size
    if size == 0:
        raise EmptyInputError("the file is empty (0 bytes)")
    with path.open("rb") as handle:
        magic = handle.read(2)
    stem, named_gzip = _strip_name_suffixes(name or path.name)
    compressed = magic == GZIP_MAGIC
    if named_gzip and not compressed:
        raise CompressionError("the name ends in .gz but the content is not gzip")
    extension = Path(stem).suffix
    if extension in UNSUPPORTED_HINTS:
        raise UnsupportedFormatError(f"unsupported file type {extension!r}; send CSV, JSON Lines or a JSON array")
    if extension and extension not in EXTENSIONS:
        raise UnsupportedFormatError(
            f"unsupported file extension {extension!r}; supported: {', '.join(sorted(EXTENSIONS))} (+ .gz)"
        )
    sample = _open_text_sample(path, compressed)
    if not sample.strip():
        raise EmptyInputError("the file holds only whitespace")
    if b"\x00" in sample:
        raise EncodingError("binary content (NUL bytes); expected UTF-8 text")
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(sample, final=False)
    except UnicodeDecodeError as error:
        raise EncodingError(f"not UTF-8 text: byte 0x{sample[error.start]:02x} at offset {error.start}") from error
    if len(sample) < SAMPLE_BYTES and re.fullmatch(rb"\s*\[\s*\]\s*", sample):
        raise NoRowsError("empty JSON array: no data rows")
    first = sample.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    kind = EXTENSIONS.get(extension)
    if kind is None:  # .json or no extension: decide by the first character
        if first == b"[":
            kind = JSON_ARRAY
        elif first == b"{":
            kind = JSON_LINES
        elif extension == ".json":
            raise MalformedContentError("JSON of the wrong shape: expected an array of objects or JSON Lines")
        else:
            kind = CSV
    if kind == CSV:
        return Sniffed(kind, compressed, detect_delimiter(sample, complete=len(sample) < SAMPLE_BYTES))
    return Sniffed(kind, compressed)


@contextmanager
def _duckdb(limits: Limits, temp_dir: Path) -> Iterator[duckdb.DuckDBPyConnection]:
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


def _describe(con: duckdb.DuckDBPyConnection, relation_sql: str) -> list[tuple[str, str]]:
    rows = con.execute(f"DESCRIBE SELECT * FROM {relation_sql}").fetchall()
    return [(str(row[0]), str(row[1])) for row in rows]


def _csv_source(sniffed: Sniffed, path: Path, limits: Limits, header: bool = True, extra: str = "") -> str:
    """``read_csv(...)`` with the detected delimiter and RFC 4180 quoting; DuckDB infers the column types."""
    compression = "gzip" if sniffed.compressed else "none"
    return (
        f"read_csv({_quote_literal(str(path))}, header={str(header).lower()}, compression='{compression}', "
        f"delim={_quote_literal(sniffed.delimiter)}, quote='\"', escape='\"', "
        f"max_line_size={limits.max_line_bytes}, sample_size=20480{extra})"
    )


def _csv_header(sniffed: Sniffed, path: Path) -> list[str] | None:
    """The header's names as written (DuckDB renames duplicates; we must see them); None if not in the sample."""
    sample = _open_text_sample(path, sniffed.compressed)
    text = sample.decode("utf-8", "replace").lstrip("\ufeff")
    if len(sample) >= SAMPLE_BYTES and "\n" not in text:
        return None
    try:
        rows = csv.reader(io.StringIO(text, newline=""), delimiter=sniffed.delimiter)
        return next((row for row in rows if row), None)
    except csv.Error:
        return None


def _select_list(columns: list[tuple[str, str]], names: list[str]) -> str:
    return ", ".join(
        f"{_quote_identifier(original)} AS {_quote_identifier(new)}"
        for (original, _), new in zip(columns, names, strict=True)
    )


def _copy_to_parquet(con: duckdb.DuckDBPyConnection, select_sql: str, output: Path) -> int:
    row = con.execute(
        f"COPY ({select_sql}) TO {_quote_literal(str(output))} "
        f"(FORMAT PARQUET, COMPRESSION ZSTD, ROW_GROUP_SIZE {ROW_GROUP_ROWS}, ROW_GROUP_SIZE_BYTES '{ROW_GROUP_MB}MB')"
    ).fetchone()
    return int(row[0]) if row else 0


def _convert_csv(
    con: duckdb.DuckDBPyConnection,
    sniffed: Sniffed,
    path: Path,
    limits: Limits,
    output: Path,
    quarantine: Path,
) -> tuple[int, int, list[tuple[str, str]]]:
    header = _csv_header(sniffed, path)
    source = _csv_source(
        sniffed,
        path,
        limits,
        extra=", store_rejects=true, rejects_table='rejects', rejects_scan='rejects_scan'",
    )
    columns = _describe(con, source)
    if header is None or len(header) != len(columns):
        header = [name for name, _ in columns]
    names = normalise_columns(header)
    if len(columns) == 1 and len(header) == 1 and not header[0].strip():
        raise MalformedContentError("no header found")
    rows_out = _copy_to_parquet(con, f"SELECT {_select_list(columns, names)} FROM {source}", output)
    rejected = int(con.execute("SELECT count(DISTINCT line) FROM rejects").fetchone()[0])  # type: ignore[index]
    if rejected:
        con.execute(
            "COPY (SELECT line, any_value(csv_line) AS raw, string_agg(DISTINCT error_message, '; ') AS error "
            f"FROM rejects GROUP BY line ORDER BY line) TO {_quote_literal(str(quarantine))} (FORMAT JSON)"
        )
    schema = [(new, kind) for (_, kind), new in zip(columns, names, strict=True)]
    return rows_out, rejected, schema


def _read_bounded_line(handle: IO[bytes], limit: int) -> tuple[bytes, bool]:
    """One line of at most ``limit`` bytes; longer lines are drained and reported as too long."""
    line = handle.readline(limit + 1)
    if len(line) <= limit or line.endswith(b"\n"):
        return line, False
    while line and not line.endswith(b"\n"):
        line = handle.readline(1 << 20)
    return b"", True


def _split_json_lines(path: Path, compressed: bool, limits: Limits, clean: Path, quarantine: Path) -> tuple[int, int]:
    """Stream JSON Lines: objects to ``clean``, anything else to ``quarantine``; returns (rows, rejects)."""
    opener = gzip.open if compressed else open
    rows = rejected = 0
    try:
        with (
            opener(path, "rb") as source,
            clean.open("wb") as good,
            quarantine.open("w", encoding="utf-8") as bad,
        ):
            number = 0
            while True:
                line, too_long = _read_bounded_line(source, limits.max_line_bytes)  # type: ignore[arg-type]
                if not line and not too_long:
                    break
                number += 1
                if not too_long and not line.strip():
                    continue
                error = f"line longer than {limits.max_line_bytes} bytes" if too_long else None
                if error is None:
                    try:
                        value = json.loads(line)
                        if not isinstance(value, dict):
                            error = f"expected a JSON object, got {type(value).__name__}"
                        elif not value:
                            error = "empty JSON object"
                    except (json.JSONDecodeError, UnicodeDecodeError) as parse_error:
                        error = f"invalid JSON: {parse_error}"
                if error is None:
                    good.write(line.rstrip(b"\r\n") + b"\n")
                    rows += 1
                else:
                    rejected += 1
                    raw = line[:2000].decode("utf-8", "replace").rstrip("\r\n")
                    bad.write(json.dumps({"line": number, "raw": raw, "error": error}) + "\n")
    except (OSError, EOFError, zlib.error) as error:
        raise CompressionError(f"corrupt gzip stream: {error}") from error
    return rows, rejected


def _json_source(path: Path, kind: str, compressed: bool) -> str:
    json_format = "array" if kind == JSON_ARRAY else "newline_delimited"
    compression = "gzip" if compressed else "uncompressed"
    return (
        f"read_json({_quote_literal(str(path))}, format='{json_format}', records=true, "
        f"compression='{compression}', maximum_object_size={MAX_LINE_BYTES}, sample_size=20480)"
    )


def _convert_json(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    kind: str,
    compressed: bool,
    limits: Limits,
    output: Path,
    quarantine: Path,
    work: Path,
) -> tuple[int, int, list[tuple[str, str]]]:
    rejected = 0
    source_path, source_compressed = path, compressed
    if kind == JSON_LINES:
        clean = work / "clean.jsonl"
        rows, rejected = _split_json_lines(path, compressed, limits, clean, quarantine)
        if rows == 0:
            return 0, rejected, []
        source_path, source_compressed = clean, False
    source = _json_source(source_path, kind, source_compressed)
    columns = _describe(con, source)
    if [name for name, _ in columns] == ["json"] and kind == JSON_ARRAY:
        raise MalformedContentError("JSON of the wrong shape: the array's elements must be objects")
    names = normalise_columns([name for name, _ in columns])
    rows_out = _copy_to_parquet(con, f"SELECT {_select_list(columns, names)} FROM {source}", output)
    schema = [(new, kind_) for (_, kind_), new in zip(columns, names, strict=True)]
    return rows_out, rejected, schema


def _classify_duckdb_error(error: duckdb.Error) -> PermanentError:
    text = str(error).splitlines()[0][:500]
    if isinstance(error, duckdb.OutOfMemoryException):
        return TooLargeError(f"the file needs more memory than the worker allows: {text}")
    lowered = text.lower()
    if "non-record json" in lowered:
        return MalformedContentError("JSON of the wrong shape: every element must be an object (a record)")
    if "unicode" in lowered or "utf" in lowered or "encoding" in lowered:
        return EncodingError(f"not UTF-8 text: {text}")
    if "gzip" in lowered or "compression" in lowered:
        return CompressionError(text)
    if "no space left" in lowered:
        return TooLargeError(f"the worker's disk is full: {text}")
    return MalformedContentError(text)


def convert_file(
    path: Path,
    output: Path,
    *,
    name: str | None = None,
    limits: Limits | None = None,
    work_dir: Path | None = None,
) -> ConversionResult:
    """Convert one local file to Parquet at ``output``; raises a :class:`PermanentError` for bad input.

    ``name`` is the original object name (its extension decides the format together with the content).
    """
    limits = limits or Limits()
    work = work_dir or output.parent / f".{output.name}.work"
    work.mkdir(parents=True, exist_ok=True)
    sniffed = sniff(path, name)
    quarantine = output.with_name(output.stem + ".rejects.jsonl")
    for stale in (output, quarantine):
        stale.unlink(missing_ok=True)
    try:
        with _duckdb(limits, work / "duckdb-spill") as con:
            if sniffed.kind == CSV:
                rows_out, rejected, schema = _convert_csv(con, sniffed, path, limits, output, quarantine)
            else:
                rows_out, rejected, schema = _convert_json(
                    con, path, sniffed.kind, sniffed.compressed, limits, output, quarantine, work
                )
    except duckdb.Error as error:
        output.unlink(missing_ok=True)
        raise _classify_duckdb_error(error) from error
    rows_in = rows_out + rejected
    result = ConversionResult(
        input_format=sniffed.kind,
        compressed=sniffed.compressed,
        rows_in=rows_in,
        rows_out=rows_out,
        rows_rejected=rejected,
        bytes_in=path.stat().st_size,
        bytes_out=output.stat().st_size if output.exists() else 0,
        output_path=output,
        quarantine_path=quarantine if rejected and quarantine.exists() else None,
        schema=schema,
    )
    if rows_in == 0:
        output.unlink(missing_ok=True)
        raise NoRowsError("no data rows (header only or empty document)")
    if rejected and rejected / rows_in > limits.max_reject_ratio:
        output.unlink(missing_ok=True)
        exceeded = RejectShareExceededError(
            f"{rejected} of {rows_in} rows rejected ({rejected / rows_in:.0%}), above the allowed "
            f"{limits.max_reject_ratio:.0%}"
        )
        exceeded.result = result
        raise exceeded
    if not rejected:
        quarantine.unlink(missing_ok=True)
    return result
