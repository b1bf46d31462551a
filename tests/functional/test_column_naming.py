"""Column names end to end: one column whatever its case, Unicode kept, collisions apart, the partition key renamed."""

from __future__ import annotations

from pathlib import Path

import duckdb

from analytics_platform.etl.catalog import evolve
from analytics_platform.etl.transform import convert_file
from tests.functional.test_transform import write


def names_and_rows(path: Path) -> tuple[list[str], list[tuple[object, ...]]]:
    con = duckdb.connect()
    cursor = con.execute(f"SELECT * FROM '{path}' ORDER BY ALL")
    return [d[0] for d in cursor.description], cursor.fetchall()


def test_column_names_match_across_files_whatever_their_case(tmp_path: Path) -> None:
    # GIVEN two files of one dataset spelling the same columns in different case
    a = convert_file(write(tmp_path / "a.csv", "userID,Amount\n1,2\n"), tmp_path / "a.parquet", name="a.csv")
    b = convert_file(write(tmp_path / "b.csv", "USERID,amount\n3,4\n"), tmp_path / "b.parquet", name="b.csv")
    # THEN they are the same columns
    assert [n for n, _ in a.schema] == [n for n, _ in b.schema] == ["userid", "amount"]


def test_headers_differing_only_in_case_in_one_file_keep_their_own_values(tmp_path: Path) -> None:
    source = write(tmp_path / "in.csv", "id,ID,Id,id_2\n1,2,3,4\n")
    result = convert_file(source, tmp_path / "out.parquet", name="in.csv")
    assert result.failure is None
    assert names_and_rows(result.output_path) == (["id", "id_3", "id_4", "id_2"], [(1, 2, 3, 4)])


def test_non_ascii_headers_keep_their_names_so_column_order_does_not_mix_data(tmp_path: Path) -> None:
    # GIVEN two files with Japanese headers in different orders
    a = convert_file(write(tmp_path / "a.csv", "名前,年齢\nアリス,30\n"), tmp_path / "a.parquet", name="a.csv")
    b = convert_file(write(tmp_path / "b.csv", "年齢,名前\n40,ボブ\n"), tmp_path / "b.parquet", name="b.csv")
    # THEN each value is under its own name in both files
    con = duckdb.connect()
    both = f"read_parquet(['{a.output_path}', '{b.output_path}'], union_by_name = true)"
    assert con.execute(f"SELECT 名前, 年齢 FROM {both} ORDER BY 年齢").fetchall() == [("アリス", 30), ("ボブ", 40)]


def test_a_data_column_named_like_the_partition_key_is_renamed_and_the_catalog_takes_it(tmp_path: Path) -> None:
    source = write(tmp_path / "in.csv", "id,ingest_date\n1,2024-01-31\n")
    result = convert_file(source, tmp_path / "out.parquet", name="in.csv")
    assert result.failure is None and [n for n, _ in result.schema] == ["id", "source_ingest_date"]
    assert evolve([], result.schema).added == ["id", "source_ingest_date"]
