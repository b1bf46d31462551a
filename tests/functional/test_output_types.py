"""Converted files hold every column as exactly the type the catalog declares for it, whatever the readers saw."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from analytics_platform.analytics.local_engine import DUCKDB_TYPES
from analytics_platform.etl.catalog import GLUE_TYPES, catalog_type, evolve
from analytics_platform.etl.transform import ConversionResult, Limits, convert_file
from tests.functional.test_transform import write
from tests.unit.test_catalog_types import ATHENA_READS, parquet_type

EXACT = Limits(max_reject_ratio=0)
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


# --- integers beyond BIGINT -----------------------------------------------------------------------------------
BIG = 99999999999999999999  # 20 digits: beyond BIGINT, within DECIMAL(38,0)
UNSIGNED = 2**64 - 1  # DuckDB's JSON reader takes it for BIGINT, then fails on it


def file_of(tmp_path: Path, name: str, values: list[object]) -> Path:
    records = [{"id": index, "n": value} for index, value in enumerate(values)]
    if name.endswith(".csv"):
        return write(tmp_path / name, "id,n\n" + "".join(f"{r['id']},{r['n']}\n" for r in records))
    if name.endswith(".jsonl"):
        return write(tmp_path / name, "".join(json.dumps(r) + "\n" for r in records))
    return write(tmp_path / name, json.dumps(records))


@pytest.mark.parametrize("name", ["in.csv", "in.jsonl", "in.json"])
@pytest.mark.parametrize(
    ("values", "expected_type"),
    [
        ([BIG, 1, 2], "DECIMAL(38,0)"),  # in the sampled rows
        ([*range(25_000), BIG], "DECIMAL(38,0)"),  # only after DuckDB's sample
        ([*range(25_000), UNSIGNED], "DECIMAL(38,0)"),
        ([-(10**37), 2**63], "DECIMAL(38,0)"),
        ([10**38 - 1, 5], "DECIMAL(38,0)"),  # 38 digits
        ([10**38, 5], "VARCHAR"),  # 39 digits: text, as written
        ([2**53 + 1, 1], "BIGINT"),  # beyond a DOUBLE's integers, within BIGINT
    ],
    ids=["first-rows", "late", "late-unsigned", "negative", "38-digits", "39-digits", "bigint"],
)
def test_integers_beyond_bigint_are_exact_decimals_in_csv_and_json(
    tmp_path: Path, name: str, values: list[int], expected_type: str
) -> None:
    # GIVEN integers some of which pass BIGINT WHEN converted
    result = convert_file(file_of(tmp_path, name, values), tmp_path / "out.parquet", name=name, limits=EXACT)
    # THEN the column is DECIMAL(38,0) (text beyond 38 digits), every value exactly as written
    assert result.failure is None and dict(result.schema)["n"] == expected_type
    written = read_as_declared(result)["n"]
    assert [str(value) for value in written] == [str(value) for value in values]


@pytest.mark.parametrize("name", ["in.csv", "in.jsonl"])
def test_fractions_with_integers_beyond_a_double_are_text_not_rounded(tmp_path: Path, name: str) -> None:
    values: list[object] = [1.5, BIG, 2.25]
    result = convert_file(file_of(tmp_path, name, values), tmp_path / "out.parquet", name=name, limits=EXACT)
    assert result.failure is None and dict(result.schema)["n"] == "VARCHAR"
    assert read_as_declared(result)["n"] == ["1.5", str(BIG), "2.25"]


def test_a_decimal_column_is_a_widening_of_an_integer_column_in_the_catalog() -> None:
    assert evolve([("n", "integer")], [("n", "DECIMAL(38,0)")]).widened == [("n", "integer", "decimal")]
    assert evolve([("n", "decimal")], [("n", "BIGINT")]).casts == {"n": "decimal"}
