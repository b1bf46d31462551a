"""CSV to Parquet: DuckDB's reader with our delimiter, RFC 4180 quoting, and columns widened, never rows lost.

DuckDB infers column types from a sample of the first rows. A later value that does not fit (``abc`` after
30,000 integers) would be a CAST reject, and a valid row would land in quarantine. Worse, DuckDB's cast
rounds ``2.5`` into an integer column and cuts the time off a timestamp in a DATE column, silently. So:

* integer columns are read as DOUBLE and DATE columns as text, and cast in SQL with a guard that stops the
  conversion on a value the cast would change (a fraction, or beyond 2^53; a time of day) - see ``_guarded``;
* the fast path converts with the sampled types; when a guard fires, that column is widened (integer to
  DOUBLE, or to text when it also holds integers beyond 2^53; all-integer columns with such values are read
  exactly instead; DATE to TIMESTAMP) and the file converted again; when rows were rejected for their type,
  types are inferred from the whole file, and a column that still does not fit becomes VARCHAR.

Only structurally broken rows (wrong field count, bad quoting, over-long lines) stay rejected.
"""

from __future__ import annotations

import re

import duckdb

from analytics_platform.etl.exceptions import MalformedContentError
from analytics_platform.etl.transform.columns import normalise_columns, quote_identifier, quote_literal
from analytics_platform.etl.transform.integrity import check_gzip
from analytics_platform.etl.transform.model import ReadResult, Source
from analytics_platform.etl.transform.parquet_types import stored_select
from analytics_platform.etl.transform.session import Watchdog, copy_to_parquet, describe, read_ahead
from analytics_platform.etl.transform.sniff import csv_header

#: Rows DuckDB samples for its type inference on the fast path.
SAMPLE_ROWS = 20_480
WHOLE_FILE = -1


def csv_relation(source: Source, *, sample_rows: int, pass_number: int, types: dict[str, str] | None = None) -> str:
    """``read_csv(...)`` with the detected delimiter, RFC 4180 quoting and rejects kept per pass."""
    compression = "gzip" if source.sniffed.compressed else "none"
    # DuckDB's sniffer refuses a file mixing CRLF and LF line ends; with LF named, it reads both (CR dropped).
    sample = source.sniffed.sample
    new_line = ", new_line='\\n'" if b"\r\n" in sample and re.search(rb"[^\r]\n", sample) else ""
    typed = ""
    if types:
        typed = ", types={" + ", ".join(f"{quote_literal(k)}: {quote_literal(v)}" for k, v in types.items()) + "}"
    return (
        f"read_csv({quote_literal(str(source.path))}, header=true, compression='{compression}', "
        f"delim={quote_literal(source.sniffed.delimiter)}, quote='\"', escape='\"', "
        f"max_line_size={source.limits.max_line_bytes}, sample_size={sample_rows}, store_rejects=true, "
        f"rejects_table='rejects_{pass_number}', rejects_scan='rejects_scan_{pass_number}'{new_line}{typed})"
    )


INTEGER_TYPES = frozenset({"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                           "UINTEGER", "UBIGINT"})  # fmt: skip
GUARD_MARK = "tap-widen:"
#: Integers beyond this lose digits as DOUBLE.
EXACT_DOUBLE_LIMIT = 2**53
PLAIN_INTEGER = "'\\s*[+-]?[0-9]+\\s*'"


def _guarded(original: str, kind: str, index: int, *, exact: bool) -> tuple[str, str]:
    """(type to read the column as, SQL that casts it back): raises (naming the column) instead of altering a value.

    DuckDB's own casts would round ``2.5`` into an integer and drop a time of day from a DATE, silently.

    * DATE: read as text, cast unless the value holds a time of day.
    * integers: read as DOUBLE (about as fast as DuckDB's integer parse) and cast back when the value is a whole
      number below 2^53. With ``exact`` (a column whose integers pass 2^53) read as text and cast when the value
      is plain digits: slower, but no digit is lost.
    """
    column = quote_identifier(original)
    widen = f"error('{GUARD_MARK}{index}')"
    cast = f"coalesce(TRY_CAST({column} AS {kind}), {widen})"
    if kind == "DATE":
        return (
            "VARCHAR",
            f"CASE WHEN {column} IS NULL THEN NULL WHEN regexp_matches({column}, ':') THEN {widen} ELSE {cast} END",
        )
    if exact:
        test = f"regexp_full_match({column}, {PLAIN_INTEGER})"
        return "VARCHAR", f"CASE WHEN {column} IS NULL THEN NULL WHEN {test} THEN {cast} ELSE {widen} END"
    test = f"{column} = trunc({column}) AND abs({column}) < {EXACT_DOUBLE_LIMIT}"
    return "DOUBLE", f"CASE WHEN {column} IS NULL THEN NULL WHEN {test} THEN {cast} ELSE {widen} END"


def _widen(
    con: duckdb.DuckDBPyConnection, source: Source, original: str, kind: str, forced: dict[str, str], exact: set[str]
) -> None:
    """Widen a column whose guard fired: DATE to TIMESTAMP; integers to DOUBLE, to text when DOUBLE would lose
    digits, or to the exact (text) read when they are all integers but some pass 2^53."""
    if kind == "DATE" or original in exact:
        forced[original] = "TIMESTAMP" if kind == "DATE" else "VARCHAR"
        return
    relation = csv_relation(source, sample_rows=SAMPLE_ROWS, pass_number=999, types={**forced, original: "VARCHAR"})
    column = quote_identifier(original)
    row = con.execute(
        f"SELECT coalesce(bool_or(NOT regexp_full_match({column}, {PLAIN_INTEGER})), false), "
        f"coalesce(bool_or(abs(TRY_CAST({column} AS HUGEINT)) > {EXACT_DOUBLE_LIMIT}), false) FROM {relation}"
    ).fetchone()
    not_integers, beyond_double = (bool(row[0]), bool(row[1])) if row else (True, True)
    if not not_integers:
        exact.add(original)
    else:
        forced[original] = "VARCHAR" if beyond_double else "DOUBLE"


def _guard_column(error: duckdb.Error) -> int | None:
    text = str(error)
    if GUARD_MARK not in text:
        return None
    digits = text.split(GUARD_MARK, 1)[1][:6]
    number = "".join(c for c in digits if c.isdigit())
    return int(number) if number else None


def _cast_rejects(con: duckdb.DuckDBPyConnection, pass_number: int) -> set[str]:
    """Columns a well-formed row did not fit. A row that is structurally broken too (missing or extra fields)
    goes to quarantine anyway: its misplaced values must not turn a numeric column into text."""
    table = f"rejects_{pass_number}"
    rows = con.execute(
        f"SELECT DISTINCT column_name FROM {table} AS r WHERE error_type = 'CAST' AND NOT EXISTS "
        f"(SELECT 1 FROM {table} AS s WHERE s.line = r.line AND s.error_type <> 'CAST')"
    ).fetchall()
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


def read_csv(con: duckdb.DuckDBPyConnection, source: Source, watchdog: Watchdog) -> ReadResult:
    """Convert ``source`` to its Parquet output; rows that are structurally broken go to its quarantine."""
    if source.sniffed.compressed:
        check_gzip(source.path, watchdog)
    header = csv_header(source.sniffed)
    sample_rows = SAMPLE_ROWS
    forced: dict[str, str] = {}
    exact: set[str] = set()
    for pass_number in range(1, 64):
        watchdog.follow(source.path, ahead=read_ahead(source.limits, compressed=source.sniffed.compressed))
        columns = describe(con, csv_relation(source, sample_rows=sample_rows, pass_number=0, types=forced))
        names_as_written = header if header is not None and len(header) == len(columns) else [n for n, _ in columns]
        names = normalise_columns(names_as_written)
        if len(columns) == 1 and len(names_as_written) == 1 and not names_as_written[0].strip():
            raise MalformedContentError("no header found")
        guards = {
            name: _guarded(name, kind, index, exact=name in exact)
            for index, (name, kind) in enumerate(columns)
            if (kind == "DATE" or kind in INTEGER_TYPES) and name not in forced
        }
        as_text = {**forced, **{name: read_as for name, (read_as, _) in guards.items()}}
        relation = csv_relation(source, sample_rows=sample_rows, pass_number=pass_number, types=as_text)
        try:
            select = stored_select(columns, names, {name: cast for name, (_, cast) in guards.items()})
            rows_out = copy_to_parquet(con, f"SELECT {select} FROM {relation}", source.output)
        except duckdb.Error as error:
            index = _guard_column(error)
            if index is None:
                raise
            source.output.unlink(missing_ok=True)
            original, kind = columns[index]
            _widen(con, source, original, kind, forced, exact)
            continue
        too_narrow = _cast_rejects(con, pass_number)
        if not too_narrow:
            rejected = _write_quarantine(con, pass_number, source)
            return ReadResult(rows_out, rejected, describe(con, f"read_parquet({quote_literal(str(source.output))})"))
        source.output.unlink(missing_ok=True)
        if sample_rows != WHOLE_FILE and not too_narrow & forced.keys():
            sample_rows = WHOLE_FILE  # infer every column's type from all of its values
        else:
            forced.update({name: "VARCHAR" for name in too_narrow})
    # Unreachable in practice: every pass widens at least one more column.
    raise MalformedContentError("column types could not be settled")
