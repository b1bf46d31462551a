"""CSV to Parquet: DuckDB's reader with our delimiter, RFC 4180 quoting, and columns widened, never rows lost.

DuckDB infers column types from a sample of the first rows. A later value that does not fit (``abc`` after
30,000 integers) would be a CAST reject, and a valid row would land in quarantine. Worse, DuckDB's casts alter
some values silently (``2.5`` into an integer, a time of day into a DATE, ``99999999999999999999`` into a
DOUBLE). So:

* the sampled columns are read with guards (:mod:`.csv_types`) that stop the pass on a value their type would
  alter; that column is widened (to DOUBLE, TIMESTAMP, an exact BIGINT or DECIMAL(38,0), or text) and the file
  converted again;
* when rows were rejected for their type, types are inferred from the whole file, and a column that still does
  not fit becomes VARCHAR.

Only structurally broken rows (wrong field count, bad quoting, over-long lines) stay rejected.
"""

from __future__ import annotations

import re

import duckdb

from analytics_platform.etl.exceptions import MalformedContentError
from analytics_platform.etl.transform.columns import normalise_columns, quote_literal
from analytics_platform.etl.transform.csv_types import Plan
from analytics_platform.etl.transform.integrity import check_gzip
from analytics_platform.etl.transform.model import ReadResult, Source
from analytics_platform.etl.transform.numbers import fired_guard
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
    plan = Plan()

    def text_relation(name: str) -> str:  # the file with one column as text, to settle its type
        return csv_relation(source, sample_rows=SAMPLE_ROWS, pass_number=999, types={**plan.forced, name: "VARCHAR"})

    for pass_number in range(1, 64):
        watchdog.follow(source.path, ahead=read_ahead(source.limits, compressed=source.sniffed.compressed))
        columns = describe(con, csv_relation(source, sample_rows=sample_rows, pass_number=0, types=plan.forced))
        names_as_written = header if header is not None and len(header) == len(columns) else [n for n, _ in columns]
        names = normalise_columns(names_as_written)
        if len(columns) == 1 and len(names_as_written) == 1 and not names_as_written[0].strip():
            raise MalformedContentError("no header found")
        reads = plan.reads(columns)
        types = {**plan.forced, **{name: read.read_as for name, read in reads.items()}}
        relation = csv_relation(source, sample_rows=sample_rows, pass_number=pass_number, types=types)
        typed = [(name, reads[name].kind if name in reads else kind) for name, kind in columns]
        select = stored_select(typed, names, {name: read.value for name, read in reads.items()})
        try:
            rows_out = copy_to_parquet(con, f"SELECT {select} FROM {relation}", source.output)
        except duckdb.Error as error:
            index = fired_guard(error)
            if index is None:
                raise
            source.output.unlink(missing_ok=True)
            plan.widen(con, *columns[index], text_relation)
            continue
        too_narrow = _cast_rejects(con, pass_number)
        if not too_narrow:
            rejected = _write_quarantine(con, pass_number, source)
            return ReadResult(rows_out, rejected, describe(con, f"read_parquet({quote_literal(str(source.output))})"))
        source.output.unlink(missing_ok=True)
        if sample_rows != WHOLE_FILE and not too_narrow & plan.forced.keys():
            sample_rows = WHOLE_FILE  # infer every column's type from all of its values
        else:
            plan.forced.update({name: "VARCHAR" for name in too_narrow})
    # Unreachable in practice: every pass widens at least one more column.
    raise MalformedContentError("column types could not be settled")
