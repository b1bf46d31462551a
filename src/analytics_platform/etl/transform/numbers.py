"""Numbers kept exact: which type holds every value of a column as written, decided from the values' text.

DuckDB reads an integer beyond BIGINT as DOUBLE, rounding ``99999999999999999999`` to ``1e20``, and its JSON
reader fails on ``18446744073709551615`` in a column it sampled as BIGINT. The readers therefore guard their
fast path cheaply, in SQL, so that a value the chosen type would alter stops the pass naming its column
(:func:`guard`, :func:`fired_guard`): a DOUBLE at or beyond 2^53 (the first integer a DOUBLE cannot hold),
a failed integer cast. The column's text is then scanned once (:func:`settle`) and its type decided:

* only integers: BIGINT when all fit; DECIMAL(38,0) when some pass BIGINT; text when one has more than 38 digits;
* numbers with fractions or exponents: DOUBLE, unless an integer beyond 2^53 is among them (DOUBLE would
  round it): text;
* anything that is not a number: text.
"""

from __future__ import annotations

import duckdb

BIGINT, DECIMAL, DOUBLE, TEXT = "BIGINT", "DECIMAL(38,0)", "DOUBLE", "VARCHAR"
#: Integers beyond this lose digits as DOUBLE.
EXACT_DOUBLE_LIMIT = 2**53
#: An integer as written: digits, an optional sign, surrounding blanks (CSV fields are not trimmed).
PLAIN_INTEGER = "'\\s*[+-]?[0-9]+\\s*'"
GUARD_MARK = "tap-widen:"


def guard(index: int) -> str:
    """SQL that stops the statement, naming column ``index`` as the one to widen."""
    return f"error('{GUARD_MARK}{index}')"


def fired_guard(error: duckdb.Error) -> int | None:
    """The column a guard named, if ``error`` is a guard's."""
    text = str(error)
    if GUARD_MARK not in text:
        return None
    digits = "".join(c for c in text.split(GUARD_MARK, 1)[1][:6] if c.isdigit())
    return int(digits) if digits else None


def guarded_double(column: str, index: int) -> str:
    """A DOUBLE column passed through while its values are below 2^53; beyond, the guard fires."""
    return f"CASE WHEN {column} IS NULL OR abs({column}) < {EXACT_DOUBLE_LIMIT} THEN {column} ELSE {guard(index)} END"


def csv_number(text: str) -> str:
    """SQL: the CSV field ``text`` is a number."""
    return f"TRY_CAST(trim({text}) AS DOUBLE) IS NOT NULL"


def json_number(text: str) -> str:
    """SQL: the JSON text ``text`` is a number (not a string, boolean, object or array)."""
    return f"(NOT starts_with({text}, '\"') AND TRY_CAST({text} AS DOUBLE) IS NOT NULL)"


def _facts(text: str, number: str) -> list[str]:
    integer = f"regexp_full_match({text}, {PLAIN_INTEGER})"
    value = f"TRY_CAST(trim({text}) AS HUGEINT)"
    return [
        f"coalesce(bool_or(NOT {number}), false)",
        f"coalesce(bool_or(NOT {integer}), false)",
        f"coalesce(bool_or({integer} AND coalesce(abs({value}) > {EXACT_DOUBLE_LIMIT}, true)), false)",
        f"coalesce(bool_or({integer} AND TRY_CAST(trim({text}) AS BIGINT) IS NULL), false)",
        f"coalesce(bool_or({integer} AND TRY_CAST(trim({text}) AS {DECIMAL}) IS NULL), false)",
    ]


def decide(not_numbers: bool, not_integers: bool, beyond_double: bool, beyond_bigint: bool, beyond_38: bool) -> str:
    """The narrowest type holding every value exactly (see the module)."""
    if not_numbers:
        return TEXT
    if not not_integers:
        return TEXT if beyond_38 else DECIMAL if beyond_bigint else BIGINT
    return TEXT if beyond_double else DOUBLE


def settle(con: duckdb.DuckDBPyConnection, relation: str, texts: dict[str, str], *, json: bool) -> dict[str, str]:
    """The type of each column (name -> SQL of its text in ``relation``), from one scan of all its values."""
    if not texts:
        return {}
    number = json_number if json else csv_number
    facts = [fact for text in texts.values() for fact in _facts(text, number(text))]
    row = con.execute(f"SELECT {', '.join(facts)} FROM {relation}").fetchone()
    flags = [bool(flag) for flag in row] if row else [True] * len(facts)
    return {name: decide(*flags[5 * index : 5 * index + 5]) for index, name in enumerate(texts)}


def exact_integer(column: str, target: str, index: int) -> str:
    """A text column cast to BIGINT or DECIMAL(38,0) where it is plain digits; the guard fires on anything else."""
    cast = f"coalesce(TRY_CAST({column} AS {target}), {guard(index)})"
    test = f"regexp_full_match({column}, {PLAIN_INTEGER})"
    return f"CASE WHEN {column} IS NULL THEN NULL WHEN {test} THEN {cast} ELSE {guard(index)} END"
