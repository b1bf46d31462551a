"""Converted files hold every column as exactly the type the catalog declares for it, whatever the readers saw."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from analytics_platform.analytics.local_engine import DUCKDB_TYPES
from analytics_platform.etl.catalog import GLUE_TYPES, catalog_type
from analytics_platform.etl.transform import ConversionResult, Limits, convert_file
from tests.functional.test_transform import write
from tests.unit.test_catalog_types import ATHENA_READS, parquet_type

UUID = "7D444840-9DC0-11D1-B245-5FFDCE74FAD2"
RECORDS = [
    {"id": 1, "at": "10:30:00", "uid": UUID, "tags": ["a", "b"], "meta": {"k": 1, "s": "x"}, "day": "2024-01-01",
     "ts": "2024-01-01 10:00:00", "ok": True, "score": 1.5, "mixed": 1, "wide": {f"k{i}": i for i in range(300)}},
    {"id": 2, "at": "11:00:00.25", "uid": UUID.lower(), "tags": [], "meta": {"k": 2, "s": "y"}, "day": "2024-01-02",
     "ts": "2024-01-02 10:00:00", "ok": False, "score": 2, "mixed": "x", "wide": {"k0": 1}},
]  # fmt: skip


def read_as_declared(result: ConversionResult) -> dict[str, list[object]]:
    """Every column read as the catalog declares it: the Parquet type must be the declared one, and a cast to it
    (what Athena and the local engine do) must neither fail nor change a value. Returns the values by column."""
    con = duckdb.connect()
    values: dict[str, list[object]] = {}
    for index, (name, duckdb_type) in enumerate(result.schema):
        kind = catalog_type(duckdb_type)
        assert parquet_type(result.output_path, index) == ATHENA_READS[GLUE_TYPES[kind]], (name, duckdb_type)
        rows = con.execute(
            f'SELECT "{name}", CAST("{name}" AS {DUCKDB_TYPES[kind]}) FROM \'{result.output_path}\' ORDER BY id'
        ).fetchall()
        assert all(written == declared for written, declared in rows), name
        values[name] = [written for written, _ in rows]
    return values


def test_json_of_every_type_is_written_as_the_declared_types(tmp_path: Path) -> None:
    # GIVEN JSON Lines whose values DuckDB reads as TIME, UUID, LIST, STRUCT, MAP, mixed JSON, DATE, TIMESTAMP, ...
    source = write(tmp_path / "in.jsonl", "".join(json.dumps(record) + "\n" for record in RECORDS))
    # WHEN converted
    result = convert_file(source, tmp_path / "out.parquet", name="in.jsonl", limits=Limits(max_reject_ratio=0))
    assert result.failure is None
    # THEN each column is stored as its declared type, and the types DuckDB has no catalog type for are text
    values = read_as_declared(result)
    assert {name: catalog_type(t) for name, t in result.schema} == {
        "id": "integer", "at": "string", "uid": "string", "tags": "string", "meta": "string", "day": "date",
        "ts": "timestamp", "ok": "boolean", "score": "double", "mixed": "string", "wide": "string",
    }  # fmt: skip
    assert values["at"] == ["10:30:00", "11:00:00.250000"]
    assert values["uid"] == [UUID.lower(), UUID.lower()]
    assert values["tags"] == ['["a","b"]', "[]"]
    assert [json.loads(str(text)) for text in values["meta"]] == [r["meta"] for r in RECORDS]
    assert [json.loads(str(text)) for text in values["wide"]] == [r["wide"] for r in RECORDS]
    assert values["mixed"] == ["1", "x"]


def test_csv_times_and_offsets_are_written_as_the_declared_types(tmp_path: Path) -> None:
    source = write(
        tmp_path / "in.csv", "id,at,ts\n1,10:30:00,2024-01-01 10:00:00+02\n2,23:59:59.5,2024-01-01 10:00:00\n"
    )
    result = convert_file(source, tmp_path / "out.parquet", name="in.csv")
    assert result.failure is None
    values = read_as_declared(result)
    assert values["at"] == ["10:30:00", "23:59:59.500000"]
    assert [str(v) for v in values["ts"]] == ["2024-01-01 08:00:00", "2024-01-01 10:00:00"]  # UTC
