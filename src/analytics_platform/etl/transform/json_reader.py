"""JSON Lines and JSON arrays to Parquet.

Every file is first split in Python (:mod:`.json_split`) into a clean JSON Lines copy, which DuckDB then reads:

1. with the types DuckDB infers from the first records (the fast path), when those records show every key and
   only scalar columns of one type each. DuckDB's own reading then refuses a later value that does not fit;
2. otherwise, or when a later record did not fit, with the types inferred from every record, given explicitly:
   nested columns are read as their JSON text (their numbers exactly as written), columns of mixed types as
   text. (Only types inferred from every record, or settled from every value, are given explicitly: DuckDB
   casts an explicit type leniently and would round ``2.5`` into an integer column, or drop a time of day
   from a date);
3. as a last resort with every column as text: a valid record is never lost to a type guess.

Numbers stay exact (:mod:`.numbers`): a DOUBLE column reaching 2^53, or a BIGINT column DuckDB cannot read
(``18446744073709551615``), is settled from the JSON text of its values: an exact BIGINT or DECIMAL(38,0)
for integers, DOUBLE, or text.
"""

from __future__ import annotations

import duckdb

from analytics_platform.etl.exceptions import MalformedContentError
from analytics_platform.etl.transform.columns import normalise_columns, quote_identifier, quote_literal
from analytics_platform.etl.transform.json_split import Split, clean_path, split_json
from analytics_platform.etl.transform.model import ReadResult, Source
from analytics_platform.etl.transform.numbers import BIGINT, DOUBLE, fired_guard, guarded_double, settle
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


def _explicit_type(kind: str) -> str:
    """How a column inferred from every record is read: nested as JSON text, mixed types as text."""
    if is_nested(kind):
        return "JSON"
    return "VARCHAR" if kind == "JSON" else kind


def _fast_path_fits(columns: list[tuple[str, str]], split: Split) -> bool:
    """Whether the sampled types can be used as DuckDB inferred them: every key seen, no nested or mixed column."""
    names = {name for name, _ in columns}
    return names == set(split.keys) and not any(is_nested(kind) or kind == "JSON" for _, kind in columns)


def _write(
    con: duckdb.DuckDBPyConnection, source: Source, split: Split, relation: str, guarded: set[str]
) -> ReadResult | int | None:
    """Write ``relation`` to the Parquet output, DOUBLE columns in ``guarded`` below 2^53. Returns the result,
    or the index of the column whose guard fired, or None when a record did not fit its types."""
    columns = describe(con, relation)
    names = normalise_columns([split.keys.get(name, name) for name, _ in columns])
    guards = {
        name: guarded_double(quote_identifier(name), index)
        for index, (name, kind) in enumerate(columns)
        if kind == DOUBLE and name in guarded
    }
    try:
        select = stored_select(columns, names, guards)
        rows_out = copy_to_parquet(con, f"SELECT {select} FROM {relation}", source.output)
    except duckdb.Error as error:
        source.output.unlink(missing_ok=True)
        fired = fired_guard(error)
        if fired is not None:
            return fired
        if not _is_type_mismatch(error):
            raise
        return None
    return ReadResult(rows_out, split.rejected, describe(con, f"read_parquet({quote_literal(str(source.output))})"))


def _settle(con: duckdb.DuckDBPyConnection, source: Source, names: list[str]) -> dict[str, str]:
    """The exact type of each named column, from the JSON text of all its values."""
    relation = json_relation(source, sample_records=EVERY_RECORD, columns=[(name, "JSON") for name in names])
    return settle(con, relation, {name: f"CAST({quote_identifier(name)} AS VARCHAR)" for name in names}, json=True)


def read_json(con: duckdb.DuckDBPyConnection, source: Source, watchdog: Watchdog) -> ReadResult:
    """Convert a JSON Lines file or a JSON array to the Parquet output."""
    split = split_json(source, watchdog)
    if split.rows == 0:
        return ReadResult(0, split.rejected, [])
    if not split.keys:
        raise MalformedContentError("the records have no fields: every object is empty")
    clean = clean_path(source)
    settled: dict[str, str] = {}
    watchdog.follow(clean, ahead=read_ahead(source.limits, compressed=False))
    sampled = json_relation(source, sample_records=SAMPLE_RECORDS)
    sampled_columns = describe(con, sampled)
    if _fast_path_fits(sampled_columns, split):
        outcome = _write(con, source, split, sampled, set(split.keys))
        if isinstance(outcome, ReadResult):
            return outcome
        if outcome is not None:
            settled.update(_settle(con, source, [sampled_columns[outcome][0]]))
    watchdog.follow(clean, ahead=read_ahead(source.limits, compressed=False))
    inferred = describe(con, json_relation(source, sample_records=EVERY_RECORD))
    for _ in range(len(inferred) + 1):  # each round settles at least one more column, or gives up
        watchdog.follow(clean, ahead=read_ahead(source.limits, compressed=False))
        columns = [(name, settled.get(name) or _explicit_type(kind)) for name, kind in inferred]
        relation = json_relation(source, sample_records=EVERY_RECORD, columns=columns)
        outcome = _write(con, source, split, relation, {name for name, _ in columns} - settled.keys())
        if isinstance(outcome, ReadResult):
            return outcome
        if outcome is not None:
            settled.update(_settle(con, source, [columns[outcome][0]]))
            continue
        # A value DuckDB could not read as BIGINT: settle every integer column not settled yet.
        unsettled = [name for name, kind in columns if kind == BIGINT and name not in settled]
        decided = _settle(con, source, unsettled)
        settled.update(decided)
        if all(kind == BIGINT for kind in decided.values()):
            break
    watchdog.follow(clean, ahead=read_ahead(source.limits, compressed=False))
    as_text = [(name, "VARCHAR") for name, _ in inferred]
    outcome = _write(con, source, split, json_relation(source, sample_records=EVERY_RECORD, columns=as_text), set())
    if isinstance(outcome, ReadResult):
        return outcome
    raise MalformedContentError("column types could not be settled")
