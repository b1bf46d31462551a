"""JSON Lines and JSON arrays to Parquet.

JSON Lines are split in Python first: each line that is a JSON object goes to a clean copy, anything else to
quarantine with its line number. DuckDB then reads the clean copy (or the array). Types come from a sample of
the first records; when a later record does not fit (``"A1B2"`` after 30,000 integer codes), the file is read
again with types inferred from every record, and as a last resort with every column as text: a valid record
is never lost to a type guess.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import IO

import duckdb

from analytics_platform.etl.exceptions import MalformedContentError
from analytics_platform.etl.transform.columns import normalise_columns, quote_identifier, quote_literal
from analytics_platform.etl.transform.errors import gzip_and_disk_errors
from analytics_platform.etl.transform.integrity import check_gzip
from analytics_platform.etl.transform.model import JSON_ARRAY, JSON_LINES, ReadResult, Source
from analytics_platform.etl.transform.parquet_types import stored_select
from analytics_platform.etl.transform.session import Watchdog, copy_to_parquet, describe, read_ahead

SAMPLE_RECORDS = 20_480
#: Messages of DuckDB's JSON reader when a record does not fit the sampled types.
TYPE_MISMATCH_HINTS = (
    "transform error", "could not convert", "could not parse", "conversion error", "failed to cast",
)  # fmt: skip


def read_bounded_line(handle: IO[bytes], limit: int) -> tuple[bytes, bool]:
    """One line of at most ``limit`` bytes; longer lines are drained and reported as too long."""
    line = handle.readline(limit + 1)
    if len(line) <= limit or line.endswith(b"\n"):
        return line, False
    while line and not line.endswith(b"\n"):
        line = handle.readline(1 << 20)
    return b"", True


def _line_error(line: bytes, too_long: bool, limit: int) -> str | None:
    if too_long:
        return f"line longer than {limit} bytes"
    try:
        value = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as parse_error:
        return f"invalid JSON: {parse_error}"
    if not isinstance(value, dict):
        return f"expected a JSON object, got {type(value).__name__}"
    return None  # an empty object is a valid record: every column NULL


def split_json_lines(source: Source, watchdog: Watchdog) -> tuple[int, int]:
    """Stream JSON Lines: objects to ``work/clean.jsonl``, anything else to quarantine; (rows, rejects)."""
    limit = source.limits.max_line_bytes
    size = max(1, source.path.stat().st_size)
    watchdog.follow(source.path)
    rows = rejected = number = 0
    with (
        gzip_and_disk_errors(),
        source.path.open("rb") as raw,
        gzip.open(raw, "rb") if source.sniffed.compressed else raw as reader,
        (source.work / "clean.jsonl").open("wb") as good,
        source.quarantine.open("w", encoding="utf-8") as bad,
    ):
        while True:
            line, too_long = read_bounded_line(reader, limit)  # type: ignore[arg-type]  # gzip's IO[bytes]
            if not line and not too_long:
                break
            number += 1
            # ``fired`` is set by the watchdog's thread: a cheap check per line, however long the lines.
            if watchdog.fired or number % 10_000 == 0:
                watchdog.report(raw.tell() / size)
            if not too_long and not line.strip():
                continue
            error = _line_error(line, too_long, limit)
            if error is None:
                good.write(line.rstrip(b"\r\n") + b"\n")
                rows += 1
            else:
                rejected += 1
                text = line[:2000].decode("utf-8", "replace").rstrip("\r\n")
                bad.write(json.dumps({"line": number, "raw": text, "error": error}) + "\n")
    return rows, rejected


def json_input(source: Source) -> Path:
    """The file DuckDB reads: the clean JSON Lines copy, or the array itself."""
    return source.work / "clean.jsonl" if source.sniffed.kind == JSON_LINES else source.path


def json_relation(source: Source, *, sample_records: int, columns: list[tuple[str, str]] | None = None) -> str:
    """``read_json(...)`` of the array, or of the clean JSON Lines copy."""
    path = json_input(source)
    if source.sniffed.kind == JSON_LINES:
        json_format, compression = "newline_delimited", "uncompressed"
    else:
        json_format, compression = "array", "gzip" if source.sniffed.compressed else "uncompressed"
    typed = ""
    if columns:
        typed = ", columns={" + ", ".join(f"{quote_literal(n)}: {quote_literal(t)}" for n, t in columns) + "}"
    return (
        f"read_json({quote_literal(str(path))}, format='{json_format}', records=true, compression='{compression}', "
        f"maximum_object_size={source.limits.max_line_bytes}, sample_size={sample_records}{typed})"
    )


def _is_type_mismatch(error: duckdb.Error) -> bool:
    return isinstance(error, duckdb.InvalidInputException | duckdb.ConversionException) and any(
        hint in str(error).lower() for hint in TYPE_MISMATCH_HINTS
    )


def _mixed_as_text(column: str) -> str:
    return f"CASE WHEN json_type({column}) = 'VARCHAR' THEN {column}->>'$' ELSE CAST({column} AS VARCHAR) END"


def read_json(con: duckdb.DuckDBPyConnection, source: Source, watchdog: Watchdog) -> ReadResult:
    """Convert a JSON Lines file or a JSON array to the Parquet output."""
    rejected = 0
    if source.sniffed.kind == JSON_LINES:
        rows, rejected = split_json_lines(source, watchdog)
        if rows == 0:
            return ReadResult(0, rejected, [])
    elif source.sniffed.compressed:  # the splitter reads JSON Lines through Python's gzip; DuckDB reads arrays
        check_gzip(source.path, watchdog)
    # Sampled types first (the fast path), then types from every record, then every column as text.
    # Mixed-type columns come out of the whole-file pass as JSON; they are read as text.
    for sample_records, as_text in ((SAMPLE_RECORDS, False), (-1, False), (-1, True)):
        # The clean JSON Lines copy is never compressed; an array is read as it came.
        compressed = source.sniffed.compressed and source.sniffed.kind == JSON_ARRAY
        watchdog.follow(json_input(source), ahead=read_ahead(source.limits, compressed=compressed))
        explicit = None
        if sample_records == -1:
            whole = describe(con, json_relation(source, sample_records=-1))
            explicit = [(name, "VARCHAR" if as_text or kind == "JSON" else kind) for name, kind in whole]
        relation = json_relation(source, sample_records=sample_records, columns=explicit)
        columns = describe(con, relation)
        if [name for name, _ in columns] == ["json"] and source.sniffed.kind == JSON_ARRAY:
            raise MalformedContentError("JSON of the wrong shape: the array's elements must be objects")
        names = normalise_columns([name for name, _ in columns])
        # A column of mixed types (JSON) is text: a string as itself, anything else as its JSON text.
        mixed = {name: _mixed_as_text(quote_identifier(name)) for name, kind in columns if kind == "JSON"}
        select = stored_select(columns, names, mixed)
        try:
            rows_out = copy_to_parquet(con, f"SELECT {select} FROM {relation}", source.output)
        except duckdb.Error as error:
            source.output.unlink(missing_ok=True)
            if as_text or not _is_type_mismatch(error):
                raise
            continue
        return ReadResult(rows_out, rejected, describe(con, f"read_parquet({quote_literal(str(source.output))})"))
    raise MalformedContentError("column types could not be settled")
