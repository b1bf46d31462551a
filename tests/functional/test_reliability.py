"""Issue 9 on the worker: every upload ends in exactly one truthful terminal state, under AWS's semantics.

Real handler, real DuckDB, moto S3 / DynamoDB / SQS in process. Each test names the defect it pins.
"""

from __future__ import annotations

import errno
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from analytics_platform.etl import handler as handler_module
from analytics_platform.etl import worker as worker_module
from analytics_platform.etl.events import ObjectRef, encode_key, object_created_event
from analytics_platform.etl.exceptions import NotStartedError, TimeBudgetExceededError, TransientError
from analytics_platform.etl.jobs import delivery_owner
from analytics_platform.etl.worker import Budget

from .conftest import BUCKET, REGION, FakeContext, Platform

GOOD_CSV = b"id,name\n1,Ann\n2,Bo\n3,Cy\n"


def failed_ids(response: dict[str, Any]) -> set[str]:
    return {item["itemIdentifier"] for item in response["batchItemFailures"]}


def take_lease(platform: Platform, key: str, version: str, message_id: str, *, seconds: int) -> ObjectRef:
    """Leave the job RUNNING under a delivery of ``message_id`` with a lease ending ``seconds`` from now."""
    worker = handler_module.get_worker()
    ref = worker.parse(platform.body_for(key, version))
    now = datetime.now(UTC)
    worker.jobs.ensure(ref, "sales", now)
    owner = delivery_owner(message_id, 1)
    worker.jobs.claim(ref.job_id, owner, now, lease_expires_at=int(now.timestamp()) + seconds, receive_count=1)
    return ref


# --- 1. orphaned RUNNING jobs ---------------------------------------------------------------------------------
def test_redelivery_of_the_same_message_takes_its_own_live_lease_back(platform: Platform) -> None:
    # GIVEN an invocation that took the job and was killed; its lease is still live
    key, version = platform.upload("raw/sales/own.csv", GOOD_CSV)
    take_lease(platform, key, version, "message-1", seconds=600)
    # WHEN the same message comes back
    response = platform.invoke(
        platform.sqs_event(platform.body_for(key, version), message_id="message-1", receive_count=2)
    )
    # THEN it takes its lease back and finishes the job
    assert response == {"batchItemFailures": []}
    assert platform.job(key, version)["job_status"] == "SUCCEEDED"


def test_another_deliverys_live_lease_means_retry_later_never_acknowledge(platform: Platform) -> None:
    # GIVEN a job RUNNING under another delivery whose lease ends in 120 s
    key, version = platform.upload("raw/sales/busy.csv", GOOD_CSV)
    take_lease(platform, key, version, "message-1", seconds=120)
    event = platform.sqs_event(platform.body_for(key, version))
    # WHEN a second message for the same object version arrives
    response = platform.invoke(event)
    # THEN its record fails (SQS keeps the message), and it stays hidden until the lease has run out
    assert failed_ids(response) == {event["Records"][0]["messageId"]}
    assert platform.job(key, version)["job_status"] == "RUNNING"
    hidden = platform.sqs.receive_message(QueueUrl=platform.queue_url, VisibilityTimeout=0)
    assert "Messages" not in hidden


def test_a_job_orphaned_by_a_crash_is_finished_by_the_next_delivery(platform: Platform) -> None:
    # GIVEN the owner crashed: its lease ran out, no message of its own is left
    key, version = platform.upload("raw/sales/orphan2.csv", GOOD_CSV)
    take_lease(platform, key, version, "message-1", seconds=-1)
    # WHEN the other delivery comes back
    response = platform.invoke(platform.sqs_event(platform.body_for(key, version), receive_count=2))
    # THEN it takes the job over and it ends SUCCEEDED with both attempts counted
    assert response == {"batchItemFailures": []}
    job = platform.job(key, version)
    assert job["job_status"] == "SUCCEEDED" and job["attempts"] == 2


# --- 2 and 3. odd keys, encoded as S3 sends them ---------------------------------------------------------------
ODD_NAMES = [
    "Q1 report é.csv", "a b.csv", "a+b.csv", "50%41off.csv", "100%.csv", "k=v.csv", "12:30.csv", "no#tag.csv",
    "what?.csv", "日本語.csv", "chart 📈.csv", "tab\there.csv", "ctrl\x01char.csv", "quote'\"s.csv",
]  # fmt: skip


@pytest.mark.parametrize("name", ODD_NAMES)
def test_any_key_is_fetched_by_its_real_name_and_succeeds_on_the_first_attempt(platform: Platform, name: str) -> None:
    # GIVEN an upload under an odd name, announced with the key encoded as S3 encodes it
    key, version = platform.upload(f"raw/sales/{name}", GOOD_CSV)
    body = platform.body_for(key, version)
    assert json.loads(body)["detail"]["object"]["key"] == encode_key(key)
    # WHEN processed
    response = platform.invoke(platform.sqs_event(body))
    # THEN it succeeds at once, and the output's metadata names the source in ASCII
    assert response == {"batchItemFailures": []}
    job = platform.job(key, version)
    assert job["job_status"] == "SUCCEEDED" and job["attempts"] == 1 and job["input_key"] == key
    output_key = job["output_uri"].split(f"{BUCKET}/", 1)[1]
    metadata = platform.s3.head_object(Bucket=BUCKET, Key=output_key)["Metadata"]
    assert unquote(metadata["source-key"]) == key and metadata["source-key"].isascii()


def test_a_1024_byte_key_succeeds(platform: Platform) -> None:
    # GIVEN the longest key S3 accepts, non-ASCII included
    stem = "raw/sales/"
    name = "é" * ((1024 - len(stem) - len(".csv")) // 2)
    key = stem + name + ".csv"
    assert len(key.encode()) <= 1024
    key, version = platform.upload(key, GOOD_CSV)
    # WHEN processed THEN it succeeds and its output key stays within S3's limit
    assert platform.invoke(platform.sqs_event(platform.body_for(key, version))) == {"batchItemFailures": []}
    job = platform.job(key, version)
    assert job["job_status"] == "SUCCEEDED"
    assert len(job["output_uri"].split(f"{BUCKET}/", 1)[1].encode()) <= 1024


def test_keys_are_decoded_as_form_encoding_always(platform: Platform) -> None:
    # GIVEN AWS's wire form of "a b.csv" is "a+b.csv", and of "50%41off.csv" is "50%2541off.csv"
    spaced, version = platform.upload("raw/sales/a b.csv", GOOD_CSV)
    percent, percent_version = platform.upload("raw/sales/50%41off.csv", GOOD_CSV)
    wire = {"raw/sales/a+b.csv": (spaced, version), "raw/sales/50%2541off.csv": (percent, percent_version)}
    for wire_key, (key, key_version) in wire.items():
        event = object_created_event(BUCKET, "placeholder", version_id=key_version, size=len(GOOD_CSV), region=REGION)
        event["detail"]["object"]["key"] = wire_key  # type: ignore[index]
        # WHEN delivered THEN the object under the decoded name is processed
        assert platform.invoke(platform.sqs_event(json.dumps(event))) == {"batchItemFailures": []}
        assert platform.job(key, key_version)["job_status"] == "SUCCEEDED"


# --- 4. a version deleted before processing -------------------------------------------------------------------
def test_a_deleted_version_fails_on_the_first_attempt(platform: Platform) -> None:
    # GIVEN an upload whose version is deleted before the worker gets to it
    key, version = platform.upload("raw/sales/gone.csv", GOOD_CSV)
    body = platform.body_for(key, version)
    platform.s3.delete_object(Bucket=BUCKET, Key=key, VersionId=version)
    # WHEN processed THEN the job ends FAILED at once with the reason, and the message is acknowledged
    assert platform.invoke(platform.sqs_event(body)) == {"batchItemFailures": []}
    job = platform.job(key, version)
    assert job["job_status"] == "FAILED" and job["attempts"] == 1
    assert job["error_type"] == "MissingObjectError" and "no longer exists" in job["error_message"]


# --- 6. time budget -------------------------------------------------------------------------------------------
def test_a_file_that_cannot_finish_in_time_is_handed_back_and_its_batch_mate_succeeds(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a batch of a file the transform cannot finish before the deadline, and a good one
    real_convert = worker_module.convert_file

    def convert(path: Path, output: Path, **kwargs: Any) -> Any:
        if "slow" in str(kwargs.get("name")):
            raise TimeBudgetExceededError("stopped after 200 s at 40% done", elapsed_seconds=200,
                                          estimated_total_seconds=500)  # fmt: skip
        return real_convert(path, output, **kwargs)

    monkeypatch.setattr(worker_module, "convert_file", convert)
    slow, slow_version = platform.upload("raw/sales/slow.csv", GOOD_CSV)
    good, good_version = platform.upload("raw/sales/fine.csv", GOOD_CSV)
    event = platform.sqs_event(platform.body_for(slow, slow_version), platform.body_for(good, good_version))
    # WHEN processed
    response = platform.invoke(event)
    # THEN only the slow record fails; its job waits for a retry with a reason that says what to change
    assert failed_ids(response) == {event["Records"][0]["messageId"]}
    job = platform.job(slow, slow_version)
    assert job["job_status"] == "PENDING"
    assert "about 500 s" in job["error_message"] and "raise lambda_timeout_seconds" in job["error_message"]
    assert platform.job(good, good_version)["job_status"] == "SUCCEEDED"
    # WHEN the last delivery runs out of time too THEN the job is DEAD_LETTERED with that reason
    last = platform.invoke(platform.sqs_event(platform.body_for(slow, slow_version), receive_count=3))
    assert len(last["batchItemFailures"]) == 1
    final = platform.job(slow, slow_version)
    assert final["job_status"] == "DEAD_LETTERED" and "raise lambda_timeout_seconds" in final["error_message"]


def test_a_record_is_not_started_without_enough_time_and_goes_back_at_once(platform: Platform) -> None:
    # GIVEN an invocation with only 2 s left
    key, version = platform.upload("raw/sales/late.csv", GOOD_CSV)
    event = platform.sqs_event(platform.body_for(key, version))
    # WHEN the record's turn comes
    response = platform.invoke(event, remaining_ms=2_000)
    # THEN it is not claimed, fails, and is visible again at once for another invocation
    assert len(response["batchItemFailures"]) == 1
    assert platform.job(key, version) == {}
    assert len(platform.sqs.receive_message(QueueUrl=platform.queue_url).get("Messages", [])) == 1


# --- 7. retries exhausted -------------------------------------------------------------------------------------
def sweep_event() -> dict[str, Any]:
    return {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {"task": "dead-letter-sweep"}}


def test_the_sweep_marks_every_dead_lettered_message_and_leaves_the_dlq_as_it_was(platform: Platform) -> None:
    # GIVEN three messages in the DLQ: a job killed on its last attempt (RUNNING, lease run out), an upload
    # whose job was never recorded (throttled to death), and a job that already SUCCEEDED
    killed, killed_version = platform.upload("raw/sales/killed.csv", GOOD_CSV)
    take_lease(platform, killed, killed_version, "message-9", seconds=-5)
    never, never_version = platform.upload("raw/sales/never.csv", GOOD_CSV)
    done, done_version = platform.upload("raw/sales/done.csv", GOOD_CSV)
    platform.invoke(platform.sqs_event(platform.body_for(done, done_version)))
    for key, version in ((killed, killed_version), (never, never_version), (done, done_version)):
        platform.sqs.send_message(QueueUrl=platform.dlq_url, MessageBody=platform.body_for(key, version))
    platform.sqs.send_message(QueueUrl=platform.dlq_url, MessageBody="not an event")
    # WHEN the scheduled sweep runs
    report = handler_module.lambda_handler(sweep_event(), FakeContext())
    # THEN the two unfinished jobs are DEAD_LETTERED, the finished one is untouched
    assert report == {"messages": 4, "marked": 2, "malformed": 1, "promoted": 0, "retired": 0, "orphans": 0}
    assert platform.job(killed, killed_version)["job_status"] == "DEAD_LETTERED"
    assert platform.job(never, never_version)["job_status"] == "DEAD_LETTERED"
    assert platform.job(done, done_version)["job_status"] == "SUCCEEDED"
    # AND every message is still in the DLQ, visible
    attributes = platform.sqs.get_queue_attributes(QueueUrl=platform.dlq_url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "4"
    # AND a second sweep changes nothing
    assert handler_module.lambda_handler(sweep_event(), FakeContext())["marked"] == 0


def test_the_sweep_leaves_a_live_lease_alone(platform: Platform) -> None:
    # GIVEN a DLQ message whose job is RUNNING under a live lease (a duplicate delivery still at work)
    key, version = platform.upload("raw/sales/alive.csv", GOOD_CSV)
    take_lease(platform, key, version, "message-1", seconds=300)
    platform.sqs.send_message(QueueUrl=platform.dlq_url, MessageBody=platform.body_for(key, version))
    # WHEN swept THEN it stays RUNNING
    assert handler_module.lambda_handler(sweep_event(), FakeContext())["marked"] == 0
    assert platform.job(key, version)["job_status"] == "RUNNING"


def test_a_dead_lettered_job_is_processed_again_when_its_message_is_redriven(platform: Platform) -> None:
    # GIVEN a job dead-lettered by the sweep
    key, version = platform.upload("raw/sales/redriven.csv", GOOD_CSV)
    platform.sqs.send_message(QueueUrl=platform.dlq_url, MessageBody=platform.body_for(key, version))
    handler_module.lambda_handler(sweep_event(), FakeContext())
    assert platform.job(key, version)["job_status"] == "DEAD_LETTERED"
    # WHEN its message is delivered again THEN the job runs and ends SUCCEEDED
    assert platform.invoke(platform.sqs_event(platform.body_for(key, version))) == {"batchItemFailures": []}
    assert platform.job(key, version)["job_status"] == "SUCCEEDED"


# --- 8. disk --------------------------------------------------------------------------------------------------
def test_a_file_larger_than_the_disk_allows_fails_with_what_to_change(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a function whose /tmp has 10 bytes free
    monkeypatch.setattr(worker_module.shutil, "disk_usage", lambda _: type("U", (), {"free": 10})())
    key, version = platform.upload("raw/sales/big.csv", GOOD_CSV)
    # WHEN processed THEN FAILED, naming the setting to raise, and the upload untouched
    assert platform.invoke(platform.sqs_event(platform.body_for(key, version))) == {"batchItemFailures": []}
    job = platform.job(key, version)
    assert job["job_status"] == "FAILED" and "ephemeral_storage_mb" in job["error_message"]
    assert platform.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == GOOD_CSV


def test_a_full_disk_during_download_is_its_own_transient_error(platform: Platform) -> None:
    # GIVEN the disk fills up while the object downloads
    class FullDisk:
        def __init__(self, real: Any) -> None:
            self._real = real

        def download_file(self, *args: Any, **kwargs: Any) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name: str) -> Any:
            return getattr(self._real, name)

    worker = handler_module.get_worker()
    worker._store._s3 = FullDisk(worker._store._s3)
    key, version = platform.upload("raw/sales/full.csv", GOOD_CSV)
    # WHEN processed THEN the record is retried with a clear reason (not a "corrupt gzip")
    assert len(platform.invoke(platform.sqs_event(platform.body_for(key, version)))["batchItemFailures"]) == 1
    job = platform.job(key, version)
    assert job["job_status"] == "PENDING" and job["error_type"] == "DiskFullError"
    assert "ephemeral storage is full" in job["error_message"]


def test_a_record_that_was_acknowledged_always_has_a_terminal_job(platform: Platform) -> None:
    # GIVEN a mixed batch: good, bad, deleted, duplicate of the good one
    good, good_version = platform.upload("raw/sales/g.csv", GOOD_CSV)
    bad, bad_version = platform.upload("raw/sales/b.json", b"[1, 2")
    gone, gone_version = platform.upload("raw/sales/x.csv", GOOD_CSV)
    platform.s3.delete_object(Bucket=BUCKET, Key=gone, VersionId=gone_version)
    bodies = [platform.body_for(k, v, len(GOOD_CSV)) for k, v in
              ((good, good_version), (bad, bad_version), (gone, gone_version), (good, good_version))]  # fmt: skip
    event = platform.sqs_event(*bodies)
    # WHEN processed
    response = platform.invoke(event)
    # THEN every acknowledged record's job is terminal
    acknowledged = [r for r in event["Records"] if r["messageId"] not in failed_ids(response)]
    for record in acknowledged:
        ref = handler_module.get_worker().parse(record["body"])
        assert platform.job(ref.key, ref.version_id)["job_status"] in {
            "SUCCEEDED",
            "FAILED",
            "DEAD_LETTERED",
            "SUPERSEDED",
        }
    assert len(acknowledged) == 4


def test_lease_ends_before_the_message_can_reappear() -> None:
    # GIVEN the default configuration
    from analytics_platform.etl.jobs import lease_expiry
    from analytics_platform.infra.config import load_config

    config = load_config(None, environ={})
    received = datetime(2026, 1, 1, tzinfo=UTC)
    # WHEN an invocation starts right at the receive and runs to its timeout
    deadline = received + timedelta(seconds=config.lambda_timeout_seconds)
    # THEN its lease has run out no later than SQS shows the message again
    assert lease_expiry(deadline) <= received.timestamp() + config.queue_visibility_timeout_seconds


def test_tap_jobs_lists_dead_lettered_jobs(platform: Platform) -> None:
    from analytics_platform.analytics.job_listing import format_rows, query_jobs
    from analytics_platform.cli import build_parser

    # GIVEN a job whose message reached the DLQ
    key, version = platform.upload("raw/sales/listed.csv", GOOD_CSV)
    platform.sqs.send_message(QueueUrl=platform.dlq_url, MessageBody=platform.body_for(key, version))
    handler_module.lambda_handler(sweep_event(), FakeContext())
    # WHEN listed by status, as `tap jobs --region R --status DEAD_LETTERED` does
    assert build_parser().parse_args(["jobs", "--region", REGION, "--status", "DEAD_LETTERED"]).status
    items = query_jobs(platform.table, since=datetime.now(UTC) - timedelta(hours=1), status="DEAD_LETTERED")
    # THEN it is there, with its reason
    assert [item["input_key"] for item in items] == [key]
    assert "retries exhausted" in "\n".join(format_rows(items))


def test_an_earlier_delivery_still_running_cannot_write_over_the_newer_one(platform: Platform) -> None:
    # GIVEN delivery 1 of a message still running somewhere, and delivery 2 of the same message that took over
    key, version = platform.upload("raw/sales/twice.csv", GOOD_CSV)
    ref = take_lease(platform, key, version, "message-1", seconds=600)
    jobs = handler_module.get_worker().jobs
    now = datetime.now(UTC)
    jobs.claim(ref.job_id, delivery_owner("message-1", 2), now, lease_expires_at=int(now.timestamp()) + 600,
               receive_count=2)  # fmt: skip
    # WHEN delivery 1 hands the job back THEN nothing changes: delivery 2 owns it
    assert jobs.release(ref.job_id, delivery_owner("message-1", 1), TransientError("late"), now) is False
    record = jobs.get(ref.job_id) or {}
    assert (record["job_status"], record["job_owner"]) == ("RUNNING", delivery_owner("message-1", 2))


def test_a_lost_final_write_is_retried_never_acknowledged(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a job whose SUCCEEDED write loses its condition because another delivery handed it back meanwhile
    key, version = platform.upload("raw/sales/lost.csv", GOOD_CSV)
    jobs = handler_module.get_worker().jobs

    def handed_back_meanwhile(job_id: str, owner: str, *args: Any) -> bool:
        jobs._table.update_item(Key={"job_id": job_id}, UpdateExpression="SET job_status = :p",
                                ExpressionAttributeValues={":p": "PENDING"})  # fmt: skip
        return False

    # (a job's success is a transaction with its key's latest-version check)
    monkeypatch.setattr(jobs, "succeed_current", lambda *args: "lost" if not handed_back_meanwhile(*args[:2]) else "ok")
    event = platform.sqs_event(platform.body_for(key, version))
    # WHEN processed THEN the record fails (SQS keeps the message) since the job is not terminal
    assert failed_ids(platform.invoke(event)) == {event["Records"][0]["messageId"]}
    assert platform.job(key, version)["job_status"] == "PENDING"


def test_no_record_is_claimed_once_the_working_time_is_spent(platform: Platform) -> None:
    # GIVEN a 300 s function with 20 s left: its transfers stop 30 s before the deadline, so nothing can run
    key, version = platform.upload("raw/sales/tiny.csv", GOOD_CSV)
    worker = handler_module.get_worker()
    budget = Budget(deadline=time.monotonic() + 20, function_seconds=300)
    # WHEN its turn comes THEN it is not claimed (no delivery spent on it)
    with pytest.raises(NotStartedError):
        worker.process(worker.parse(platform.body_for(key, version)), owner="m/1", receive_count=3, budget=budget)
    assert platform.job(key, version) == {}
