"""Dataset contracts: what a dataset's records must look like (seed 003: validate structure and types).

A contract is optional, per dataset, in the platform configuration::

    [datasets.orders.columns.order_id]
    type = "integer"
    required = true      # a file without this column fails
    not_null = true      # a row with it empty goes to quarantine
    [datasets.orders.columns.status]
    allowed = ["new", "shipped", "returned"]
    [datasets.orders.columns.amount]
    type = "double"
    min = 0
    max = 1000000
    [datasets.orders.columns.ordered_on]
    type = "date"
    min = 2020-01-01     # a TOML date, or the text "2020-01-01"

A rule compares as its column's type (``type``, else the type the worker gave the column): ``allowed`` literals
are cast to it, ``min`` / ``max`` compare numerically, or chronologically for ``date`` and ``timestamp``
(bounds are then dates or timestamps). With a ``type``, every literal and bound must be a value of it.

The configuration validates contracts before synth (:func:`parse_contracts` names the bad field); the stack
passes them to the function as compact JSON; the worker reads them back with :func:`contracts_from_json`.
Column names are the Parquet names the worker writes (:mod:`.column_names`: lower case, any script).
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from analytics_platform.etl.catalog import PARTITION_KEY
from analytics_platform.etl.column_names import RENAMED_PARTITION_KEY, column_name, is_column_name

#: Contract types (the catalog's types) and the DuckDB type each one casts to and is written as.
CONTRACT_TYPES: Mapping[str, str] = {
    "integer": "BIGINT",
    "decimal": "DECIMAL(38,0)",
    "double": "DOUBLE",
    "string": "VARCHAR",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
}
DATASET_NAME = re.compile(r"^[0-9a-z][0-9a-z_-]{0,63}$")
RULE_KEYS = frozenset({"type", "required", "not_null", "allowed", "min", "max"})
#: A range bound: a number, or the ISO text of a date or timestamp.
Bound = int | float | str
NUMERIC_TYPES = (None, "integer", "decimal", "double")
CHRONOLOGICAL_TYPES = ("date", "timestamp")
#: Literal spellings each type takes, as DuckDB casts text (an integer is plain digits: 2.0 is not one).
INTEGER_TEXT = re.compile(r"\s*[+-]?[0-9]+\s*")
NUMBER_TEXT = re.compile(r"\s*[+-]?(([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|nan|inf|infinity)\s*", re.IGNORECASE)
BOOLEAN_TEXT = frozenset({"true", "false", "t", "f", "yes", "no", "y", "n", "1", "0"})
DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
INTEGER_DIGITS = {"integer": 18, "decimal": 38}


class ContractError(ValueError):
    """A contract that cannot be used; ``field`` is its dotted path in the configuration."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class ColumnRule:
    """The rules of one column; every rule is optional."""

    name: str
    type: str | None = None
    required: bool = False
    not_null: bool = False
    allowed: tuple[Any, ...] | None = None
    minimum: Bound | None = None
    maximum: Bound | None = None

    def to_mapping(self) -> dict[str, Any]:
        """The compact form (only the rules that are set), as in the configuration file."""
        body: dict[str, Any] = {}
        if self.type:
            body["type"] = self.type
        if self.required:
            body["required"] = True
        if self.not_null:
            body["not_null"] = True
        if self.allowed is not None:
            body["allowed"] = list(self.allowed)
        if self.minimum is not None:
            body["min"] = self.minimum
        if self.maximum is not None:
            body["max"] = self.maximum
        return body


@dataclass(frozen=True)
class DatasetContract:
    """The rules of one dataset's columns."""

    dataset: str
    columns: tuple[ColumnRule, ...]

    @property
    def required(self) -> tuple[str, ...]:
        """Columns every file of the dataset must have."""
        return tuple(rule.name for rule in self.columns if rule.required)


def _instant(field: str, kind: str, value: Any) -> str:
    """A date or timestamp (ISO text, or a TOML date / date-time) as the ISO text DuckDB casts."""
    if isinstance(value, datetime.datetime):
        if kind == "date":
            raise ContractError(field, f"a date column's values are dates (2024-01-31), not {value.isoformat()}")
        if value.tzinfo is not None:  # timestamps are stored in UTC
            value = value.astimezone(datetime.UTC).replace(tzinfo=None)
        return value.isoformat(sep=" ")
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            if kind == "date" and DATE_TEXT.fullmatch(value.strip()):
                return datetime.date.fromisoformat(value.strip()).isoformat()
            if kind == "timestamp" and DATE_TEXT.match(value.strip()):
                datetime.datetime.fromisoformat(value.strip())
                return value.strip()
        except ValueError:
            pass
    example = "2024-01-31" if kind == "date" else "2024-01-31 10:30:00"
    raise ContractError(field, f"{value!r} is not a {kind} (ISO 8601, like {example})")


def _literal(field: str, kind: str | None, value: Any) -> Any:
    """One ``allowed`` value, checked to be a value of the rule's type."""
    if isinstance(value, Mapping | list):
        raise ContractError(field, "values must be strings, numbers or booleans")
    if kind in CHRONOLOGICAL_TYPES:
        return _instant(field, kind, value)
    if isinstance(value, datetime.date):  # a TOML date in an untyped rule
        return value.isoformat()
    text = "true" if value is True else "false" if value is False else str(value)
    fits = {
        "integer": INTEGER_TEXT.fullmatch(text) is not None and -(2**63) <= int(text) < 2**63,
        "decimal": INTEGER_TEXT.fullmatch(text) is not None and len(text.strip().lstrip("+-").lstrip("0")) <= 38,
        "double": NUMBER_TEXT.fullmatch(text) is not None and not isinstance(value, bool),
        "boolean": text.strip().lower() in BOOLEAN_TEXT,
    }
    if not fits.get(kind or "", True):
        raise ContractError(field, f"{value!r} is not a {kind}")
    return value


def _bound(field: str, kind: str | None, value: Any) -> Bound:
    if kind in CHRONOLOGICAL_TYPES:
        return _instant(field, kind, value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        hint = '; a date or timestamp range needs type = "date" or "timestamp"' if kind is None else ""
        raise ContractError(field, f"must be a number, not {value!r}{hint}")
    return value


def _ordered(kind: str | None, bound: Bound) -> Any:
    """A bound as a value that compares in its type's order."""
    if kind not in CHRONOLOGICAL_TYPES:
        return bound
    instant = datetime.datetime.fromisoformat(str(bound))
    return instant.astimezone(datetime.UTC).replace(tzinfo=None) if instant.tzinfo else instant


def _range(field: str, kind: str | None, raw: Mapping[str, Any]) -> tuple[Bound | None, Bound | None]:
    if "min" not in raw and "max" not in raw:
        return None, None
    if kind not in NUMERIC_TYPES + CHRONOLOGICAL_TYPES:
        raise ContractError(f"{field}.min", f"a range needs a numeric, date or timestamp type, not {kind!r}")
    minimum = _bound(f"{field}.min", kind, raw["min"]) if "min" in raw else None
    maximum = _bound(f"{field}.max", kind, raw["max"]) if "max" in raw else None
    if minimum is not None and maximum is not None and _ordered(kind, minimum) > _ordered(kind, maximum):
        raise ContractError(f"{field}.min", f"{minimum} is above max {maximum}")
    return minimum, maximum


def _rule(field: str, name: str, raw: Any) -> ColumnRule:
    if name == PARTITION_KEY:
        raise ContractError(field, f"{name} is the partition key; a data column so named is {RENAMED_PARTITION_KEY}")
    if not is_column_name(name):
        suggestion = column_name(name, 0)
        raise ContractError(field, f"column names are the worker's Parquet names (lower case): {suggestion!r}?")
    if not isinstance(raw, Mapping):
        raise ContractError(field, "must be a table of rules")
    unknown = set(raw) - RULE_KEYS
    if unknown:
        raise ContractError(f"{field}.{sorted(unknown)[0]}", f"unknown rule; known: {', '.join(sorted(RULE_KEYS))}")
    kind = raw.get("type")
    if kind is not None and (not isinstance(kind, str) or kind not in CONTRACT_TYPES):
        raise ContractError(f"{field}.type", f"{kind!r} is not one of {', '.join(CONTRACT_TYPES)}")
    for flag in ("required", "not_null"):
        if not isinstance(raw.get(flag, False), bool):
            raise ContractError(f"{field}.{flag}", "must be true or false")
    allowed = raw.get("allowed")
    if allowed is not None:
        if not isinstance(allowed, list) or not allowed:
            raise ContractError(f"{field}.allowed", "must be a non-empty list of values")
        allowed = [_literal(f"{field}.allowed", kind, value) for value in allowed]
    minimum, maximum = _range(field, kind, raw)
    return ColumnRule(
        name, kind, bool(raw.get("required", False)), bool(raw.get("not_null", False)),
        tuple(allowed) if allowed is not None else None, minimum, maximum,
    )  # fmt: skip


def parse_contract(dataset: str, raw: Any, field: str = "datasets") -> DatasetContract:
    """One dataset's contract from its configuration table; :class:`ContractError` names the bad field."""
    path = f"{field}.{dataset}"
    if not DATASET_NAME.match(dataset):
        raise ContractError(path, "dataset names are the first folder under raw/, lower case (a-z, 0-9, _, -)")
    if not isinstance(raw, Mapping):
        raise ContractError(path, "must be a table with a 'columns' table")
    unknown = set(raw) - {"columns"}
    if unknown:
        raise ContractError(f"{path}.{sorted(unknown)[0]}", "unknown setting; a contract has 'columns'")
    columns = raw.get("columns")
    if not isinstance(columns, Mapping) or not columns:
        raise ContractError(f"{path}.columns", "must be a non-empty table of column rules")
    rules = tuple(_rule(f"{path}.columns.{name}", str(name), body) for name, body in columns.items())
    return DatasetContract(dataset, rules)


def parse_contracts(raw: Any, field: str = "datasets") -> dict[str, DatasetContract]:
    """Every dataset's contract from the configuration's ``datasets`` table."""
    if isinstance(raw, Mapping) and all(isinstance(v, DatasetContract) for v in raw.values()):
        return dict(raw)
    if not isinstance(raw, Mapping):
        raise ContractError(field, "must be a table of datasets")
    return {str(name): parse_contract(str(name), body, field) for name, body in raw.items()}


def contracts_to_json(contracts: Mapping[str, DatasetContract]) -> str:
    """The compact JSON the function's environment carries."""
    body = {
        name: {"columns": {rule.name: rule.to_mapping() for rule in contract.columns}}
        for name, contract in sorted(contracts.items())
    }
    return json.dumps(body, separators=(",", ":"))  # column order kept: it is the configuration's


def contracts_from_json(text: str) -> dict[str, DatasetContract]:
    """Read :func:`contracts_to_json` back; a bad value is a clear error naming the dataset and rule."""
    if not text.strip():
        return {}
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise ContractError("DATASET_CONTRACTS", f"not JSON: {error}") from error
    return parse_contracts(raw, "DATASET_CONTRACTS")
