"""What each DuckDB type is written to Parquet as: exactly its catalog type, so Athena reads what Glue declares.

DuckDB writes TIME, UUID, JSON, STRUCT, LIST, MAP, BLOB, INTERVAL, ... natively into Parquet (an INT64 TIME, a
16-byte UUID, a nested group), while the catalog declares such a column ``string``: Athena then refuses the
column or reads something else than the file holds. So every column goes through :func:`stored_sql` on its way
out and is written as the DuckDB spelling of its catalog type (:data:`CONTRACT_TYPES` of
:func:`~analytics_platform.etl.catalog.catalog_type`), each Parquet column holding exactly the declared type:

* integers of every width: BIGINT; UBIGINT, HUGEINT and DECIMAL(p,0): DECIMAL(38,0) (exact, never a DOUBLE);
* FLOAT and DECIMAL(p,s) with a scale: DOUBLE (the readers never produce a scaled DECIMAL);
* TIMESTAMP WITH TIME ZONE: the UTC time as TIMESTAMP; TIMESTAMP_S/MS/NS: TIMESTAMP (microseconds);
* TIME: text ``HH:MM:SS``, or ``HH:MM:SS.ffffff`` when it has a fraction of a second;
* STRUCT, MAP, LIST, ARRAY, UNION: their JSON text; JSON: its text; BLOB: base64 text;
* UUID (lower-case canonical form), TIME WITH TIME ZONE, INTERVAL, ENUM, BIT, VARINT, UHUGEINT, ...: their
  DuckDB text.
"""

from __future__ import annotations

from collections.abc import Mapping

from analytics_platform.etl.catalog import catalog_type
from analytics_platform.etl.contracts import CONTRACT_TYPES
from analytics_platform.etl.transform.columns import quote_identifier

NESTED_PREFIXES = ("STRUCT", "MAP", "UNION")


def stored_type(duckdb_type: str) -> str:
    """The DuckDB type a column of ``duckdb_type`` is written as."""
    return CONTRACT_TYPES[catalog_type(duckdb_type)]


def is_nested(duckdb_type: str) -> bool:
    """STRUCT, MAP, UNION, LIST (``T[]``) and ARRAY (``T[n]``) types."""
    kind = duckdb_type.upper()
    return kind.startswith(NESTED_PREFIXES) or kind.endswith("]")


def _text_sql(expression: str, duckdb_type: str) -> str:
    kind = duckdb_type.upper()
    if kind == "TIME":  # DuckDB prints 10:30:00.5; Athena users expect a fixed width
        text = f"CAST({expression} AS VARCHAR)"
        return f"CASE WHEN length({text}) > 8 THEN rpad({text}, 15, '0') ELSE {text} END"
    if kind == "BLOB":
        return f"to_base64({expression})"
    if is_nested(kind):
        return f"CAST(to_json({expression}) AS VARCHAR)"
    return f"CAST({expression} AS VARCHAR)"


def stored_sql(expression: str, duckdb_type: str) -> str:
    """SQL turning ``expression`` (of ``duckdb_type``) into the type it is written as, without changing its value."""
    target = stored_type(duckdb_type)
    if duckdb_type.upper() == target:
        return expression
    if target == "VARCHAR":
        return _text_sql(expression, duckdb_type)
    if duckdb_type.upper() == "TIMESTAMP WITH TIME ZONE":  # a cast would use the session's time zone
        return f"timezone('UTC', {expression})"
    return f"CAST({expression} AS {target})"


def stored_select(columns: list[tuple[str, str]], names: list[str], values: Mapping[str, str] | None = None) -> str:
    """``<value as stored> AS "name"`` for each (DuckDB column, type); ``values`` replaces a column's SQL."""
    values = values or {}
    return ", ".join(
        f"{stored_sql(values.get(original, quote_identifier(original)), kind)} AS {quote_identifier(name)}"
        for (original, kind), name in zip(columns, names, strict=True)
    )
