"""What ``tap query`` returns is what raw/ holds now: only SUCCEEDED, current versions are visible, whatever
crashes, arrives late, is deleted or is uploaded with versioning suspended."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from analytics_platform.analytics.local_engine import run_local
from analytics_platform.analytics.tables import dataset_stats
from analytics_platform.etl import handler as handler_module
from analytics_platform.etl import reconcile as reconcile_module
from analytics_platform.etl.events import DELETE_MARKER_CREATED, PERMANENTLY_DELETED, object_deleted_event
from analytics_platform.targeting.region_target import RegionTarget
from tests.functional.conftest import BUCKET, DATABASE, REGION, TABLE, FakeContext, Platform, next_sequencer

TARGET = RegionTarget(REGION, BUCKET, TABLE, DATABASE, "analytics-athena-us-east-1-test")
FIRST = b"id,total\n1,10\n2,20\n3,30\n"
CORRECTED = b"id,total\n1,11\n2,21\n"


def totals(dataset: str = "sales") -> tuple[int, int | None]:
    """``count(*)`` and ``sum(total)`` as the user's query sees them (no table yet: no rows)."""
    tables = {row[0] for row in run_local(TARGET, "SHOW TABLES").rows}
    if dataset not in tables:
        return 0, None
    (row,) = run_local(TARGET, f"SELECT count(*), sum(total) FROM {dataset}").rows
    return int(row[0]), row[1]


def visible(platform: Platform) -> set[str]:
    """Every file the table's location holds (what Athena would read)."""
    return {f"s3://{BUCKET}/{key}" for key in platform.keys("processed/")}


def succeeded_outputs(platform: Platform) -> set[str]:
    """The outputs the SUCCEEDED job records stand behind (consistent reads of every record)."""
    items = platform.table.scan(ConsistentRead=True)["Items"]
    return {str(i["output_uri"]) for i in items if i.get("job_status") == "SUCCEEDED"}


def sweep() -> dict[str, Any]:
    return dict(handler_module.lambda_handler({"source": "aws.events", "detail-type": "Scheduled Event"},
                                              FakeContext()))  # fmt: skip


def deleted_body(platform: Platform, key: str, version: str | None, kind: str) -> str:
    event = object_deleted_event(BUCKET, key, version_id=version, deletion_type=kind, region=REGION,
                                 sequencer=next_sequencer())  # fmt: skip
    return json.dumps(event)


class Killed(Exception):
    """The function was killed: from this call on, nothing reaches AWS any more."""


class Faults:
    """Kills the worker at its n-th AWS call (S3 and DynamoDB), through botocore's event hooks."""

    def __init__(self) -> None:
        self.calls = 0
        self.kill_at = 0
        self.dead = False

    def hook(self, **_: Any) -> None:
        if not self.kill_at:
            return
        self.calls += 1
        if self.dead or self.calls == self.kill_at:
            self.dead = True
            raise Killed(f"killed at AWS call {self.kill_at}")

    @contextmanager
    def armed(self, kill_at: int) -> Iterator[Faults]:
        self.calls, self.kill_at, self.dead = 0, kill_at, False
        try:
            yield self
        finally:
            self.kill_at, self.dead = 0, False


@pytest.fixture
def faults(platform: Platform) -> Faults:
    runtime = handler_module.get_runtime()
    injector = Faults()
    for client in (runtime.s3, runtime.table.meta.client):
        client.meta.events.register("before-call.*.*", injector.hook)
    return injector


def test_a_lost_final_write_leaves_no_rows_and_a_corrected_reupload_counts_once(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the job's SUCCEEDED write is throttled on every delivery until the message is dead-lettered
    from botocore.exceptions import ClientError

    jobs = handler_module.get_worker().jobs
    throttled = ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "TransactWriteItems")
    monkeypatch.setattr(jobs, "succeed_current", lambda *args: (_ for _ in ()).throw(throttled))
    key, version = platform.upload("raw/sales/day.csv", FIRST)
    for receive in (1, 2, 3):
        platform.invoke(platform.sqs_event(platform.body_for(key, version), receive_count=receive, message_id="m"))
    assert platform.job(key, version)["job_status"] == "DEAD_LETTERED"
    # THEN none of its rows are visible, to the query nor to the table's location
    assert visible(platform) == set() and totals() == (0, None)
    # WHEN the corrected file is uploaded and succeeds
    monkeypatch.undo()
    _, job = platform.upload_and_process(key, CORRECTED)
    # THEN the query counts only the corrected rows, as tap datasets does
    assert job["job_status"] == "SUCCEEDED" and totals() == (2, 32)
    stats = dataset_stats(platform.table)["sales"]
    assert (stats.files, stats.rows) == (1, 2)


def test_a_kill_at_any_aws_call_never_shows_rows_without_a_succeeded_job(platform: Platform, faults: Faults) -> None:
    """Each key: version 1 succeeds; version 2 (the corrected file) is killed at its n-th AWS call, then delivered
    again; then the sweep reconciles. At every step the visible files are SUCCEEDED jobs' outputs, at most one
    per key; in the end exactly version 2's."""
    monkey = pytest.MonkeyPatch()
    monkey.setattr(reconcile_module, "PROMOTION_GRACE", reconcile_module.timedelta(0))
    expected_rows, expected_sum, kill_at = 0, 0, 1
    try:
        while True:
            key = f"raw/sales/k{kill_at}.csv"
            platform.upload_and_process(key, FIRST)
            key, version = platform.upload(key, CORRECTED)
            body = platform.body_for(key, version)
            with faults.armed(kill_at) as run:
                platform.invoke(platform.sqs_event(body, message_id=f"m{kill_at}"))
                fired = run.dead
            shown = visible(platform)
            assert shown <= succeeded_outputs(platform), f"killed at call {kill_at}: rows without a SUCCEEDED job"
            assert len([uri for uri in shown if f"/k{kill_at}-" in uri]) <= 1, f"killed at {kill_at}: doubled"
            # WHEN delivered again (a later receive of the same message) and reconciled
            platform.invoke(platform.sqs_event(body, receive_count=2, message_id=f"m{kill_at}"))
            sweep()
            assert platform.job(key, version)["job_status"] == "SUCCEEDED", f"killed at call {kill_at}"
            assert visible(platform) == succeeded_outputs(platform), f"killed at call {kill_at}"
            expected_rows, expected_sum = expected_rows + 2, expected_sum + 32
            assert totals() == (expected_rows, expected_sum), f"killed at call {kill_at}"
            if not fired:
                break  # the run made fewer calls than kill_at: every call has been a crash point
            kill_at += 1
    finally:
        monkey.undo()
    print(f"walked {kill_at} crash points")
    assert kill_at > 10  # the walk really went through the worker's calls


def test_a_delete_marker_takes_the_keys_rows_out_and_a_reupload_brings_them_back(platform: Platform) -> None:
    key, version = platform.upload("raw/sales/day.csv", FIRST)
    platform.invoke(platform.sqs_event(platform.body_for(key, version)))
    assert totals() == (3, 60)
    # WHEN the key is deleted (a delete marker) and the event is processed
    marker = platform.s3.delete_object(Bucket=BUCKET, Key=key)["VersionId"]
    response = platform.invoke(platform.sqs_event(deleted_body(platform, key, marker, DELETE_MARKER_CREATED)))
    # THEN its rows are gone, the job says why, and tap datasets agrees
    assert response["batchItemFailures"] == []
    assert totals() == (0, None) and visible(platform) == set()
    job = platform.job(key, version)
    assert job["job_status"] == "DELETED" and "delete marker created" in job["superseded_by"]
    assert "sales" not in dataset_stats(platform.table)
    # WHEN the key is uploaded again THEN it is processed and counted
    _, again = platform.upload_and_process(key, CORRECTED)
    assert again["job_status"] == "SUCCEEDED" and totals() == (2, 32)


def test_a_deletion_arriving_before_its_upload_still_wins(platform: Platform) -> None:
    key, version = platform.upload("raw/sales/day.csv", FIRST)
    upload_body = platform.body_for(key, version)
    marker = platform.s3.delete_object(Bucket=BUCKET, Key=key)["VersionId"]
    platform.invoke(platform.sqs_event(deleted_body(platform, key, marker, DELETE_MARKER_CREATED)))
    # WHEN the (earlier) upload's event arrives late
    platform.invoke(platform.sqs_event(upload_body))
    # THEN nothing is visible: the key is deleted in S3's order
    assert totals() == (0, None)
    assert platform.job(key, version)["job_status"] == "DELETED"


def test_deleting_the_current_version_for_good_reinstates_the_one_below(platform: Platform) -> None:
    key, first = platform.upload("raw/sales/day.csv", FIRST)
    platform.invoke(platform.sqs_event(platform.body_for(key, first)))
    _, second = platform.upload(key, CORRECTED)
    platform.invoke(platform.sqs_event(platform.body_for(key, second)))
    assert totals() == (2, 32) and platform.job(key, first)["job_status"] == "SUPERSEDED"
    # WHEN the current version is deleted for good: S3's current version is the first one again
    platform.s3.delete_object(Bucket=BUCKET, Key=key, VersionId=second)
    response = platform.invoke(platform.sqs_event(deleted_body(platform, key, second, PERMANENTLY_DELETED)))
    # THEN the first version's rows are back, its job SUCCEEDED again with the earlier ending in its history
    assert response["batchItemFailures"] == []
    assert totals() == (3, 60)
    assert platform.job(key, second)["job_status"] == "DELETED"
    reinstated = platform.job(key, first)
    assert reinstated["job_status"] == "SUCCEEDED" and reinstated["history"][-1]["status"] == "SUPERSEDED"
    # AND deleting a version that is not current changes nothing visible
    platform.invoke(platform.sqs_event(deleted_body(platform, key, "no-such-version", PERMANENTLY_DELETED)))
    assert totals() == (3, 60)


def test_a_version_deleted_for_good_before_its_job_ran_never_shows(platform: Platform) -> None:
    key, first = platform.upload("raw/sales/day.csv", FIRST)
    platform.invoke(platform.sqs_event(platform.body_for(key, first)))
    _, second = platform.upload(key, CORRECTED)
    second_body = platform.body_for(key, second)
    platform.s3.delete_object(Bucket=BUCKET, Key=key, VersionId=second)
    platform.invoke(platform.sqs_event(deleted_body(platform, key, second, PERMANENTLY_DELETED)))
    platform.invoke(platform.sqs_event(second_body))
    assert totals() == (3, 60)
    assert platform.job(key, second)["job_status"] == "FAILED"  # the version is gone: nothing to convert


def test_s3s_order_decides_not_last_modified(platform: Platform) -> None:
    """A multipart upload's LastModified is when it started; S3 orders it by when it completed (its sequencer)."""
    key, long_upload = platform.upload("raw/sales/day.csv", FIRST)
    _, small_put = platform.upload(key, CORRECTED)
    # GIVEN S3 made the long upload current last (its sequencer is the greater), whatever the timestamps say
    platform.sequencers[(key, long_upload)], platform.sequencers[(key, small_put)] = (
        platform.sequencers[(key, small_put)], platform.sequencers[(key, long_upload)],
    )  # fmt: skip
    platform.invoke(platform.sqs_event(platform.body_for(key, long_upload)))
    platform.invoke(platform.sqs_event(platform.body_for(key, small_put)))
    # THEN the long upload's rows are the ones visible
    assert totals() == (3, 60)
    assert platform.job(key, small_put)["job_status"] == "SUPERSEDED"


def test_with_versioning_suspended_a_reupload_is_a_new_job(platform: Platform) -> None:
    platform.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Suspended"})
    key = "raw/sales/day.csv"
    platform.upload_and_process(key, FIRST)
    assert totals() == (3, 60)
    # WHEN the key is overwritten (version "null" again)
    platform.upload_and_process(key, CORRECTED)
    # THEN it is processed, not ignored as a duplicate, and the old rows are retired
    assert totals() == (2, 32)
    statuses = sorted(
        i["job_status"] for i in platform.table.scan()["Items"] if i.get("input_key") == key and "job_status" in i
    )
    assert statuses == ["SUCCEEDED", "SUPERSEDED"]


def test_an_event_for_an_overwritten_null_version_ends_superseded(platform: Platform) -> None:
    platform.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Suspended"})
    key, version = platform.upload("raw/sales/day.csv", FIRST)
    etag = platform.s3.head_object(Bucket=BUCKET, Key=key)["ETag"].strip('"')
    stale = json.loads(platform.body_for(key, version))
    stale["detail"]["object"]["etag"] = etag
    platform.upload(key, CORRECTED)  # overwritten before the first event is processed
    platform.invoke(platform.sqs_event(json.dumps(stale)))
    items = [i for i in platform.table.scan()["Items"] if i.get("input_key") == key and "job_status" in i]
    assert [i["job_status"] for i in items] == ["SUPERSEDED"] and "overwritten" in items[0]["superseded_by"]
    assert visible(platform) == set()


def test_a_failed_current_version_takes_the_older_rows_out(platform: Platform) -> None:
    key = "raw/sales/day.csv"
    platform.upload_and_process(key, FIRST)
    _, job = platform.upload_and_process(key, b"id,total\n1,2\n5,6,7,8\n")  # malformed: FAILED
    assert job["job_status"] == "FAILED"
    # THEN the key shows no rows: its current content is the failed file (the job says why)
    assert totals() == (0, None)


def test_the_reconciliation_retires_an_orphan_and_counts_it(platform: Platform) -> None:
    _, job = platform.upload_and_process("raw/sales/day.csv", FIRST)
    output = str(job["output_uri"]).split(f"s3://{BUCKET}/", 1)[1]
    body = platform.s3.get_object(Bucket=BUCKET, Key=output)["Body"].read()
    stray = output.replace("day-", "stray-")
    platform.s3.put_object(Bucket=BUCKET, Key=stray, Body=body, Metadata={"job-id": "0" * 32})
    assert totals() == (6, 120)
    report = sweep()
    assert report["orphans"] == 1 and totals() == (3, 60)


def test_job_state_events_are_published_on_the_regions_default_bus(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    monkeypatch.setenv("EVENT_BUS_NAME", "default")
    handler_module.get_runtime.cache_clear()
    sqs, events = platform.sqs, boto3.client("events", region_name=REGION)
    sink = sqs.create_queue(QueueName="job-events")["QueueUrl"]
    sink_arn = sqs.get_queue_attributes(QueueUrl=sink, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="jobs", EventPattern=json.dumps({"source": ["tap.etl"],
                                                          "detail-type": ["ETL Job State Change"]}))  # fmt: skip
    events.put_targets(Rule="jobs", Targets=[{"Id": "q", "Arn": sink_arn}])
    key = "raw/sales/day.csv"
    platform.upload_and_process(key, FIRST)
    platform.upload_and_process(key, CORRECTED)
    received = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=sink, MaxNumberOfMessages=10)["Messages"]]
    statuses = sorted((e["detail"]["status"], e["detail"]["rows_out"]) for e in received)
    assert statuses == [("SUCCEEDED", 2), ("SUCCEEDED", 3), ("SUPERSEDED", 3)]
    assert all(e["region"] == REGION and e["detail"]["input_key"] == key for e in received)
