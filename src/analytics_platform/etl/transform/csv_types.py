"""How each CSV column is read in a pass, and how a column widens when a value does not fit.

DuckDB's CSV casts would round ``2.5`` into an integer column, drop a time of day from a DATE, and read integers
beyond BIGINT as DOUBLE, all silently. So sniffed columns are read with a guard (:mod:`.numbers`) that stops the
pass, naming the column, instead of altering a value:

* DATE: read as text, cast unless the value holds a time of day; widens to TIMESTAMP;
* integers: read as DOUBLE (about as fast as DuckDB's integer parse), cast back while whole and below 2^53;
* DOUBLE: passed through while below 2^53 (beyond, it may be a rounded integer);
* a column whose guard fired is settled from its text (:func:`analytics_platform.etl.transform.numbers.settle`):
  DOUBLE or text from then on, or an *exact* integer column: read as text and cast where it is plain digits,
  to BIGINT or, past BIGINT, to DECIMAL(38,0).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb

from analytics_platform.etl.transform.columns import quote_identifier
from analytics_platform.etl.transform.numbers import (
    BIGINT,
    DOUBLE,
    EXACT_DOUBLE_LIMIT,
    TEXT,
    exact_integer,
    guard,
    guarded_double,
    settle,
)

INTEGER_TYPES = frozenset({"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                           "UINTEGER", "UBIGINT"})  # fmt: skip


@dataclass(frozen=True)
class Read:
    """One column in one pass: the type DuckDB reads it as, the SQL giving its value, and that value's type."""

    read_as: str
    value: str
    kind: str


def _date(column: str, index: int) -> Read:
    """Read as text; a DATE unless the value holds a time of day (DuckDB's cast would drop it)."""
    as_date = f"coalesce(TRY_CAST({column} AS DATE), {guard(index)})"
    value = f"CASE WHEN {column} IS NULL THEN NULL WHEN contains({column}, ':') THEN {guard(index)} ELSE {as_date} END"
    return Read(TEXT, value, "DATE")


def _integer(column: str, index: int) -> Read:
    """Read as DOUBLE; a BIGINT while whole and below 2^53 (DuckDB's cast would round 2.5)."""
    whole = f"{column} = trunc({column}) AND abs({column}) < {EXACT_DOUBLE_LIMIT}"
    cast = f"coalesce(TRY_CAST({column} AS BIGINT), {guard(index)})"
    return Read(
        DOUBLE, f"CASE WHEN {column} IS NULL THEN NULL WHEN {whole} THEN {cast} ELSE {guard(index)} END", BIGINT
    )


@dataclass
class Plan:
    """What earlier passes learned: columns read as a fixed type, and exact integer columns (read as text)."""

    forced: dict[str, str] = field(default_factory=dict)
    exact: dict[str, str] = field(default_factory=dict)

    def reads(self, columns: list[tuple[str, str]]) -> dict[str, Read]:
        """The guarded columns of a pass over ``columns`` (DuckDB's names and sniffed types)."""
        reads: dict[str, Read] = {}
        for index, (name, kind) in enumerate(columns):
            column = quote_identifier(name)
            if name in self.forced:
                continue
            if name in self.exact:
                reads[name] = Read(TEXT, exact_integer(column, self.exact[name], index), self.exact[name])
            elif kind == "DATE":
                reads[name] = _date(column, index)
            elif kind in INTEGER_TYPES:
                reads[name] = _integer(column, index)
            elif kind == DOUBLE:
                reads[name] = Read(DOUBLE, guarded_double(column, index), DOUBLE)
        return reads

    def widen(self, con: duckdb.DuckDBPyConnection, name: str, kind: str, text_relation: Callable[[str], str]) -> None:
        """Widen the column whose guard fired; ``text_relation(name)`` reads the file with that column as text."""
        if name in self.exact:  # its text was scanned already, yet a value does not fit: keep it as written
            del self.exact[name]
            self.forced[name] = TEXT
        elif kind == "DATE":
            self.forced[name] = "TIMESTAMP"
        else:
            decided = settle(con, text_relation(name), {name: quote_identifier(name)}, json=False)[name]
            if decided in (DOUBLE, TEXT):
                self.forced[name] = decided
            else:
                self.exact[name] = decided
