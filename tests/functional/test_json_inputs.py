"""JSON input: empty values, keys, nested values and arrays, read as the user wrote them."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from analytics_platform.etl.exceptions import MalformedContentError
from analytics_platform.etl.transform import Limits, convert_file
from tests.functional.test_transform import write

EXACT = Limits(max_reject_ratio=0)


def table(path: Path) -> tuple[list[tuple[str, str]], list[tuple[object, ...]]]:
    con = duckdb.connect()
    schema = [(str(r[0]), str(r[1])) for r in con.execute(f"DESCRIBE SELECT * FROM '{path}'").fetchall()]
    return schema, con.execute(f"SELECT * FROM '{path}' ORDER BY id").fetchall()


def test_an_empty_value_is_null_in_csv_json_lines_and_json_arrays_alike(tmp_path: Path) -> None:
    # GIVEN the same rows as CSV (empty fields), JSON Lines and a JSON array (empty strings)
    records = [
        {"id": 1, "amount": 1.5, "day": "2024-01-31", "note": "x"},
        {"id": 2, "amount": "", "day": "", "note": ""},
    ]
    sources = {
        "in.csv": "id,amount,day,note\n1,1.5,2024-01-31,x\n2,,,\n",
        "in.jsonl": "".join(json.dumps(r) + "\n" for r in records),
        "in.json": json.dumps(records),
    }
    # WHEN each is converted
    tables = []
    for name, text in sources.items():
        result = convert_file(write(tmp_path / name, text), tmp_path / f"{name}.parquet", name=name, limits=EXACT)
        assert result.failure is None, name
        tables.append(table(result.output_path))
    # THEN they are the same table: typed columns, and NULL where the value was empty
    assert tables[0] == tables[1] == tables[2]
    schema, rows = tables[0]
    assert schema == [("id", "BIGINT"), ("amount", "DOUBLE"), ("day", "DATE"), ("note", "VARCHAR")]
    assert rows[1] == (2, None, None, None)


@pytest.mark.parametrize("name", ["in.jsonl", "in.json"])
def test_keys_differing_only_in_case_keep_their_own_values(tmp_path: Path, name: str) -> None:
    records = [{"id": 1, "ID": 2, "Id": "x"}, {"id": 3, "ID": 4}]
    text = "".join(json.dumps(r) + "\n" for r in records) if name.endswith("l") else json.dumps(records)
    result = convert_file(write(tmp_path / name, text), tmp_path / "out.parquet", name=name, limits=EXACT)
    assert result.failure is None
    assert table(result.output_path) == (
        [("id", "BIGINT"), ("id_2", "BIGINT"), ("id_3", "VARCHAR")],
        [(1, 2, "x"), (3, 4, None)],
    )


def test_a_key_first_seen_after_the_sample_is_kept(tmp_path: Path) -> None:
    # GIVEN 100,000 records (6 MB), then one record with another key (far beyond DuckDB's sample)
    lines = "".join(f'{{"id": {i}, "text": "{"x" * 40}"}}\n' for i in range(100_000))
    lines += '{"id": 100000, "late": "here"}\n'
    result = convert_file(write(tmp_path / "in.jsonl", lines), tmp_path / "out.parquet", name="in.jsonl", limits=EXACT)
    # THEN the late column is there with its value (DuckDB alone drops it)
    assert result.failure is None and [n for n, _ in result.schema] == ["id", "text", "late"]
    assert duckdb.connect().execute(f"SELECT id FROM '{result.output_path}' WHERE late = 'here'").fetchall() == [
        (100_000,)
    ]


def test_nested_values_keep_their_numbers_exactly(tmp_path: Path) -> None:
    text = '{"id": 1, "meta": {"big": 99999999999999999999, "price": 1.25}}\n{"id": 2, "meta": {"big": 1}}\n'
    result = convert_file(write(tmp_path / "in.jsonl", text), tmp_path / "out.parquet", name="in.jsonl", limits=EXACT)
    assert result.failure is None
    _, rows = table(result.output_path)
    assert json.loads(str(rows[0][1]), parse_float=str) == {"big": 99999999999999999999, "price": "1.25"}


def test_a_pretty_printed_json_array_converts(tmp_path: Path) -> None:
    records = [{"id": i, "text": "line\nbreak", "tags": ["a", "b"]} for i in range(3)]
    source = write(tmp_path / "in.json", "\ufeff" + json.dumps(records, indent=4))
    result = convert_file(source, tmp_path / "out.parquet", name="in.json", limits=EXACT)
    assert result.failure is None and result.rows_out == 3
    assert table(result.output_path)[1][0] == (0, "line\nbreak", '["a","b"]')


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('[{"a": 1}, {"a": 2}', "ends early"),
        ('[{"a": 1}, {"a": "tru', "ends early"),
        ('[{"a": 1}] {"b": 2}', "after the end"),
        ('[{"a": 1}, 2]', "must be objects"),
        ('[{"a": 1} {"a": 2}]', "expected , or ]"),
    ],
)
def test_a_json_array_that_is_cut_or_malformed_fails_with_its_reason(tmp_path: Path, text: str, reason: str) -> None:
    result = convert_file(write(tmp_path / "in.json", text), tmp_path / "out.parquet", name="in.json")
    assert isinstance(result.failure, MalformedContentError) and reason in str(result.failure)
    assert not result.output_path.exists()
