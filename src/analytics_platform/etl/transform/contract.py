"""Dataset contracts and table types applied to a converted Parquet file, in one more DuckDB pass.

* :func:`apply_contract`: rows breaking a rule of the dataset's contract (type, not-null, allowed values,
  range) go to quarantine with every rule they broke; contract types are cast; a file without a required
  column fails. The kept rows are rewritten in place.
* :func:`conform`: casts columns to the dataset table's (wider) types, so every file of a dataset agrees with
  its catalog table.

A rule compares as its column's type says (:func:`compared_type`): ``allowed`` compares the value cast to that
type with the literals cast to it (``"T"`` is ``true`` in a boolean column, ``"1.50"`` is ``1.5`` in a numeric
one); ``min`` / ``max`` compare numerically, or chronologically for dates and timestamps. A value that cannot
be cast to that type breaks the rule (``max: amount=lots is not double``), it is never let through.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from analytics_platform.etl.catalog import catalog_type
from analytics_platform.etl.contracts import CONTRACT_TYPES, Bound, ColumnRule, DatasetContract
from analytics_platform.etl.exceptions import ContractViolationError
from analytics_platform.etl.transform.casts import CHRONOLOGICAL, NUMERIC, cast_sql, literal_text
from analytics_platform.etl.transform.columns import quote_identifier, quote_literal
from analytics_platform.etl.transform.session import copy_to_parquet, describe


def compared_type(rule: ColumnRule, current: str) -> str:
    """The catalog type a rule compares values as: its ``type``; else the column's, numeric for a range."""
    if rule.type:
        return rule.type
    column = catalog_type(current)
    if (rule.minimum is not None or rule.maximum is not None) and column not in NUMERIC:
        return "double"  # a range without a type is numeric (the contract refuses date bounds without one)
    return column


def _bound_sql(bound: Bound, kind: str) -> str:
    if kind in CHRONOLOGICAL:
        return f"CAST({quote_literal(str(bound))} AS {CONTRACT_TYPES[kind]})"
    return literal_text(bound)


def _allowed_sql(con: duckdb.DuckDBPyConnection, rule: ColumnRule, kind: str) -> list[str]:
    """The allowed literals cast to ``kind``; one that is no value of that type can match nothing."""
    casts = [cast_sql(quote_literal(literal_text(value)), "VARCHAR", kind) for value in rule.allowed or ()]
    if not casts:
        return []
    row = con.execute(f"SELECT {', '.join(f'({cast}) IS NOT NULL' for cast in casts)}").fetchone() or ()
    return [cast for cast, fits in zip(casts, row, strict=True) if fits]


def _checks(con: duckdb.DuckDBPyConnection, rule: ColumnRule, current: str) -> tuple[str, list[str]]:
    """(the value's SQL after the contract's cast, the SQL of each violation message or NULL)."""
    name = quote_identifier(rule.name)
    present = f"NULLIF({name}, '') IS NOT NULL" if current == "VARCHAR" else f"{name} IS NOT NULL"
    shown = f"{quote_literal(rule.name)} || '=' || CAST({name} AS VARCHAR)"
    stored = cast_sql(name, current, rule.type) if rule.type else name
    kind = compared_type(rule, current)
    value = cast_sql(name, current, kind)
    checks: list[str] = []
    if rule.type and stored != name:
        checks.append(f"CASE WHEN {present} AND ({stored}) IS NULL THEN 'type: ' || {shown} || ' is not {kind}' END")
    if rule.not_null:
        checks.append(f"CASE WHEN NOT ({present}) THEN 'not_null: ' || {quote_literal(rule.name)} || ' is empty' END")
    # A value its rule cannot compare (text against a range) breaks the rule; with a type, the type check says so.
    uncomparable = "false" if rule.type or value == name else f"{present} AND ({value}) IS NULL"
    if rule.allowed is not None:
        allowed = _allowed_sql(con, rule, kind)
        not_listed = f"({value}) NOT IN ({', '.join(allowed)})" if allowed else "true"
        listed = quote_literal(", ".join(literal_text(v) for v in rule.allowed))
        checks.append(
            f"CASE WHEN {uncomparable} THEN 'allowed: ' || {shown} || ' is not {kind}' "
            f"WHEN ({value}) IS NOT NULL AND {not_listed} THEN "
            f"'allowed: ' || {shown} || ' is not one of ' || {listed} END"
        )
    for bound, operator, word, side in ((rule.minimum, "<", "min", "below"), (rule.maximum, ">", "max", "above")):
        if bound is not None:
            checks.append(
                f"CASE WHEN {uncomparable} THEN '{word}: ' || {shown} || ' is not {kind}' "
                f"WHEN ({value}) {operator} {_bound_sql(bound, kind)} THEN '{word}: ' || {shown} || ' is {side} ' || "
                f"{quote_literal(literal_text(bound))} END"
            )
    return stored, checks


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
            values[rule.name], rule_checks = _checks(con, rule, types[rule.name])
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
        expression = cast_sql(quote_identifier(name), current, kind) if kind else quote_identifier(name)
        changed = changed or expression != quote_identifier(name)
        select.append(f"{expression} AS {quote_identifier(name)}")
    if not changed:
        return columns
    staged = parquet.with_name(parquet.name + ".conform")
    copy_to_parquet(con, f"SELECT {', '.join(select)} FROM {relation}", staged)
    staged.replace(parquet)
    return describe(con, relation)
