"""CSV to Parquet: DuckDB's reader with our delimiter, RFC 4180 quoting, and columns widened, never rows lost.

DuckDB infers column types from a sample of the first rows. A later value that does not fit (``abc`` after
30,000 integers) would be a CAST reject, and a valid row would land in quarantine. Worse, DuckDB's cast
rounds ``2.5`` into an integer column and cuts the time off a timestamp in a DATE column, silently. So:

* integer and DATE columns are read as text and cast in SQL, with a guard that stops the conversion on a
  value the cast would change (a decimal point or exponent; a time of day);
* the fast path converts with the sampled types; when a guard fires, that column is widened (integer to
  DOUBLE, DATE to TIMESTAMP) and the file converted again; when rows were rejected for their type, types are
  inferred from the whole file, and a column that still does not fit becomes VARCHAR.

Only structurally broken rows (wrong field count, bad quoting, over-long lines) stay rejected.
"""

from __future__ import annotations

import duckdb

from analytics_platform.etl.exceptions import MalformedContentError
from analytics_platform.etl.transform.columns import normalise_columns, quote_identifier, quote_literal
from analytics_platform.etl.transform.model import ReadResult, Source
from analytics_platform.etl.transform.session import Watchdog, copy_to_parquet, describe, read_ahead
from analytics_platform.etl.transform.sniff import csv_header

#: Rows DuckDB samples for its type inference on the fast path.
SAMPLE_ROWS = 20_480
WHOLE_FILE = -1


def csv_relation(source: Source, *, sample_rows: int, pass_number: int, types: dict[str, str] | None = None) -> str:
    """``read_csv(...)`` with the detected delimiter, RFC 4180 quoting and rejects kept per pass."""
    compression = "gzip" if source.sniffed.compressed else "none"
    typed = ""
    if types:
        typed = ", types={" + ", ".join(f"{quote_literal(k)}: {quote_literal(v)}" for k, v in types.items()) + "}"
    return (
        f"read_csv({quote_literal(str(source.path))}, header=true, compression='{compression}', "
        f"delim={quote_literal(source.sniffed.delimiter)}, quote='\"', escape='\"', "
        f"max_line_size={source.limits.max_line_bytes}, sample_size={sample_rows}, store_rejects=true, "
        f"rejects_table='rejects_{pass_number}', rejects_scan='rejects_scan_{pass_number}'{typed})"
    )


INTEGER_TYPES = frozenset({"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                           "UINTEGER", "UBIGINT"})  # fmt: skip
#: What a value must look like to be cast unchanged, per type, and the type a column widens to otherwise.
#: Integers: plain digits only (DuckDB's cast also takes and rounds ``2.5``, ``1e3``, ``0x1F``, ``1_000``).
#: DATE: no time of day (DuckDB's cast drops it).
GUARDS = {
    "DATE": ("regexp_matches({c}, ':')", "TIMESTAMP"),
    **{kind: ("NOT regexp_full_match({c}, '\\s*[+-]?[0-9]+\\s*')", "DOUBLE") for kind in INTEGER_TYPES},
}
GUARD_MARK = "tap-widen:"
#: Integers beyond this lose digits as DOUBLE: a column holding one widens to text instead.
EXACT_DOUBLE_LIMIT = 2**53


def _guarded(original: str, kind: str, index: int) -> str:
    """``CAST`` of a text column that raises (naming the column) instead of altering a value or failing."""
    column = quote_identifier(original)
    altered = GUARDS[kind][0].format(c=column)
    widen = f"error('{GUARD_MARK}{index}')"
    return (
        f"CASE WHEN {column} IS NULL THEN NULL WHEN {altered} THEN {widen} "
        f"ELSE coalesce(TRY_CAST({column} AS {kind}), {widen}) END"
    )


def _widened(con: duckdb.DuckDBPyConnection, source: Source, original: str, kind: str, forced: dict[str, str]) -> str:
    """The type a guarded column widens to: DOUBLE, unless one of its integers would lose digits there."""
    target = GUARDS[kind][1]
    if target != "DOUBLE":
        return target
    relation = csv_relation(source, sample_rows=SAMPLE_ROWS, pass_number=999, types={**forced, original: "VARCHAR"})
    column = quote_identifier(original)
    row = con.execute(
        f"SELECT count(*) FROM {relation} WHERE abs(TRY_CAST({column} AS HUGEINT)) > {EXACT_DOUBLE_LIMIT}"
    ).fetchone()
    return "VARCHAR" if row and row[0] else "DOUBLE"


def _guard_column(error: duckdb.Error) -> int | None:
    text = str(error)
    if GUARD_MARK not in text:
        return None
    digits = text.split(GUARD_MARK, 1)[1][:6]
    number = "".join(c for c in digits if c.isdigit())
    return int(number) if number else None


def _cast_rejects(con: duckdb.DuckDBPyConnection, pass_number: int) -> set[str]:
    rows = con.execute(f"SELECT DISTINCT column_name FROM rejects_{pass_number} WHERE error_type = 'CAST'").fetchall()
    return {str(row[0]) for row in rows}


def _write_quarantine(con: duckdb.DuckDBPyConnection, pass_number: int, source: Source) -> int:
    table = f"rejects_{pass_number}"
    row = con.execute(f"SELECT count(DISTINCT line) FROM {table}").fetchone()
    rejected = int(row[0]) if row else 0
    if rejected:
        con.execute(
            "COPY (SELECT line, any_value(csv_line) AS raw, string_agg(DISTINCT error_message, '; ') AS error "
            f"FROM {table} GROUP BY line ORDER BY line) TO {quote_literal(str(source.quarantine))} (FORMAT JSON)"
        )
    return rejected


def _select(columns: list[tuple[str, str]], names: list[str], guarded: set[str]) -> str:
    return ", ".join(
        f"{_guarded(original, kind, index) if original in guarded else quote_identifier(original)} "
        f"AS {quote_identifier(new)}"
        for index, ((original, kind), new) in enumerate(zip(columns, names, strict=True))
    )


def read_csv(con: duckdb.DuckDBPyConnection, source: Source, watchdog: Watchdog) -> ReadResult:
    """Convert ``source`` to its Parquet output; rows that are structurally broken go to its quarantine."""
    header = csv_header(source.sniffed)
    sample_rows = SAMPLE_ROWS
    forced: dict[str, str] = {}
    for pass_number in range(1, 64):
        watchdog.follow(source.path, ahead=read_ahead(source.limits, compressed=source.sniffed.compressed))
        columns = describe(con, csv_relation(source, sample_rows=sample_rows, pass_number=0, types=forced))
        names_as_written = header if header is not None and len(header) == len(columns) else [n for n, _ in columns]
        names = normalise_columns(names_as_written)
        if len(columns) == 1 and len(names_as_written) == 1 and not names_as_written[0].strip():
            raise MalformedContentError("no header found")
        guarded = {name for name, kind in columns if kind in GUARDS and name not in forced}
        as_text = {**forced, **{name: "VARCHAR" for name in guarded}}
        relation = csv_relation(source, sample_rows=sample_rows, pass_number=pass_number, types=as_text)
        try:
            rows_out = copy_to_parquet(con, f"SELECT {_select(columns, names, guarded)} FROM {relation}", source.output)
        except duckdb.Error as error:
            index = _guard_column(error)
            if index is None:
                raise
            source.output.unlink(missing_ok=True)
            original, kind = columns[index]
            forced[original] = _widened(con, source, original, kind, forced)
            continue
        too_narrow = _cast_rejects(con, pass_number)
        if not too_narrow:
            rejected = _write_quarantine(con, pass_number, source)
            schema = [(new, kind) for (_, kind), new in zip(columns, names, strict=True)]
            return ReadResult(rows_out, rejected, schema)
        source.output.unlink(missing_ok=True)
        if sample_rows != WHOLE_FILE and not too_narrow & forced.keys():
            sample_rows = WHOLE_FILE  # infer every column's type from all of its values
        else:
            forced.update({name: "VARCHAR" for name in too_narrow})
    # Unreachable in practice: every pass widens at least one more column.
    raise MalformedContentError("column types could not be settled")
