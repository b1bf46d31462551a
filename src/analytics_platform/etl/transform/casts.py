"""A value cast to a catalog (contract) type without being altered: where the type cannot hold it, NULL.

DuckDB's own casts round ``2.5`` to an integer, drop a time of day from a date, and read ``2`` as ``true``;
:func:`cast_sql` never does: a value that is not exactly a value of the type is NULL, so a contract check sees
it as a value its type cannot hold. An empty text is NULL, as everywhere in the worker.

The source types are the ones the worker writes (the catalog types' DuckDB spellings, :mod:`.parquet_types`),
and VARCHAR for the literals of a contract.
"""

from __future__ import annotations

from analytics_platform.etl.catalog import catalog_type
from analytics_platform.etl.contracts import CONTRACT_TYPES

NUMERIC = frozenset({"integer", "decimal", "double"})
CHRONOLOGICAL = frozenset({"date", "timestamp"})
INTEGER_TEXT = "'[+-]?[0-9]+'"


def _from_text(text: str, kind: str, target: str) -> str:
    """SQL casting trimmed, non-empty text ``text`` to ``kind``."""
    if kind in ("integer", "decimal"):
        return f"CASE WHEN regexp_full_match({text}, {INTEGER_TEXT}) THEN TRY_CAST({text} AS {target}) END"
    if kind == "date":  # a time of day is not a date
        return f"CASE WHEN NOT contains({text}, ':') THEN TRY_CAST({text} AS DATE) END"
    return f"TRY_CAST({text} AS {target})"


def cast_sql(expression: str, current: str, kind: str) -> str:
    """SQL casting ``expression`` (of DuckDB type ``current``) to catalog type ``kind``; NULL if it cannot."""
    target = CONTRACT_TYPES[kind]
    source = catalog_type(current)
    if current.upper() == target:
        return expression
    if kind == "string":
        return f"CAST({expression} AS VARCHAR)"
    if source == "string":
        return _from_text(f"NULLIF(trim({expression}), '')", kind, target)
    if kind in ("integer", "decimal") and source in NUMERIC:  # never round: 2.5 is not an integer
        whole = "true" if source != "double" else f"{expression} = trunc({expression})"
        return f"CASE WHEN {whole} THEN TRY_CAST({expression} AS {target}) END"
    if kind == "double" and source in NUMERIC:
        return f"CAST({expression} AS DOUBLE)"
    if kind == "boolean" and source in ("integer", "decimal"):  # 0 and 1 only: 2 is no boolean
        return f"CASE WHEN {expression} IN (0, 1) THEN {expression} = 1 END"
    if kind == "date" and source == "timestamp":  # only midnight: a time of day would be dropped
        return f"CASE WHEN CAST({expression} AS TIME) = TIME '00:00:00' THEN CAST({expression} AS DATE) END"
    if kind == "timestamp" and source == "date":
        return f"CAST({expression} AS TIMESTAMP)"
    return f"CAST(NULL AS {target})"


def literal_text(value: object) -> str:
    """The text of a contract literal, as a file would hold it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)
