"""Contract rules compare as the column's type says; a value that cannot be compared breaks the rule."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from analytics_platform.etl.contracts import parse_contract
from analytics_platform.etl.transform import ConversionResult, Limits, convert_file
from tests.functional.test_transform import write

ANY_SHARE = Limits(max_reject_ratio=0.99)


def check(tmp_path: Path, name: str, text: str, rules: dict[str, Any]) -> ConversionResult:
    contract = parse_contract("d", {"columns": rules})
    source = write(tmp_path / name, text)
    result = convert_file(source, tmp_path / "out.parquet", name=name, limits=ANY_SHARE, contract=contract)
    assert result.failure is None, result.failure
    return result


def broken(result: ConversionResult) -> list[str]:
    """The rule messages of the quarantined rows, sorted."""
    if result.quarantine_path is None:
        return []
    lines = [json.loads(line) for line in result.quarantine_path.read_text().splitlines()]
    return sorted(line["error"].removeprefix("contract: ") for line in lines)


def kept(result: ConversionResult, column: str) -> list[object]:
    return [
        r[0] for r in duckdb.connect().execute(f"SELECT {column} FROM '{result.output_path}' ORDER BY 1").fetchall()
    ]


def test_allowed_literals_are_cast_to_a_boolean_column(tmp_path: Path) -> None:
    # GIVEN a column DuckDB types as boolean and a rule listing T and F
    result = check(tmp_path, "in.csv", "id,paid\n1,true\n2,false\n3,true\n", {"paid": {"allowed": ["T", "F"]}})
    # THEN every row is kept: T and F are true and false in a boolean column
    assert (result.rows_out, broken(result)) == (3, [])


def test_allowed_literals_are_cast_to_a_numeric_column(tmp_path: Path) -> None:
    result = check(tmp_path, "in.csv", "amount\n1.5\n2\n2.5\n", {"amount": {"allowed": ["1.50", "2"]}})
    assert broken(result) == ["allowed: amount=2.5 is not one of 1.50, 2"]
    assert kept(result, "amount") == [1.5, 2.0]


def test_a_range_compares_numbers_and_refuses_text_it_cannot_compare(tmp_path: Path) -> None:
    # GIVEN amounts that are text because of one non-number, and a range without a type
    result = check(tmp_path, "in.csv", "amount\n500\nlots\n1500\n999.5\n", {"amount": {"min": 0, "max": 1000}})
    # THEN "lots" breaks the range (it was let through as text), 1500 is above it, 999.5 is not (text order)
    assert broken(result) == [
        "max: amount=1500 is above 1000",
        "min: amount=lots is not double; max: amount=lots is not double",
    ]
    assert kept(result, "amount") == ["500", "999.5"]


def test_a_typed_rule_casts_and_names_the_value_that_is_not_of_its_type(tmp_path: Path) -> None:
    rules = {"amount": {"type": "double", "max": 1000}}
    result = check(tmp_path, "in.csv", "amount\n500\nlots\n1500\n1.50\n", rules)
    assert broken(result) == ["max: amount=1500 is above 1000", "type: amount=lots is not double"]
    assert kept(result, "amount") == [1.5, 500.0]


def test_a_date_range_compares_chronologically(tmp_path: Path) -> None:
    rules = {"day": {"type": "date", "min": "2024-01-01", "max": datetime.date(2024, 12, 31)}}
    result = check(tmp_path, "in.csv", "day\n2023-12-31\n2024-06-01\n2025-01-01\n", rules)
    assert broken(result) == ["max: day=2025-01-01 is above 2024-12-31", "min: day=2023-12-31 is below 2024-01-01"]
    assert kept(result, "day") == [datetime.date(2024, 6, 1)]


def test_a_timestamp_range_compares_chronologically_not_as_text(tmp_path: Path) -> None:
    rules = {"at": {"type": "timestamp", "min": "2024-01-01 09:00:00"}}
    result = check(tmp_path, "in.csv", "at\n2024-01-01 10:00:00\n2024-01-01 8:30:00\n", rules)
    assert broken(result) == ["min: at=2024-01-01 08:30:00 is below 2024-01-01 09:00:00"]


def test_integers_beyond_bigint_compare_exactly(tmp_path: Path) -> None:
    rules = {"id": {"type": "decimal", "min": 10**19}}
    result = check(tmp_path, "in.csv", f"id\n{10**19 - 1}\n{10**19}\n99999999999999999999\n", rules)
    assert broken(result) == [f"min: id={10**19 - 1} is below {10**19}"]


@pytest.mark.parametrize("name", ["in.csv", "in.jsonl"])
def test_an_empty_value_breaks_not_null_in_csv_and_json_alike(tmp_path: Path, name: str) -> None:
    text = "id,note\n1,x\n2,\n" if name == "in.csv" else '{"id": 1, "note": "x"}\n{"id": 2, "note": ""}\n'
    result = check(tmp_path, name, text, {"note": {"not_null": True}, "id": {"type": "integer"}})
    assert broken(result) == ["not_null: note is empty"]
