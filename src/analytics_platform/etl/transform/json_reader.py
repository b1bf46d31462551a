"""JSON Lines and JSON arrays to Parquet.

Every file is first split in Python (:mod:`.json_split`) into a clean JSON Lines copy, which DuckDB then reads:

1. with the types DuckDB infers from the first records (the fast path), when those records show every key and
   only scalar columns of one type each. DuckDB's own reading then refuses a later value that does not fit;
2. otherwise, or when a later record did not fit, with the types inferred from every record, given explicitly:
   nested columns are read as their JSON text (their numbers exactly as written), columns of mixed types as
   text. (Only types inferred from every record are given explicitly: DuckDB casts an explicit type
   leniently and would round ``2.5`` into an integer column, or drop a time of day from a date);
3. as a last resort with every column as text: a valid record is never lost to a type guess.
"""

from __future__ import annotations

import duckdb

from analytics_platform.etl.exceptions import MalformedContentError
from analytics_platform.etl.transform.columns import normalise_columns, quote_literal
from analytics_platform.etl.transform.json_split import Split, clean_path, split_json
from analytics_platform.etl.transform.model import ReadResult, Source
from analytics_platform.etl.transform.parquet_types import is_nested, stored_select
from analytics_platform.etl.transform.session import Watchdog, copy_to_parquet, describe, read_ahead

SAMPLE_RECORDS = 20_480
EVERY_RECORD = -1
#: Messages of DuckDB's JSON reader when a record does not fit the sampled types.
TYPE_MISMATCH_HINTS = (
    "transform error", "could not convert", "could not parse", "conversion error", "failed to cast",
)  # fmt: skip


def json_relation(source: Source, *, sample_records: int, columns: list[tuple[str, str]] | None = None) -> str:
    """``read_json(...)`` of the clean JSON Lines copy, with inferred or explicit column types."""
    typed = ""
    if columns:
        typed = ", columns={" + ", ".join(f"{quote_literal(n)}: {quote_literal(t)}" for n, t in columns) + "}"
    return (
        f"read_json({quote_literal(str(clean_path(source)))}, format='newline_delimited', records=true, "
        f"compression='uncompressed', maximum_object_size={source.limits.max_line_bytes}, "
        f"sample_size={sample_records}{typed})"
    )


def _is_type_mismatch(error: duckdb.Error) -> bool:
    return isinstance(error, duckdb.InvalidInputException | duckdb.ConversionException) and any(
        hint in str(error).lower() for hint in TYPE_MISMATCH_HINTS
    )


def _explicit_type(kind: str, *, as_text: bool) -> str:
    """How a column inferred from every record is read: nested as JSON text, mixed types as text."""
    if as_text:
        return "VARCHAR"
    if is_nested(kind):
        return "JSON"
    return "VARCHAR" if kind == "JSON" else kind


def _fast_path_fits(columns: list[tuple[str, str]], split: Split) -> bool:
    """Whether the sampled types can be used as DuckDB inferred them: every key seen, no nested or mixed column."""
    names = {name for name, _ in columns}
    return names == set(split.keys) and not any(is_nested(kind) or kind == "JSON" for _, kind in columns)


def _write(con: duckdb.DuckDBPyConnection, source: Source, split: Split, relation: str) -> ReadResult | None:
    """Write ``relation`` to the Parquet output; None when a record did not fit its types."""
    columns = describe(con, relation)
    names = normalise_columns([split.keys.get(name, name) for name, _ in columns])
    try:
        rows_out = copy_to_parquet(con, f"SELECT {stored_select(columns, names)} FROM {relation}", source.output)
    except duckdb.Error as error:
        source.output.unlink(missing_ok=True)
        if not _is_type_mismatch(error):
            raise
        return None
    return ReadResult(rows_out, split.rejected, describe(con, f"read_parquet({quote_literal(str(source.output))})"))


def read_json(con: duckdb.DuckDBPyConnection, source: Source, watchdog: Watchdog) -> ReadResult:
    """Convert a JSON Lines file or a JSON array to the Parquet output."""
    split = split_json(source, watchdog)
    if split.rows == 0:
        return ReadResult(0, split.rejected, [])
    if not split.keys:
        raise MalformedContentError("the records have no fields: every object is empty")
    clean = clean_path(source)
    watchdog.follow(clean, ahead=read_ahead(source.limits, compressed=False))
    sampled = json_relation(source, sample_records=SAMPLE_RECORDS)
    if _fast_path_fits(describe(con, sampled), split):
        result = _write(con, source, split, sampled)
        if result is not None:
            return result
    watchdog.follow(clean, ahead=read_ahead(source.limits, compressed=False))
    inferred = describe(con, json_relation(source, sample_records=EVERY_RECORD))
    for as_text in (False, True):
        watchdog.follow(clean, ahead=read_ahead(source.limits, compressed=False))
        columns = [(name, _explicit_type(kind, as_text=as_text)) for name, kind in inferred]
        result = _write(con, source, split, json_relation(source, sample_records=EVERY_RECORD, columns=columns))
        if result is not None:
            return result
    raise MalformedContentError("column types could not be settled")
