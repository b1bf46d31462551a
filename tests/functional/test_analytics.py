"""Catalog, schema evolution, dataset contracts and "latest version wins", through the real handler (moto)."""

from __future__ import annotations

import io
import json
import threading
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest

from analytics_platform.etl import handler as handler_module
from analytics_platform.etl.catalog import DatasetCatalog, evolve
from analytics_platform.etl.contracts import contracts_to_json, parse_contract
from analytics_platform.etl.exceptions import SchemaConflictError
from tests.functional.conftest import BUCKET, DATABASE, REGION, Platform


def glue_columns(dataset: str) -> dict[str, str]:
    table = boto3.client("glue", region_name=REGION).get_table(DatabaseName=DATABASE, Name=dataset)["Table"]
    return {c["Name"]: c["Type"] for c in table["StorageDescriptor"]["Columns"]}


def parquet_rows(platform: Platform, uri: str) -> list[dict[str, Any]]:
    key = uri.split("/", 3)[3]
    body = platform.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return pq.read_table(io.BytesIO(body)).to_pylist()


def test_first_file_creates_the_table_with_partition_projection(platform: Platform) -> None:
    _, job = platform.upload_and_process("raw/orders/a.csv", b"id,amount,note\n1,2.5,x\n2,3.0,y\n")
    assert job["job_status"] == "SUCCEEDED"
    table = boto3.client("glue", region_name=REGION).get_table(DatabaseName=DATABASE, Name="orders")["Table"]
    assert glue_columns("orders") == {"id": "bigint", "amount": "double", "note": "string"}
    assert table["PartitionKeys"] == [{"Name": "ingest_date", "Type": "string"}]
    assert table["StorageDescriptor"]["Location"] == f"s3://{BUCKET}/processed/orders/"
    parameters = table["Parameters"]
    assert parameters["projection.enabled"] == "true" and parameters["projection.ingest_date.type"] == "date"
    assert parameters["storage.location.template"] == f"s3://{BUCKET}/processed/orders/ingest_date=${{ingest_date}}"


def test_new_columns_are_added_and_types_widen(platform: Platform) -> None:
    platform.upload_and_process("raw/evolve/a.csv", b"id,amount\n1,2\n2,3\n")
    assert glue_columns("evolve") == {"id": "bigint", "amount": "bigint"}
    # a later file adds a column and has fractions in amount: the table widens
    _, job = platform.upload_and_process("raw/evolve/b.csv", b"id,amount,region\n3,2.5,eu\n")
    assert job["job_status"] == "SUCCEEDED"
    assert glue_columns("evolve") == {"id": "bigint", "amount": "double", "region": "string"}
    # a file with whole amounts again is written as double, to agree with the table
    _, job = platform.upload_and_process("raw/evolve/c.csv", b"id,amount\n4,7\n")
    assert job["job_status"] == "SUCCEEDED" and job["output_schema"] == ["id:BIGINT", "amount:DOUBLE"]
    assert parquet_rows(platform, job["output_uri"]) == [{"id": 4, "amount": 7.0}]


def test_text_to_integer_fails_naming_the_column_and_both_types(platform: Platform) -> None:
    platform.upload_and_process("raw/codes/a.csv", b"sku,qty\nA1,1\nB2,2\n")
    _, job = platform.upload_and_process("raw/codes/b.csv", b"sku,qty\n123,1\n456,2\n")
    assert job["job_status"] == "FAILED" and job["error_type"] == "SchemaConflictError"
    assert "'sku'" in job["error_message"] and "string" in job["error_message"] and "integer" in job["error_message"]
    assert platform.keys("processed/codes/") == [platform.keys("processed/codes/")[0]]  # only the first file's
    assert glue_columns("codes") == {"sku": "string", "qty": "bigint"}


def test_evolution_policy_rules() -> None:
    widened = evolve([("a", "integer"), ("d", "date")], [("a", "DOUBLE"), ("d", "TIMESTAMP"), ("n", "VARCHAR")])
    assert widened.columns == [("a", "double"), ("d", "timestamp"), ("n", "string")] and not widened.casts
    narrower = evolve([("a", "double"), ("t", "string")], [("a", "BIGINT"), ("t", "VARCHAR")])
    assert narrower.casts == {"a": "double"} and not narrower.changed
    # text where the dataset's current files hold a number is refused (a contract's type makes such values rejects)
    conflicts = (("string", "BIGINT"), ("boolean", "BIGINT"), ("integer", "BOOLEAN"), ("integer", "VARCHAR"))
    for table, file_type in conflicts:
        with pytest.raises(SchemaConflictError, match="'c'"):
            evolve([("c", table)], [("c", file_type)])
    with pytest.raises(SchemaConflictError, match="partition key"):
        evolve([], [("ingest_date", "DATE")])


def test_concurrent_schema_changes_are_all_kept(platform: Platform) -> None:
    # GIVEN twenty jobs of one dataset counting different new columns at the same moment
    # (moto's in-process transactions are not atomic as DynamoDB's are: serialise each request)
    table = boto3.resource("dynamodb", region_name=REGION).Table("analytics-jobs-us-east-1-test")
    catalog = DatasetCatalog(table, boto3.client("glue", region_name=REGION), database=DATABASE, bucket=BUCKET,
                             prefix="processed/")  # fmt: skip
    barrier, lock = threading.Barrier(20), threading.Lock()

    def commit(n: int) -> None:
        barrier.wait()
        while True:
            update = catalog.counting_update("wide", [("id", "integer"), (f"c{n}", "string")], +1)
            try:
                with lock:
                    table.meta.client.transact_write_items(TransactItems=[update])
            except table.meta.client.exceptions.TransactionCanceledException:
                continue  # another job's count came first: read again
            break
        catalog.publish("wide")

    threads = [threading.Thread(target=commit, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # THEN no update is lost, in the schema item and in the Glue table
    columns, version = catalog.schema("wide")
    assert {name for name, _ in columns} == {"id", *(f"c{n}" for n in range(20))}
    assert catalog.read("wide").counts["integer:id"] == 20
    assert set(glue_columns("wide")) == {name for name, _ in columns}
    assert version == 20


CONTRACT = parse_contract("contracted", {"columns": {
    "order_id": {"type": "integer", "required": True, "not_null": True},
    "status": {"allowed": ["new", "shipped"]},
    "amount": {"type": "double", "min": 0},
}})  # fmt: skip


@pytest.fixture
def contracted(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATASET_CONTRACTS", contracts_to_json({"contracted": CONTRACT}))
    monkeypatch.setenv("MAX_REJECT_RATIO", "0.5")
    handler_module.get_runtime.cache_clear()


@pytest.mark.usefixtures("contracted")
def test_contract_violations_quarantine_exactly_the_bad_rows_with_their_rule(platform: Platform) -> None:
    data = b"order_id,status,amount\n1,new,10\n2,bogus,5\nx,new,1\n4,shipped,-3\n5,new,2\n,new,7\n7,new,8\n8,new,9\n"
    _, job = platform.upload_and_process("raw/contracted/a.csv", data)
    assert job["job_status"] == "SUCCEEDED" and job["rows_out"] == 4 and job["rows_rejected"] == 4
    assert sorted(r["order_id"] for r in parquet_rows(platform, job["output_uri"])) == [1, 5, 7, 8]
    key = job["quarantine_uri"].split("/", 3)[3]
    lines = [json.loads(line) for line in platform.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().splitlines()]
    rules = sorted(line["error"].split(": ", 2)[1] for line in lines)
    assert rules == ["allowed", "min", "not_null", "type"]
    assert glue_columns("contracted") == {"order_id": "bigint", "status": "string", "amount": "double"}


@pytest.mark.usefixtures("contracted")
def test_a_file_missing_a_required_column_fails_clearly(platform: Platform) -> None:
    _, job = platform.upload_and_process("raw/contracted/b.csv", b"status,amount\nnew,1\n")
    assert job["job_status"] == "FAILED" and job["error_type"] == "ContractViolationError"
    assert "order_id" in job["error_message"]
    assert platform.keys("processed/contracted/") == []


@pytest.mark.usefixtures("contracted")
def test_contract_rejects_count_against_the_reject_ratio(platform: Platform) -> None:
    _, job = platform.upload_and_process("raw/contracted/c.csv", b"order_id,status,amount\n1,bad,1\n2,bad,2\n3,new,1\n")
    assert job["job_status"] == "FAILED" and job["error_type"] == "RejectShareExceededError"


def test_a_corrected_reupload_replaces_the_old_version(platform: Platform) -> None:
    _, first = platform.upload_and_process("raw/fix/data.csv", b"id,v\n1,a\n2,b\n3,c\n")
    _, second = platform.upload_and_process("raw/fix/data.csv", b"id,v\n1,a\n2,B\n")
    assert second["job_status"] == "SUCCEEDED"
    first_now = platform.table.get_item(Key={"job_id": first["job_id"]}, ConsistentRead=True)["Item"]
    assert first_now["job_status"] == "SUPERSEDED" and first_now["superseded_by"] == second["job_id"]
    assert platform.keys("processed/fix/") == [second["output_uri"].split("/", 3)[3]]
    # the retired Parquet is still recoverable (versioning)
    versions = platform.s3.list_object_versions(Bucket=BUCKET, Prefix=first["output_uri"].split("/", 3)[3])
    assert versions.get("Versions") and versions.get("DeleteMarkers")


def test_versions_completing_out_of_order_leave_only_the_newest(platform: Platform) -> None:
    # GIVEN two versions of a key whose events arrive newest first
    old_key, old_version = platform.upload("raw/ooo/data.csv", b"id\n1\n2\n3\n")
    new_key, new_version = platform.upload("raw/ooo/data.csv", b"id\n1\n")
    platform.invoke(platform.sqs_event(platform.body_for(new_key, new_version)))
    platform.invoke(platform.sqs_event(platform.body_for(old_key, old_version)))
    newest, oldest = platform.job(new_key, new_version), platform.job(old_key, old_version)
    # THEN the newest stays, the older one retired itself without ever being visible
    assert newest["job_status"] == "SUCCEEDED" and oldest["job_status"] == "SUPERSEDED"
    assert oldest["superseded_by"] == newest["job_id"]
    assert platform.keys("processed/ooo/") == [newest["output_uri"].split("/", 3)[3]]
    # AND a redelivery of either changes nothing
    platform.invoke(platform.sqs_event(platform.body_for(old_key, old_version)))
    assert platform.job(old_key, old_version)["job_status"] == "SUPERSEDED"
    assert platform.keys("processed/ooo/") == [newest["output_uri"].split("/", 3)[3]]


def test_a_newer_version_taking_over_before_the_final_write_retires_the_older(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the older version's job, which a newer version overtakes between its pointer step and its final write
    old_key, old_version = platform.upload("raw/race/data.csv", b"id\n1\n2\n")
    new_key, new_version = platform.upload("raw/race/data.csv", b"id\n9\n")
    jobs = handler_module.get_worker().jobs
    original = jobs.succeed_current
    overtaken: list[bool] = []

    def newer_wins_meanwhile(*args: Any) -> str:
        if not overtaken:
            overtaken.append(True)
            platform.invoke(platform.sqs_event(platform.body_for(new_key, new_version)))
        return original(*args)

    monkeypatch.setattr(jobs, "succeed_current", newer_wins_meanwhile)
    platform.invoke(platform.sqs_event(platform.body_for(old_key, old_version)))
    newest, oldest = platform.job(new_key, new_version), platform.job(old_key, old_version)
    assert newest["job_status"] == "SUCCEEDED" and oldest["job_status"] == "SUPERSEDED"
    assert platform.keys("processed/race/") == [newest["output_uri"].split("/", 3)[3]]
