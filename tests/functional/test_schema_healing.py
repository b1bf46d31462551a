"""The Glue table declares what the dataset's current files hold: it widens, narrows back, and refuses mixes."""

from __future__ import annotations

import boto3
import pytest

from analytics_platform.analytics.local_engine import run_local
from analytics_platform.etl import handler as handler_module
from analytics_platform.etl.contracts import contracts_to_json, parse_contract
from analytics_platform.etl.events import DELETE_MARKER_CREATED
from tests.functional.conftest import BUCKET, DATABASE, REGION, Platform
from tests.functional.test_query_truth import TARGET, deleted_body


def glue_types(dataset: str) -> dict[str, str]:
    table = boto3.client("glue", region_name=REGION).get_table(DatabaseName=DATABASE, Name=dataset)["Table"]
    return {c["Name"]: c["Type"] for c in table["StorageDescriptor"]["Columns"]}


def test_a_stray_text_value_fails_its_file_and_the_corrected_reupload_fits(platform: Platform) -> None:
    platform.upload_and_process("raw/stock/a.csv", b"sku,qty\nA,1\nB,2\n")
    _, bad = platform.upload_and_process("raw/stock/b.csv", b"sku,qty\nC,3\nD,lots\n")
    # THEN the stray file fails naming the column; the table and the other files are unchanged
    assert bad["job_status"] == "FAILED" and "'qty'" in bad["error_message"]
    assert glue_types("stock") == {"sku": "string", "qty": "bigint"}
    _, fixed = platform.upload_and_process("raw/stock/b.csv", b"sku,qty\nC,3\nD,4\n")
    assert fixed["job_status"] == "SUCCEEDED"
    assert run_local(TARGET, "SELECT sum(qty) FROM stock").rows == [(10,)]


def test_a_text_column_narrows_back_once_its_file_is_corrected(platform: Platform) -> None:
    # GIVEN the dataset's first file holds text in qty, so a numeric file cannot join it
    platform.upload_and_process("raw/stock/a.csv", b"sku,qty\nA,n/a\nB,2\n")
    assert glue_types("stock")["qty"] == "string"
    _, numeric = platform.upload_and_process("raw/stock/b.csv", b"sku,qty\nC,3\n")
    assert numeric["job_status"] == "FAILED"
    # WHEN the first file is corrected THEN the column narrows to a number and numeric files fit again
    _, corrected = platform.upload_and_process("raw/stock/a.csv", b"sku,qty\nA,1\nB,2\n")
    assert corrected["job_status"] == "SUCCEEDED" and glue_types("stock")["qty"] == "bigint"
    _, again = platform.upload_and_process("raw/stock/b.csv", b"sku,qty\nC,3\n")
    assert again["job_status"] == "SUCCEEDED"
    assert run_local(TARGET, "SELECT sum(qty) FROM stock").rows == [(6,)]


def test_deleting_the_file_that_widened_a_column_narrows_it_back(platform: Platform) -> None:
    platform.upload_and_process("raw/stock/a.csv", b"sku,qty\nA,1\n")
    key, version = platform.upload("raw/stock/b.csv", b"sku,qty,note\nB,2.5,x\n")
    platform.invoke(platform.sqs_event(platform.body_for(key, version)))
    assert glue_types("stock") == {"sku": "string", "qty": "double", "note": "string"}
    marker = platform.s3.delete_object(Bucket=BUCKET, Key=key)["VersionId"]
    platform.invoke(platform.sqs_event(deleted_body(platform, key, marker, DELETE_MARKER_CREATED)))
    # THEN the table declares what the remaining file holds: qty a whole number again, no note column
    assert glue_types("stock") == {"sku": "string", "qty": "bigint"}
    assert run_local(TARGET, "SELECT sku, qty FROM stock").rows == [("A", 1)]


def test_a_contracts_type_pins_a_column_so_a_stray_value_is_a_rejected_row(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    contract = parse_contract("stock", {"columns": {"qty": {"type": "integer"}}})
    monkeypatch.setenv("DATASET_CONTRACTS", contracts_to_json({"stock": contract}))
    monkeypatch.setenv("MAX_REJECT_RATIO", "0.5")
    handler_module.get_runtime.cache_clear()
    platform.upload_and_process("raw/stock/a.csv", b"sku,qty\nA,1\nB,2\n")
    _, job = platform.upload_and_process("raw/stock/b.csv", b"sku,qty\nC,3\nD,lots\nE,5\n")
    # THEN the stray value is a rejected row, the file succeeds, and the column stays a number
    assert (job["job_status"], job["rows_out"], job["rows_rejected"]) == ("SUCCEEDED", 2, 1), job
    assert glue_types("stock")["qty"] == "bigint"
    assert run_local(TARGET, "SELECT sum(qty) FROM stock").rows == [(11,)]
