"""``tap query --local`` and ``tap datasets``: the region's catalog and Parquet through DuckDB (moto), the
residency guard, and the Athena path (stubbed Athena API)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import boto3
import duckdb
import pytest
from botocore.stub import Stubber

from analytics_platform.analytics.athena_engine import AthenaQueryError, run_athena
from analytics_platform.analytics.commands import run_query
from analytics_platform.analytics.guard import QueryRefusedError, check_query
from analytics_platform.analytics.local_engine import run_local
from analytics_platform.analytics.result import QueryResult
from analytics_platform.analytics.tables import CatalogLocationError, catalog_tables, dataset_stats
from analytics_platform.targeting.region_target import RegionTarget
from tests.functional.conftest import BUCKET, DATABASE, REGION, TABLE, Platform

TARGET = RegionTarget(REGION, BUCKET, TABLE, DATABASE, "analytics-athena-us-east-1-test")


def query(sql: str) -> list[tuple[Any, ...]]:
    return run_local(TARGET, sql).rows


def test_a_new_column_reads_as_the_union_with_catalog_types(platform: Platform) -> None:
    platform.upload_and_process("raw/evolve/a.csv", b"id,amount\n1,2\n2,3\n")
    _, job = platform.upload_and_process("raw/evolve/b.csv", b"id,amount,region\n3,2.5,eu\n")
    assert job["job_status"] == "SUCCEEDED"
    result = run_local(TARGET, "SELECT id, amount, region FROM evolve ORDER BY id")
    # the first file's whole amounts read as the table's double; its rows have no region
    assert result.rows == [(1, 2.0, None), (2, 3.0, None), (3, 2.5, "eu")]
    assert all(isinstance(row[1], float) for row in result.rows)
    (day,) = query("SELECT DISTINCT ingest_date FROM evolve")[0]
    assert isinstance(day, str) and date.fromisoformat(day)  # the partition, as Athena's projection types it


def test_a_corrected_reupload_replaces_the_old_rows(platform: Platform) -> None:
    platform.upload_and_process("raw/sales/day.csv", b"id,total\n1,10\n2,20\n3,30\n")
    assert query("SELECT count(*) FROM sales") == [(3,)]
    platform.upload_and_process("raw/sales/day.csv", b"id,total\n1,11\n2,21\n")
    assert query("SELECT count(*), sum(total) FROM sales") == [(2, 32)]


def test_datasets_lists_columns_current_files_and_rows(platform: Platform) -> None:
    platform.upload_and_process("raw/sales/day.csv", b"id,total\n1,10\n2,20\n3,30\n")
    platform.upload_and_process("raw/sales/day.csv", b"id,total\n1,11\n2,21\n")  # supersedes the first
    platform.upload_and_process("raw/sales/other.csv", b"id,total,note\n9,1,x\n")
    platform.upload_and_process("raw/sales/bad.csv", b"id,total\n1,2\n5,6,7,8\n")  # FAILED: not counted
    tables = {t.name: t for t in catalog_tables(boto3.client("glue", region_name=REGION), DATABASE)}
    assert tables["sales"].columns == [("id", "integer"), ("total", "integer"), ("note", "string")]
    stats = dataset_stats(platform.table)["sales"]
    assert (stats.files, stats.rows) == (2, 3)
    assert sorted(stats.outputs) == sorted(f"s3://{BUCKET}/{k}" for k in platform.keys("processed/sales/"))


def test_only_projected_partitions_of_exactly_the_tables_prefix_are_read(platform: Platform) -> None:
    platform.upload_and_process("raw/orders/a.csv", b"id,qty\n1,2\n")
    platform.upload_and_process("raw/ord/b.csv", b"id,qty\n9,9\n")  # a dataset whose name prefixes another's
    key = platform.keys("processed/orders/")[0]
    body = platform.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    for stray in ("processed/orders/odd/x.parquet", "processed/orders/ingest_date=20240103/x.parquet"):
        platform.s3.put_object(Bucket=BUCKET, Key=stray, Body=body)  # outside the projection: Athena skips it
    glue = boto3.client("glue", region_name=REGION)
    table = glue.get_table(DatabaseName=DATABASE, Name="ord")["Table"]
    descriptor = {**table["StorageDescriptor"], "Location": f"s3://{BUCKET}/processed/ord"}  # no trailing slash
    glue.update_table(
        DatabaseName=DATABASE,
        TableInput={"Name": "ord", "StorageDescriptor": descriptor, "Parameters": table["Parameters"]},
    )
    assert query("SELECT id FROM orders") == [(1,)] and query("SELECT id FROM ord") == [(9,)]


def test_the_query_cannot_read_or_write_anything_but_the_regions_data(platform: Platform, tmp_path: Any) -> None:
    platform.upload_and_process("raw/sales/day.csv", b"id,total\n1,10\n")
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n")
    for sql in (
        f"SELECT * FROM read_csv('{secret}')",
        f"COPY (SELECT 1) TO '{tmp_path / 'out.csv'}'",
        "SET enable_external_access = true",
        "INSTALL httpfs",
        # DuckDB 1.2's allowed_directories check is fooled by ./.. and always allows .tmp/: none is allowed here
        f"SELECT * FROM read_text('.tmp/./../{secret.relative_to(secret.anchor)}')",
        "COPY (SELECT 'planted' AS x) TO '.tmp/./../planted.csv'",
        f"SELECT * FROM read_text('{tmp_path}/./../' || 'x')",
        f"ATTACH '{tmp_path / 'x.db'}'",
        f"EXPORT DATABASE '{tmp_path / 'export'}'",
    ):
        with pytest.raises(duckdb.Error, match=r"(?i)permission|disabled|locked|configuration|access"):
            query(sql)
    assert not (tmp_path / "out.csv").exists() and not Path("planted.csv").exists()
    assert not (tmp_path / "x.db").exists() and not (tmp_path / "export").exists()


def test_the_regions_database_reads_under_each_name_athena_accepts(platform: Platform) -> None:
    # GIVEN one dataset in the region's catalog
    platform.upload_and_process("raw/sales/day.csv", b"id,total\n1,10\n2,20\n")
    # WHEN it is named bare, by database, and by catalog and database (Athena's three spellings)
    names = ("sales", f"{DATABASE}.sales", f'"AwsDataCatalog"."{DATABASE}"."sales"')
    # THEN DuckDB reads the same table under each, as Athena would
    assert [query(f"SELECT count(*) FROM {name}") for name in names] == [[(2,)]] * 3
    assert query("SHOW TABLES") == [("sales",)]


def test_a_catalog_table_pointing_outside_the_bucket_is_refused(platform: Platform) -> None:
    platform.upload_and_process("raw/sales/day.csv", b"id,total\n1,10\n")
    glue = boto3.client("glue", region_name=REGION)
    table = glue.get_table(DatabaseName=DATABASE, Name="sales")["Table"]
    descriptor = {**table["StorageDescriptor"], "Location": "s3://analytics-bucket-eu-west-1-test/processed/sales/"}
    glue.update_table(DatabaseName=DATABASE, TableInput={"Name": "sales", "StorageDescriptor": descriptor})
    with pytest.raises(CatalogLocationError, match="outside us-east-1's bucket"):
        query("SELECT 1")
    # the projection template is what Athena reads: it is checked as well
    parameters = {**table["Parameters"], "storage.location.template": "s3://other/processed/sales/x=${ingest_date}"}
    descriptor["Location"] = f"s3://{BUCKET}/processed/sales/"
    glue.update_table(
        DatabaseName=DATABASE, TableInput={"Name": "sales", "StorageDescriptor": descriptor, "Parameters": parameters}
    )
    with pytest.raises(CatalogLocationError, match="s3://other/"):
        query("SELECT 1")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM analytics_eu_west_1_test.orders",
        'SELECT * FROM "analytics_EU_WEST_1_test"."orders"',
        "SELECT * FROM read_parquet('s3://analytics-bucket-ap-southeast-1-test/processed/x.parquet')",
        "SELECT * FROM read_parquet('s3://someone-elses-bucket/x.parquet')",
        f"SELECT * FROM read_parquet('s3://{BUCKET}/processed/orders/x.parquet')",  # a file, not a table
        "SELECT * FROM otherdb.orders",
        "SELECT * FROM orders WHERE source = 'us-gov-west-1'",
        "select * from t where r='eu-central-2'",
        "   ",
        "DROP TABLE orders",
        "/* just a select */ ALTER TABLE orders SET TBLPROPERTIES ('projection.enabled'='false')",
        "-- comment\nCREATE EXTERNAL TABLE x (a int) LOCATION 's3://analytics-bucket-us-east-1-test/x/'",
        "UNLOAD (SELECT 1) TO 's3://analytics-bucket-us-east-1-test/x/' WITH (format = 'PARQUET')",
        "INSERT INTO orders VALUES (1)",
    ],
)
def test_the_guard_refuses_other_regions_and_buckets(sql: str) -> None:
    with pytest.raises(QueryRefusedError):
        check_query(sql, region=REGION, bucket=BUCKET, database=DATABASE)
    with pytest.raises(QueryRefusedError):
        run_query(TARGET, sql)  # refused before any engine runs


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) FROM orders",
        f"SELECT * FROM {DATABASE}.orders WHERE region = 'us-east-1'",
        f"SELECT * FROM orders WHERE path LIKE 's3://{BUCKET}/processed/%'",
        "SELECT bus_east_1, status_west FROM orders",  # words that merely contain a region's parts
        "  -- the top orders\n  WITH t AS (SELECT 1) SELECT * FROM t",
        "(SELECT 1)",
        "EXPLAIN SELECT 1",
    ],
)
def test_the_guard_lets_the_regions_own_names_through(sql: str) -> None:
    check_query(sql, region=REGION, bucket=BUCKET, database=DATABASE)


def athena_stub(target: RegionTarget) -> tuple[Any, Stubber]:
    client = boto3.client("athena", region_name=target.region)
    return client, Stubber(client)


def test_athena_runs_in_the_regions_workgroup_and_types_the_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    client, stub = athena_stub(TARGET)
    stub.add_response(
        "start_query_execution", {"QueryExecutionId": "q1"},
        {"QueryString": "SELECT id, amount, region FROM evolve", "WorkGroup": TARGET.workgroup,
         "QueryExecutionContext": {"Catalog": "AwsDataCatalog", "Database": DATABASE}},
    )  # fmt: skip
    running = {"QueryExecution": {"Status": {"State": "RUNNING"}}}
    stub.add_response("get_query_execution", running, {"QueryExecutionId": "q1"})
    stub.add_response(
        "get_query_execution",
        {"QueryExecution": {"Status": {"State": "SUCCEEDED"}, "StatementType": "DML",
                            "Statistics": {"DataScannedInBytes": 123}}},
        {"QueryExecutionId": "q1"},
    )  # fmt: skip
    columns = [{"Name": "id", "Type": "bigint"}, {"Name": "amount", "Type": "double"},
               {"Name": "region", "Type": "varchar"}]  # fmt: skip
    header = {"Data": [{"VarCharValue": "id"}, {"VarCharValue": "amount"}, {"VarCharValue": "region"}]}
    row = {"Data": [{"VarCharValue": "1"}, {"VarCharValue": "2.5"}, {}]}
    stub.add_response(
        "get_query_results",
        {"ResultSet": {"ResultSetMetadata": {"ColumnInfo": columns}, "Rows": [header, row]}},
        {"QueryExecutionId": "q1"},
    )
    monkeypatch.setattr(RegionTarget, "client", lambda self, service: client)
    with stub:
        result = run_athena(TARGET, "SELECT id, amount, region FROM evolve", sleep=lambda _: None)
    assert result.columns == ["id", "amount", "region"] and result.rows == [(1, 2.5, None)]
    assert result.details["bytes_scanned"] == 123 and TARGET.workgroup in result.engine


def test_athena_failure_and_timeout_are_reported_and_a_late_query_is_cancelled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, stub = athena_stub(TARGET)
    stub.add_response("start_query_execution", {"QueryExecutionId": "q2"}, None)
    failed = {"State": "FAILED", "StateChangeReason": "TABLE_NOT_FOUND: line 1:15: Table 'nope' does not exist"}
    stub.add_response("get_query_execution", {"QueryExecution": {"Status": failed}}, {"QueryExecutionId": "q2"})
    stub.add_response("start_query_execution", {"QueryExecutionId": "q3"}, None)
    running = {"QueryExecution": {"Status": {"State": "RUNNING"}}}
    stub.add_response("get_query_execution", running, {"QueryExecutionId": "q3"})
    stub.add_response("stop_query_execution", {}, {"QueryExecutionId": "q3"})
    monkeypatch.setattr(RegionTarget, "client", lambda self, service: client)
    ticks = iter([0.0, 999.0])
    with stub:
        with pytest.raises(AthenaQueryError, match="TABLE_NOT_FOUND"):
            run_athena(TARGET, "SELECT * FROM nope", sleep=lambda _: None)
        with pytest.raises(AthenaQueryError, match="cancelled"):
            run_athena(TARGET, "SELECT 1", timeout=10, sleep=lambda _: None, clock=lambda: next(ticks))
        stub.assert_no_pending_responses()


def test_results_print_as_a_table_or_json_rows() -> None:
    result = QueryResult(["day", "n", "note"], [(date(2026, 1, 2), 3, None), (date(2026, 1, 3), 4, "a\nb")], "test")
    assert json.loads(result.to_json()) == [{"day": "2026-01-02", "n": 3, "note": None},
                                            {"day": "2026-01-03", "n": 4, "note": "a\nb"}]  # fmt: skip
    assert json.loads(QueryResult(["x"], [(float("nan"),), (float("-inf"),)], "t").to_json()) == [
        {"x": "nan"}, {"x": "-inf"}]  # fmt: skip
    lines = result.table().splitlines()
    assert lines[0].split(" | ")[0].strip() == "day" and "NULL" in lines[2] and "a\\nb" in lines[3]
    assert lines[-1] == "(2 rows, test)"
