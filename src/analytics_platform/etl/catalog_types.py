"""Catalog types: the names a dataset's columns have in its Glue table, and which type holds which."""

from __future__ import annotations

import re

#: Catalog types (the contract's names) and their Glue / Athena spelling. ``decimal`` holds whole numbers of up to
#: 38 digits exactly (integers beyond BIGINT), which a double would round.
GLUE_TYPES = {"integer": "bigint", "decimal": "decimal(38,0)", "double": "double", "string": "string",
              "boolean": "boolean", "date": "date", "timestamp": "timestamp"}  # fmt: skip
_FROM_GLUE = {glue: kind for kind, glue in GLUE_TYPES.items()}
#: A column of the first type may become the second without changing a value already in the table.
WIDENINGS = frozenset({("integer", "double"), ("integer", "decimal"), ("date", "timestamp")})
_INTEGERS = frozenset({"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"})
_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")


def catalog_type(duckdb_type: str) -> str:
    """The catalog type of a DuckDB column type: the one its values are written as, exactly.

    Integers up to 64 bits are ``integer``; UBIGINT, HUGEINT and DECIMAL(p,0) ``decimal`` (38 digits, exact);
    FLOAT, DOUBLE and DECIMAL with a scale ``double``; every TIMESTAMP ``timestamp`` (with a time zone: UTC);
    anything else (TIME, UUID, nested, JSON, BLOB, ...) is written as text: ``string``.
    """
    kind = duckdb_type.strip().upper()
    decimal = _DECIMAL.fullmatch(kind)
    if kind in _INTEGERS:
        return "integer"
    if kind in {"UBIGINT", "HUGEINT"} or (decimal is not None and int(decimal.group(2)) == 0):
        return "decimal"
    if kind in {"DOUBLE", "FLOAT"} or kind.startswith("DECIMAL"):
        return "double"
    if kind == "BOOLEAN":
        return "boolean"
    if kind == "DATE":
        return "date"
    if kind.startswith("TIMESTAMP"):
        return "timestamp"
    return "string"


def _wider(old: str, new: str) -> bool:
    return (old, new) in WIDENINGS


def widest(kinds: set[str]) -> str | None:
    """The type that holds every one of ``kinds`` (None: no such type, the mix is refused)."""
    for candidate in kinds:
        if all(kind == candidate or (kind, candidate) in WIDENINGS for kind in kinds):
            return candidate
    return None
