"""Every DuckDB type is written to Parquet as exactly the type the catalog declares for it, value unchanged."""

from __future__ import annotations

import base64
import datetime
import decimal
import json
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from analytics_platform.analytics.local_engine import DUCKDB_TYPES
from analytics_platform.etl.catalog import GLUE_TYPES, catalog_type, glue_columns
from analytics_platform.etl.contracts import CONTRACT_TYPES
from analytics_platform.etl.transform.parquet_types import stored_sql

#: What Athena reads as each Glue type from Parquet: (physical type, logical type), the Parquet specification's
#: mapping. A column written any other way is refused or misread (a TIME as a bigint, a UUID as bytes).
ATHENA_READS: dict[str, tuple[str, dict[str, Any]]] = {
    "bigint": ("INT64", {"Type": "Int", "bitWidth": 64, "isSigned": True}),
    "decimal(38,0)": ("FIXED_LEN_BYTE_ARRAY", {"Type": "Decimal", "precision": 38, "scale": 0}),
    "double": ("DOUBLE", {"Type": "None"}),
    "string": ("BYTE_ARRAY", {"Type": "String"}),
    "boolean": ("BOOLEAN", {"Type": "None"}),
    "date": ("INT32", {"Type": "Date"}),
    "timestamp": ("INT64", {"Type": "Timestamp", "isAdjustedToUTC": False, "timeUnit": "microseconds"}),
}
UUID = "7D444840-9DC0-11D1-B245-5FFDCE74FAD2"
#: One value of every DuckDB type (the readers produce a subset), and what it must read back as.
VALUES: dict[str, tuple[str, object]] = {
    "TINYINT": ("-7::TINYINT", -7),
    "SMALLINT": ("300::SMALLINT", 300),
    "INTEGER": ("70000::INTEGER", 70_000),
    "BIGINT": ("9007199254740993::BIGINT", 2**53 + 1),
    "UTINYINT": ("255::UTINYINT", 255),
    "USMALLINT": ("65535::USMALLINT", 65_535),
    "UINTEGER": ("4294967295::UINTEGER", 2**32 - 1),
    "UBIGINT": ("18446744073709551615::UBIGINT", decimal.Decimal(2**64 - 1)),
    "HUGEINT": (f"{10**37 + 1}::HUGEINT", decimal.Decimal(10**37 + 1)),
    "DECIMAL(20,0)": ("99999999999999999999::DECIMAL(20,0)", decimal.Decimal(10**20 - 1)),
    "DECIMAL(38,0)": (f"'{10**38 - 1}'::DECIMAL(38,0)", decimal.Decimal(10**38 - 1)),
    "DECIMAL(18,2)": ("12.25::DECIMAL(18,2)", 12.25),
    "FLOAT": ("1.5::FLOAT", 1.5),
    "DOUBLE": ("0.1::DOUBLE", 0.1),
    "BOOLEAN": ("true", True),
    "DATE": ("DATE '2024-02-29'", datetime.date(2024, 2, 29)),
    "TIMESTAMP": ("TIMESTAMP '2024-02-29 10:30:00.123456'", datetime.datetime(2024, 2, 29, 10, 30, 0, 123456)),
    "TIMESTAMP_S": ("'2024-02-29 10:30:00'::TIMESTAMP_S", datetime.datetime(2024, 2, 29, 10, 30)),
    "TIMESTAMP_MS": ("'2024-02-29 10:30:00.5'::TIMESTAMP_MS", datetime.datetime(2024, 2, 29, 10, 30, 0, 500000)),
    "TIMESTAMP_NS": ("'2024-02-29 10:30:00.5'::TIMESTAMP_NS", datetime.datetime(2024, 2, 29, 10, 30, 0, 500000)),
    "TIMESTAMP WITH TIME ZONE": ("TIMESTAMPTZ '2024-02-29 10:30:00+02'", datetime.datetime(2024, 2, 29, 8, 30)),
    "TIME": ("TIME '10:30:00.5'", "10:30:00.500000"),
    "TIME (whole seconds)": ("TIME '10:30:00'", "10:30:00"),
    "TIME WITH TIME ZONE": ("TIMETZ '10:30:00+02'", "10:30:00+02"),
    "INTERVAL": ("INTERVAL 1 DAY + INTERVAL 2 HOUR", "1 day 02:00:00"),
    "VARCHAR": ("'Größe, 名前'", "Größe, 名前"),
    "BLOB": ("'\\xAA\\x00'::BLOB", base64.b64encode(b"\xaa\x00").decode()),
    "UUID": (f"'{UUID}'::UUID", UUID.lower()),
    "JSON": ("'{\"a\": [1, 2]}'::JSON", '{"a": [1, 2]}'),
    "ENUM": ("'x'::ENUM('x', 'y')", "x"),
    "BIT": ("'0101'::BIT", "0101"),
    "STRUCT": ("{'a': 1, 'b': 'x'}", '{"a":1,"b":"x"}'),
    "LIST": ("[1, 2]", "[1,2]"),
    "ARRAY": ("[1, 2]::INTEGER[2]", "[1,2]"),
    "MAP": ("MAP {'k': 1}", '{"k":1}'),
    "UNION": ("union_value(n := 1)::UNION(n INTEGER, s VARCHAR)", '{"n":1}'),
    "UHUGEINT": ("340282366920938463463374607431768211455::UHUGEINT", str(2**128 - 1)),
}


#: The logical type's fields that say what a column holds (not how pyarrow found out).
ATHENA_KEYS = {"Type", "bitWidth", "isSigned", "precision", "scale", "isAdjustedToUTC", "timeUnit"}


def parquet_type(path: Path, index: int = 0) -> tuple[str, dict[str, Any]]:
    """(physical type, the logical type's fields) of one column of a Parquet file."""
    column = pq.ParquetFile(path).schema.column(index)
    logical = json.loads(column.logical_type.to_json())
    return column.physical_type, {key: value for key, value in logical.items() if key in ATHENA_KEYS}


@pytest.mark.parametrize("label", sorted(VALUES))
def test_every_duckdb_type_is_written_as_the_type_its_catalog_type_declares(tmp_path: Path, label: str) -> None:
    # GIVEN a value of a DuckDB type
    literal, expected = VALUES[label]
    con = duckdb.connect()
    duckdb_type = con.execute(f"DESCRIBE SELECT {literal} AS v").fetchall()[0][1]
    kind = catalog_type(duckdb_type)
    # WHEN written as the worker writes it
    path = tmp_path / "v.parquet"
    con.execute(f"COPY (SELECT {stored_sql('v', duckdb_type)} AS v FROM (SELECT {literal} AS v)) TO '{path}'")
    # THEN the Parquet column is exactly what Athena reads as the declared Glue type
    assert parquet_type(path) == ATHENA_READS[GLUE_TYPES[kind]], (duckdb_type, kind)
    # AND reading it as the declared type (what Athena and the local engine do) neither fails nor changes it
    declared = DUCKDB_TYPES[kind]
    as_written, as_declared = con.execute(f"SELECT v, CAST(v AS {declared}) FROM '{path}'").fetchone() or (None, None)
    assert as_written == as_declared == expected


@pytest.mark.parametrize(
    ("duckdb_type", "kind"),
    [
        ("BIGINT", "integer"), ("UINTEGER", "integer"), ("UBIGINT", "decimal"), ("HUGEINT", "decimal"),
        ("DECIMAL(38,0)", "decimal"), ("DECIMAL(20, 0)", "decimal"), ("DECIMAL(18,3)", "double"),
        ("FLOAT", "double"), ("TIMESTAMP WITH TIME ZONE", "timestamp"), ("TIMESTAMP_NS", "timestamp"),
        ("TIME", "string"), ("UUID", "string"), ("STRUCT(a BIGINT)", "string"), ("BIGINT[]", "string"),
        ("MAP(VARCHAR, BIGINT)", "string"), ("INTERVAL", "string"), ("BLOB", "string"), ("JSON", "string"),
    ],
)  # fmt: skip
def test_integers_beyond_bigint_are_exact_decimals_in_the_catalog(duckdb_type: str, kind: str) -> None:
    assert catalog_type(duckdb_type) == kind


def test_every_catalog_type_has_one_glue_spelling_and_one_duckdb_spelling() -> None:
    # the worker writes, Glue declares and the local engine reads the same types
    assert set(GLUE_TYPES) == set(CONTRACT_TYPES) == set(DUCKDB_TYPES)
    assert dict(CONTRACT_TYPES) == DUCKDB_TYPES
    table = {"StorageDescriptor": {"Columns": [{"Name": k, "Type": glue} for k, glue in GLUE_TYPES.items()]}}
    assert glue_columns(table) == [(kind, kind) for kind in GLUE_TYPES]
