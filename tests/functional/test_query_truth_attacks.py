"""Attacks on the query-truth invariant: each key shows exactly the rows of its current S3 version, if that
version's job SUCCEEDED, whatever order the events arrive in, whatever crashes."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from analytics_platform.etl import handler as handler_module
from analytics_platform.etl import reconcile as reconcile_module
from analytics_platform.etl.catalog import DatasetCatalog
from analytics_platform.etl.events import DELETE_MARKER_CREATED, PERMANENTLY_DELETED
from analytics_platform.etl.exceptions import TransientError
from analytics_platform.etl.worker import Budget
from analytics_platform.ops.retry import retry_jobs
from tests.functional.conftest import BUCKET, DATABASE, REGION, Platform
from tests.functional.test_query_truth import (
    CORRECTED,
    FIRST,
    Faults,
    deleted_body,
    succeeded_outputs,
    sweep,
    totals,
    visible,
)
from tests.functional.test_schema_healing import glue_types


@pytest.fixture(name="faults")
def faults_fixture(platform: Platform) -> Faults:
    injector, runtime = Faults(), handler_module.get_runtime()
    for client in (runtime.s3, runtime.table.meta.client):
        client.meta.events.register("before-call.*.*", injector.hook)
    return injector


MALFORMED = b"id,total\n1,2\n5,6,7,8\n"


def process(platform: Platform, body: str, **kwargs: object) -> dict[str, object]:
    return platform.invoke(platform.sqs_event(body, **kwargs))  # type: ignore[arg-type]


def upload_processed(platform: Platform, key: str, data: bytes) -> str:
    _, version = platform.upload(key, data)
    process(platform, platform.body_for(key, version))
    return version


def permanently(platform: Platform, key: str, version: str) -> str:
    """Delete one version for good; the event's body."""
    platform.s3.delete_object(Bucket=BUCKET, Key=key, VersionId=version)
    return deleted_body(platform, key, version, PERMANENTLY_DELETED)


def schema_counts(platform: Platform, dataset: str) -> dict[str, int]:
    return (
        DatasetCatalog(platform.table, None, database=DATABASE, bucket=BUCKET, prefix="processed/").read(dataset).counts
    )


def test_a_delete_marker_deleted_again_before_its_creation_event_ran_leaves_the_version(platform: Platform) -> None:
    key = "raw/sales/day.csv"
    upload_processed(platform, key, FIRST)
    marker = platform.s3.delete_object(Bucket=BUCKET, Key=key)["VersionId"]
    created = deleted_body(platform, key, marker, DELETE_MARKER_CREATED)
    removed = permanently(platform, key, marker)  # S3: the first version is current again
    # WHEN the marker's deletion is processed before its creation
    process(platform, removed)
    process(platform, created)
    # THEN the key shows its current version, as S3 lists it
    assert totals() == (3, 60)


def test_deleting_a_delete_marker_reprocesses_the_version_under_it(platform: Platform) -> None:
    key = "raw/sales/day.csv"
    version = upload_processed(platform, key, FIRST)
    marker = platform.s3.delete_object(Bucket=BUCKET, Key=key)["VersionId"]
    process(platform, deleted_body(platform, key, marker, DELETE_MARKER_CREATED))
    assert totals() == (0, None)
    process(platform, permanently(platform, key, marker))
    assert totals() == (3, 60) and platform.job(key, version)["job_status"] == "SUCCEEDED"
    assert visible(platform) == succeeded_outputs(platform)
    assert schema_counts(platform, "sales") == {"integer:id": 1, "integer:total": 1}


def test_a_reinstated_failed_version_deleted_in_turn_reinstates_the_one_below(platform: Platform) -> None:
    key = "raw/sales/day.csv"
    upload_processed(platform, key, FIRST)
    failed = upload_processed(platform, key, MALFORMED)
    third = upload_processed(platform, key, CORRECTED)
    assert totals() == (2, 32)
    process(platform, permanently(platform, key, third))  # the FAILED version is current again: no rows
    assert totals() == (0, None) and platform.job(key, failed)["job_status"] == "FAILED"
    # WHEN the failed version is deleted for good too THEN the first version is current, and shows
    process(platform, permanently(platform, key, failed))
    assert totals() == (3, 60)


def test_reinstatement_columns_are_counted_once_and_the_table_heals(platform: Platform) -> None:
    key = "raw/stock/a.csv"
    upload_processed(platform, key, b"sku,qty\nA,1\n")
    upload_processed(platform, "raw/stock/b.csv", b"sku,qty\nB,2\n")
    wide = upload_processed(platform, key, b"sku,qty,note\nA,1.5,x\n")
    assert glue_types("stock") == {"sku": "string", "qty": "double", "note": "string"}
    process(platform, permanently(platform, key, wide))
    assert glue_types("stock") == {"sku": "string", "qty": "bigint"}
    assert schema_counts(platform, "stock") == {"string:sku": 2, "integer:qty": 2}


@pytest.mark.parametrize("name", ["a b.csv", "a+b.csv", "été 100%41.csv", "x%2By.csv"])
def test_keys_that_need_encoding_go_through_deletion_and_reinstatement(platform: Platform, name: str) -> None:
    key = f"raw/sales/{name}"
    upload_processed(platform, key, FIRST)
    second = upload_processed(platform, key, CORRECTED)
    assert totals() == (2, 32)
    process(platform, permanently(platform, key, second))
    assert totals() == (3, 60)
    marker = platform.s3.delete_object(Bucket=BUCKET, Key=key)["VersionId"]
    process(platform, deleted_body(platform, key, marker, DELETE_MARKER_CREATED))
    assert totals() == (0, None) and visible(platform) == set()


def walk(platform: Platform, faults: Faults, scenario: Callable[[str], tuple[str, tuple[int, int | None]]]) -> int:
    """Kill the delivery of ``scenario``'s message at every AWS call in turn, deliver it again, sweep; check."""
    kill_at, expected_rows, expected_sum = 1, 0, 0
    with pytest.MonkeyPatch.context() as monkey:
        monkey.setattr(reconcile_module, "PROMOTION_GRACE", reconcile_module.timedelta(0))
        while True:
            body, (rows, total) = scenario(f"raw/sales/k{kill_at}.csv")
            with faults.armed(kill_at) as run:
                process(platform, body, message_id=f"m{kill_at}")
                fired = run.dead
            assert visible(platform) <= succeeded_outputs(platform), f"killed at call {kill_at}"
            process(platform, body, receive_count=2, message_id=f"m{kill_at}")
            sweep()
            expected_rows, expected_sum = expected_rows + rows, expected_sum + (total or 0)
            assert visible(platform) == succeeded_outputs(platform), f"killed at call {kill_at}"
            assert totals() == (expected_rows, expected_sum or None), f"killed at call {kill_at}"
            if not fired:
                return kill_at
            kill_at += 1


def test_a_kill_anywhere_in_a_reinstatement_ends_with_the_version_below(platform: Platform, faults: Faults) -> None:
    def scenario(key: str) -> tuple[str, tuple[int, int | None]]:
        upload_processed(platform, key, FIRST)
        second = upload_processed(platform, key, CORRECTED)
        return permanently(platform, key, second), (3, 60)

    keys = walk(platform, faults, scenario)
    assert keys > 10 and schema_counts(platform, "sales") == {"integer:id": keys, "integer:total": keys}


def test_a_kill_anywhere_in_a_delete_marker_takes_the_rows_out(platform: Platform, faults: Faults) -> None:
    def scenario(key: str) -> tuple[str, tuple[int, int | None]]:
        upload_processed(platform, key, FIRST)
        marker = platform.s3.delete_object(Bucket=BUCKET, Key=key)["VersionId"]
        return deleted_body(platform, key, marker, DELETE_MARKER_CREATED), (0, None)

    assert walk(platform, faults, scenario) > 3
    assert schema_counts(platform, "sales") == {}


def test_tap_jobs_retry_of_a_dead_lettered_reinstated_version_brings_its_rows_back(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "raw/sales/day.csv"
    first = upload_processed(platform, key, FIRST)
    second = upload_processed(platform, key, CORRECTED)
    store = handler_module.get_worker()._store
    download = store.download

    def flaky(ref: Any, *args: Any) -> None:
        if ref.reinstated:
            raise TransientError("throttled")
        download(ref, *args)

    monkeypatch.setattr(store, "download", flaky)
    body = permanently(platform, key, second)
    for receive in (1, 2, 3):  # the reinstated version's processing fails on every delivery of the deletion
        process(platform, body, receive_count=receive, message_id="d")
    assert platform.job(key, first)["job_status"] == "DEAD_LETTERED" and totals() == (0, None)
    monkeypatch.undo()
    # WHEN the operator retries the job (tap jobs retry): its upload's event is queued again and processed
    job_id = str(platform.job(key, first)["job_id"])
    retry_jobs(table=platform.table, s3=platform.s3, sqs=platform.sqs, region=REGION, bucket=BUCKET,
               queue_url=platform.queue_url, job_ids=[job_id], clock=lambda: datetime.now(UTC))  # fmt: skip
    (message,) = platform.sqs.receive_message(QueueUrl=platform.queue_url, MaxNumberOfMessages=10)["Messages"]
    process(platform, message["Body"])
    # THEN the key's current version shows
    assert platform.job(key, first)["job_status"] == "SUCCEEDED" and totals() == (3, 60)


def test_a_newer_version_dead_lettered_at_its_commit_shows_its_rows_once_redriven(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "raw/sales/day.csv"
    upload_processed(platform, key, FIRST)
    jobs = handler_module.get_worker().jobs
    throttled = ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "TransactWriteItems")
    monkeypatch.setattr(jobs, "succeed_current", lambda *args: (_ for _ in ()).throw(throttled))
    _, second = platform.upload(key, CORRECTED)
    for receive in (1, 2, 3):
        process(platform, platform.body_for(key, second), receive_count=receive, message_id="m")
    # THEN (as the README says) it took the key before its final write failed: the older rows are gone, none doubled
    assert platform.job(key, second)["job_status"] == "DEAD_LETTERED"
    assert totals() == (0, None)
    # WHEN its message is redriven THEN its rows appear
    monkeypatch.undo()
    process(platform, platform.body_for(key, second), receive_count=1, message_id="redriven")
    assert platform.job(key, second)["job_status"] == "SUCCEEDED" and totals() == (2, 32)


def test_every_retired_job_gets_its_state_event_whatever_the_crash(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVENT_BUS_NAME", "default")
    monkeypatch.setattr(reconcile_module, "PROMOTION_GRACE", reconcile_module.timedelta(0))
    handler_module.get_runtime.cache_clear()
    runtime, injector = handler_module.get_runtime(), Faults()
    for client in (runtime.s3, runtime.table.meta.client):
        client.meta.events.register("before-call.*.*", injector.hook)
    sqs, events = platform.sqs, boto3.client("events", region_name=REGION)
    sink = sqs.create_queue(QueueName="job-events")["QueueUrl"]
    events.put_rule(Name="jobs", EventPattern=json.dumps({"source": ["tap.etl"]}))
    events.put_targets(Rule="jobs", Targets=[{"Id": "q", "Arn": f"arn:aws:sqs:{REGION}:123456789012:job-events"}])
    seen: set[tuple[str, str]] = set()
    kill_at, missing = 1, []
    while True:
        key = f"raw/sales/k{kill_at}.csv"
        first = upload_processed(platform, key, FIRST)
        _, second = platform.upload(key, CORRECTED)
        body = platform.body_for(key, second)
        with injector.armed(kill_at) as run:
            process(platform, body, message_id=f"m{kill_at}")
            fired = run.dead
        process(platform, body, receive_count=2, message_id=f"m{kill_at}")
        sweep()
        while batch := sqs.receive_message(QueueUrl=sink, MaxNumberOfMessages=10).get("Messages"):
            seen |= {(json.loads(m["Body"])["detail"]["job_id"], json.loads(m["Body"])["detail"]["status"])
                     for m in batch}  # fmt: skip
            sqs.delete_message_batch(QueueUrl=sink, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                             for i, m in enumerate(batch)])  # fmt: skip
        for version in (first, second):
            job = platform.job(key, version)
            if (job["job_id"], job["job_status"]) not in seen:
                missing.append((kill_at, job["job_status"]))
        if not fired:
            break
        kill_at += 1
    assert missing == [], missing


@pytest.mark.parametrize("newer_first", [True, False])
def test_two_versions_of_a_key_finishing_at_once_leave_only_the_newer(
    platform: Platform, monkeypatch: pytest.MonkeyPatch, newer_first: bool
) -> None:
    worker = handler_module.get_worker()
    publisher = worker._publisher
    finish = publisher.finish
    barrier = threading.Barrier(2, timeout=60)

    def together(*args: Any) -> Any:
        barrier.wait()
        return finish(*args)

    monkeypatch.setattr(publisher, "finish", together)
    lock = threading.Lock()  # each request atomic, as AWS's are (moto's failed transaction restores whole tables)
    for client in (handler_module.get_runtime().s3, handler_module.get_runtime().table.meta.client):
        call = client._make_api_call

        def atomic(*args: Any, _call: Any = call) -> Any:
            with lock:
                return _call(*args)

        monkeypatch.setattr(client, "_make_api_call", atomic)
    for round_ in range(3):
        key = f"raw/sales/r{round_}.csv"
        refs = [worker.parse(platform.body_for(*platform.upload(key, data))) for data in (FIRST, CORRECTED)]
        order = refs[::-1] if newer_first else refs
        threads = [threading.Thread(target=worker.process, args=(ref,),
                                    kwargs={"owner": f"t{i}/1", "receive_count": 1,
                                            "budget": Budget.from_remaining(240_000)})
                   for i, ref in enumerate(order)]  # fmt: skip
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        states = [platform.job(key, r.version_id).get("job_status") for r in refs]
        assert visible(platform) == succeeded_outputs(platform), states
        assert totals() == (2 * (round_ + 1), 32 * (round_ + 1)), states
