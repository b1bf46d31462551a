"""Dataset contracts and table types applied to a converted Parquet file, in one more DuckDB pass.

* :func:`apply_contract`: rows breaking a rule of the dataset's contract (type, not-null, allowed values,
  range) go to quarantine with every rule they broke; contract types are cast; a file without a required
  column fails. The kept rows are rewritten in place.
* :func:`conform`: casts columns to the dataset table's (wider) types, so every file of a dataset agrees with
  its catalog table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb

from analytics_platform.etl.contracts import CONTRACT_TYPES, ColumnRule, DatasetContract
from analytics_platform.etl.exceptions import ContractViolationError
from analytics_platform.etl.transform.columns import quote_identifier, quote_literal
from analytics_platform.etl.transform.session import copy_to_parquet, describe

INTEGER_TYPES = frozenset({"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"})
#: DuckDB types that already hold a contract type exactly (no cast, no check).
NATIVE: dict[str, frozenset[str]] = {
    "integer": INTEGER_TYPES,
    "decimal": frozenset({"DECIMAL(38,0)"}),
    "double": frozenset({"DOUBLE", "FLOAT"}),
    "string": frozenset({"VARCHAR"}),
    "boolean": frozenset({"BOOLEAN"}),
    "date": frozenset({"DATE"}),
    "timestamp": frozenset({"TIMESTAMP", "TIMESTAMP WITH TIME ZONE"}),
}


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(float(value))
    return quote_literal(str(value))


def cast_expression(column: str, current: str, kind: str) -> str:
    """SQL casting ``column`` (of DuckDB type ``current``) to contract/catalog type ``kind``; NULL if it cannot."""
    name = quote_identifier(column)
    target = CONTRACT_TYPES[kind]
    if current in NATIVE[kind]:
        return f"CAST({name} AS {target})" if current != target and kind != "timestamp" else name
    if kind == "string":
        nested = current.startswith(("STRUCT", "MAP")) or current.endswith("]")
        return f"CAST(to_json({name}) AS VARCHAR)" if nested else f"CAST({name} AS VARCHAR)"
    if kind in ("integer", "decimal"):  # never round: 2.5 is not an integer
        if current in INTEGER_TYPES:
            return f"CAST({name} AS {target})"
        if current in NATIVE["double"]:
            return f"CASE WHEN {name} = trunc({name}) THEN TRY_CAST({name} AS {target}) END"
        text = f"trim(CAST({name} AS VARCHAR))"
        return f"CASE WHEN regexp_full_match({text}, '[+-]?[0-9]+') THEN TRY_CAST({text} AS {target}) END"
    if kind == "date" and current == "VARCHAR":  # a time of day is not a date
        return f"CASE WHEN NOT contains({name}, ':') THEN TRY_CAST({name} AS DATE) END"
    return f"TRY_CAST({name} AS {target})"


def _checks(rule: ColumnRule, current: str) -> tuple[str, list[str]]:
    """(the value's SQL after the contract's cast, the SQL of each violation message or NULL)."""
    name = quote_identifier(rule.name)
    value = cast_expression(rule.name, current, rule.type) if rule.type else name
    label = quote_literal(rule.name)
    checks: list[str] = []
    if rule.type and value != name:
        checks.append(
            f"CASE WHEN {name} IS NOT NULL AND ({value}) IS NULL THEN "
            f"'type: ' || {label} || '=' || CAST({name} AS VARCHAR) || ' is not {rule.type}' END"
        )
    if rule.not_null:
        checks.append(f"CASE WHEN {name} IS NULL THEN 'not_null: ' || {label} || ' is empty' END")
    if rule.allowed is not None:
        if all(isinstance(v, str) for v in rule.allowed):
            probe, values = f"CAST(({value}) AS VARCHAR)", ", ".join(quote_literal(str(v)) for v in rule.allowed)
        else:
            probe, values = f"TRY_CAST(({value}) AS DOUBLE)", ", ".join(_literal(v) for v in rule.allowed)
        listed = ", ".join(map(str, rule.allowed)).replace("'", "")
        checks.append(
            f"CASE WHEN ({value}) IS NOT NULL AND {probe} NOT IN ({values}) THEN 'allowed: ' || {label} || '=' || "
            f"CAST(({value}) AS VARCHAR) || ' is not one of {listed}' END"
        )
    for bound, operator, word in ((rule.minimum, "<", "min"), (rule.maximum, ">", "max")):
        if bound is not None:
            checks.append(
                f"CASE WHEN TRY_CAST(({value}) AS DOUBLE) {operator} {bound!r} THEN '{word}: ' || {label} || '=' || "
                f"CAST(({value}) AS VARCHAR) || ' is {'below' if word == 'min' else 'above'} {bound:g}' END"
            )
    return value, checks


def apply_contract(
    con: duckdb.DuckDBPyConnection, parquet: Path, quarantine: Path, contract: DatasetContract
) -> tuple[int, int, list[tuple[str, str]]]:
    """Check every row of ``parquet`` against ``contract``; returns (rows kept, rows quarantined, new schema).

    Raises :class:`ContractViolationError` when the file lacks a required column (nothing is rewritten).
    """
    relation = f"read_parquet({quote_literal(str(parquet))})"
    columns = describe(con, relation)
    types = dict(columns)
    missing = [name for name in contract.required if name not in types]
    if missing:
        raise ContractViolationError(
            f"the {contract.dataset!r} contract requires column(s) {', '.join(missing)}; the file has "
            f"{', '.join(types) or 'none'}"
        )
    values: dict[str, str] = {}
    checks: list[str] = []
    for rule in contract.columns:
        if rule.name in types:
            values[rule.name], rule_checks = _checks(rule, types[rule.name])
            checks += rule_checks
    if not checks:
        return _count(con, relation), 0, columns
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE contract_rows AS SELECT *, concat_ws('; ', {', '.join(checks)}) AS _broken "
        f"FROM {relation}"
    )
    select = ", ".join(f"{values.get(n, quote_identifier(n))} AS {quote_identifier(n)}" for n, _ in columns)
    kept = f"SELECT {select} FROM contract_rows WHERE _broken = ''"
    staged = parquet.with_name(parquet.name + ".contract")
    rows_out = copy_to_parquet(con, kept, staged)
    rejected = _quarantine(con, quarantine, [n for n, _ in columns])
    staged.replace(parquet)
    schema = describe(con, f"read_parquet({quote_literal(str(parquet))})")
    con.execute("DROP TABLE contract_rows")
    return rows_out, rejected, schema


def _count(con: duckdb.DuckDBPyConnection, relation: str) -> int:
    row = con.execute(f"SELECT count(*) FROM {relation}").fetchone()
    return int(row[0]) if row else 0


def _quarantine(con: duckdb.DuckDBPyConnection, quarantine: Path, names: list[str]) -> int:
    """Append the rows that broke the contract to the quarantine file: the record, and every rule it broke."""
    record = "to_json(struct_pack(" + ", ".join(f"{quote_identifier(n)} := {quote_identifier(n)}" for n in names) + "))"
    rows = con.execute(f"SELECT {record}, _broken FROM contract_rows WHERE _broken <> ''").fetchall()
    if rows:
        with quarantine.open("a", encoding="utf-8") as handle:
            for raw, broken in rows:
                handle.write(json.dumps({"line": None, "raw": str(raw), "error": f"contract: {broken}"}) + "\n")
    return len(rows)


def conform(con: duckdb.DuckDBPyConnection, parquet: Path, table_types: dict[str, str]) -> list[tuple[str, str]]:
    """Rewrite ``parquet`` with each column cast to the table's type where they differ; returns the new schema."""
    relation = f"read_parquet({quote_literal(str(parquet))})"
    columns = describe(con, relation)
    changed = False
    select: list[str] = []
    for name, current in columns:
        kind = table_types.get(name)
        expression = cast_expression(name, current, kind) if kind else quote_identifier(name)
        changed = changed or expression != quote_identifier(name)
        select.append(f"{expression} AS {quote_identifier(name)}")
    if not changed:
        return columns
    staged = parquet.with_name(parquet.name + ".conform")
    copy_to_parquet(con, f"SELECT {', '.join(select)} FROM {relation}", staged)
    staged.replace(parquet)
    return describe(con, relation)
