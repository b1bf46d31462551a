"""Issue 10's recovery operations, ``tap redrive`` and ``tap jobs retry``, against moto with the real handler.

Messages travel through real (moto) SQS queues: the work queue redrives to the DLQ after three receives, and
:func:`deliver` plays Lambda's event source mapping (receive, invoke, delete on success).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from analytics_platform.analytics.job_listing import parse_since
from analytics_platform.cli import jobs as cli_jobs
from analytics_platform.etl import handler as handler_module
from analytics_platform.etl import worker as worker_module
from analytics_platform.etl.events import encode_key, parse_object_created
from analytics_platform.etl.exceptions import TransientError
from analytics_platform.etl.jobs import JobTracker, delivery_owner
from analytics_platform.etl.sweeper import sweep_dead_letters
from analytics_platform.ops import redrive as redrive_ops
from analytics_platform.ops import retry as retry_ops
from analytics_platform.ops.redrive import RedriveMethod, redrive
from analytics_platform.ops.retry import RetryOutcome, RetryReport, retry_jobs, select_jobs
from analytics_platform.targeting import deployment as target_module

from .conftest import BUCKET, FIXTURES, REGION, TABLE, Platform, create_job_table

GOOD_CSV = b"id,name\n1,Ann\n2,Bo\n3,Cy\n"
BAD_JSON = b"[1, 2"


# --- helpers --------------------------------------------------------------------------------------------------
@pytest.fixture
def queues(platform: Platform) -> Platform:
    """The platform with the stack's redrive policy: the work queue moves a message to the DLQ after 3 receives."""
    dlq_arn = redrive_ops.queue_arn(platform.sqs, platform.dlq_url)
    platform.sqs.set_queue_attributes(
        QueueUrl=platform.queue_url,
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"})},
    )
    return platform


def deliver(platform: Platform) -> dict[str, Any] | None:
    """Lambda's event source mapping for one message: receive it, invoke the handler, delete it on success."""
    messages = platform.sqs.receive_message(
        QueueUrl=platform.queue_url, MaxNumberOfMessages=1, VisibilityTimeout=0, AttributeNames=["All"]
    ).get("Messages", [])
    if not messages:
        return None
    message = messages[0]
    record = copy.deepcopy(json.loads((FIXTURES / "sqs_record_template.json").read_text()))
    record.update(messageId=message["MessageId"], receiptHandle=message["ReceiptHandle"], body=message["Body"])
    record["attributes"]["ApproximateReceiveCount"] = message["Attributes"]["ApproximateReceiveCount"]
    response = platform.invoke({"Records": [record]})
    if not response["batchItemFailures"]:
        platform.sqs.delete_message(QueueUrl=platform.queue_url, ReceiptHandle=message["ReceiptHandle"])
    return response


def visible(platform: Platform, queue_url: str) -> int:
    attributes = platform.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def dead_letter(platform: Platform, key: str, data: bytes) -> tuple[str, str]:
    """Upload, then fail every delivery transiently until SQS moves the message to the DLQ."""
    key, version = platform.upload(key, data)
    platform.sqs.send_message(QueueUrl=platform.queue_url, MessageBody=platform.body_for(key, version))

    def throttled(*args: Any, **kwargs: Any) -> Any:
        raise TransientError("SlowDown: reduce your request rate")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(worker_module, "convert_file", throttled)
        for _ in range(3):
            response = deliver(platform)
            assert response is not None and len(response["batchItemFailures"]) == 1
    assert deliver(platform) is None  # the fourth receive moved it to the DLQ
    assert visible(platform, platform.dlq_url) == 1
    return key, version


def fail_for_lack_of_disk(platform: Platform, key: str, data: bytes = GOOD_CSV) -> tuple[str, str]:
    """A job FAILED by a condition that can be undone: the function's disk was too small (a setting)."""
    key, version = platform.upload(key, data)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(worker_module.shutil, "disk_usage", lambda _: type("Usage", (), {"free": 10})())
        platform.invoke(platform.sqs_event(platform.body_for(key, version)))
    assert platform.job(key, version)["job_status"] == "FAILED"
    return key, version


def retry(platform: Platform, **kwargs: Any) -> RetryReport:
    """``tap jobs retry`` on the platform's one region."""
    clients = {"table": platform.table, "s3": platform.s3, "sqs": platform.sqs}
    clients.update({name: kwargs.pop(name) for name in ("table", "s3", "sqs") if name in kwargs})
    return retry_jobs(**clients, region=REGION, bucket=BUCKET, queue_url=platform.queue_url, **kwargs)


def job_id(platform: Platform, key: str, version: str) -> str:
    return str(platform.job(key, version)["job_id"])


# --- redrive --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("data", "final"), [(GOOD_CSV, "SUCCEEDED"), (BAD_JSON, "FAILED")])
def test_a_redriven_message_is_processed_again_and_its_attempts_count_on(
    queues: Platform, data: bytes, final: str
) -> None:
    # GIVEN a job DEAD_LETTERED after three transient failures, its message in the DLQ
    key, version = dead_letter(queues, "raw/sales/redrive.csv" if data == GOOD_CSV else "raw/sales/bad.json", data)
    job = queues.job(key, version)
    assert (job["job_status"], job["attempts"]) == ("DEAD_LETTERED", 3)
    # WHEN the DLQ is redriven (the local way: receive, send, delete)
    report = redrive(queues.sqs, queue_url=queues.queue_url, dlq_url=queues.dlq_url, method=RedriveMethod.COPY)
    # THEN one message moved and the DLQ is empty
    assert (report.moved, report.finished, report.failed, report.left_in_dlq) == (1, True, 0, 0)
    assert visible(queues, queues.dlq_url) == 0
    # AND the worker claims the DEAD_LETTERED job again and ends it in a new terminal state, attempts counting on
    assert deliver(queues) == {"batchItemFailures": []}
    job = queues.job(key, version)
    assert (job["job_status"], job["attempts"]) == (final, 4)
    if final == "SUCCEEDED":
        assert "error_type" not in job and job["rows_out"] == 3
    else:
        assert job["error_type"] == "MalformedContentError"


def test_redrive_keeps_bodies_and_message_attributes(platform: Platform) -> None:
    # GIVEN 12 messages in the DLQ (more than one batch), with message attributes
    bodies = [f"body {n}" for n in range(12)]
    for body in bodies:
        platform.sqs.send_message(
            QueueUrl=platform.dlq_url, MessageBody=body,
            MessageAttributes={"origin": {"DataType": "String", "StringValue": "test"}},
        )  # fmt: skip
    # WHEN redriven
    report = redrive(platform.sqs, queue_url=platform.queue_url, dlq_url=platform.dlq_url, method=RedriveMethod.COPY)
    # THEN all 12 are in the work queue, as they were
    assert report.moved == 12 and report.finished
    moved: list[dict[str, Any]] = []
    while batch := platform.sqs.receive_message(
        QueueUrl=platform.queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    ).get("Messages", []):
        moved += batch
    assert sorted(m["Body"] for m in moved) == sorted(bodies)
    assert {m["MessageAttributes"]["origin"]["StringValue"] for m in moved} == {"test"}


class RefusingQueue:
    """An SQS client whose work queue accepts only the first message of each batch."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self._real.send_message(QueueUrl=QueueUrl, MessageBody=Entries[0]["MessageBody"])
        failed = [{"Id": e["Id"], "SenderFault": False, "Code": "InternalError", "Message": "try again"}
                  for e in Entries[1:]]  # fmt: skip
        return {"Successful": [{"Id": Entries[0]["Id"]}], "Failed": failed}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def test_redrive_never_deletes_a_message_it_could_not_send(platform: Platform) -> None:
    # GIVEN 3 DLQ messages and a work queue that refuses all but one
    for n in range(3):
        platform.sqs.send_message(QueueUrl=platform.dlq_url, MessageBody=f"body {n}")
    # WHEN redriven
    sqs = RefusingQueue(platform.sqs)
    report = redrive(sqs, queue_url=platform.queue_url, dlq_url=platform.dlq_url, method=RedriveMethod.COPY)
    # THEN it says so, and the two not sent are still in the DLQ, visible again
    assert (report.moved, report.failed, report.finished) == (1, 2, False)
    assert "try again" in report.detail
    assert visible(platform, platform.queue_url) == 1
    assert visible(platform, platform.dlq_url) == 2


class MoveTaskQueue:
    """SQS as AWS answers message move tasks (moto 5.2 has none): ``tasks`` is what each listing returns."""

    def __init__(self, tasks: list[dict[str, Any]]) -> None:
        self.tasks = tasks
        self.started: dict[str, str] = {}
        self.listings = 0

    def get_queue_attributes(self, QueueUrl: str, AttributeNames: list[str]) -> dict[str, Any]:
        name = QueueUrl.rsplit("/", 1)[1]
        depth = {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}
        return {"Attributes": {"QueueArn": f"arn:aws:sqs:{REGION}:123456789012:{name}", **depth}}

    def start_message_move_task(self, SourceArn: str, DestinationArn: str) -> dict[str, str]:
        self.started = {"SourceArn": SourceArn, "DestinationArn": DestinationArn}
        return {"TaskHandle": "handle-1"}

    def list_message_move_tasks(self, SourceArn: str, MaxResults: int) -> dict[str, Any]:
        assert SourceArn == self.started["SourceArn"]
        task = self.tasks[min(self.listings, len(self.tasks) - 1)]
        self.listings += 1
        return {"Results": [task]}


def test_on_aws_redrive_is_a_message_move_task_from_the_dlq_to_the_work_queue() -> None:
    # GIVEN SQS runs the task for a while, then completes it (a finished task shows no handle)
    sqs = MoveTaskQueue([
        {"TaskHandle": "handle-1", "Status": "RUNNING", "ApproximateNumberOfMessagesMoved": 2,
         "ApproximateNumberOfMessagesToMove": 5},
        {"Status": "COMPLETED", "ApproximateNumberOfMessagesMoved": 5, "ApproximateNumberOfMessagesToMove": 5},
    ])  # fmt: skip
    # WHEN redriven
    report = redrive(sqs, queue_url="https://q/work", dlq_url="https://q/dlq", method=RedriveMethod.MOVE_TASK,
                     sleep=lambda _: None)  # fmt: skip
    # THEN the DLQ was the source, the work queue the destination, and the moved count is SQS's
    assert sqs.started == {"SourceArn": f"arn:aws:sqs:{REGION}:123456789012:dlq",
                           "DestinationArn": f"arn:aws:sqs:{REGION}:123456789012:work"}  # fmt: skip
    assert (report.moved, report.to_move, report.finished, report.status) == (5, 5, True, "COMPLETED")


def test_a_move_task_still_running_at_the_timeout_is_reported_as_running() -> None:
    # GIVEN a task that never finishes within the timeout
    sqs = MoveTaskQueue([{"TaskHandle": "handle-1", "Status": "RUNNING", "ApproximateNumberOfMessagesMoved": 40,
                          "ApproximateNumberOfMessagesToMove": 900}])  # fmt: skip
    clock = iter(range(0, 1000, 5))
    # WHEN redriven with a 30 s timeout
    report = redrive(sqs, queue_url="https://q/work", dlq_url="https://q/dlq", method=RedriveMethod.MOVE_TASK,
                     timeout_seconds=30, sleep=lambda _: None, monotonic=lambda: float(next(clock)))  # fmt: skip
    # THEN it says how far it got and that SQS goes on, never "done"
    assert (report.finished, report.status, report.moved, report.to_move) == (False, "RUNNING", 40, 900)
    assert "still running" in report.detail
    assert "40 of about 900" in "\n".join(report.lines(REGION))


# --- retry ----------------------------------------------------------------------------------------------------
def test_a_failed_job_is_retried_on_its_same_version_and_keeps_its_history(platform: Platform) -> None:
    # GIVEN a job FAILED because the function's disk was too small, and the setting since raised
    key, version = fail_for_lack_of_disk(platform, "raw/sales/disk.csv")
    before = platform.job(key, version)
    # WHEN retried
    report = retry(platform, job_ids=[before["job_id"]])
    # THEN it is re-queued: PENDING, the old outcome in its history, no stale error on the record
    assert [j.outcome for j in report.jobs] == [RetryOutcome.REQUEUED] and report.complete
    job = platform.job(key, version)
    assert (job["job_status"], job["retries"], job["attempts"]) == ("PENDING", 1, 1)
    assert "error_type" not in job and "finished_at" not in job
    [entry] = job["history"]
    assert (entry["status"], entry["error_type"], entry["attempts"]) == ("FAILED", "TooLargeError", 1)
    assert "ephemeral_storage_mb" in entry["error_message"] and entry["ended_at"] == before["finished_at"]
    # AND the work queue holds the event EventBridge sends for that version, marked as a retry
    message = platform.sqs.receive_message(QueueUrl=platform.queue_url, VisibilityTimeout=0)["Messages"][0]
    event = json.loads(message["Body"])
    assert (event["source"], event["detail-type"], event["detail"]["reason"]) == (
        "aws.s3",
        "Object Created",
        "tap-retry",
    )
    assert parse_object_created(message["Body"]).job_id == before["job_id"]
    # WHEN the worker gets it THEN the job ends SUCCEEDED, attempts counting on, history kept
    assert deliver(platform) == {"batchItemFailures": []}
    job = platform.job(key, version)
    assert (job["job_status"], job["attempts"], job["retries"], len(job["history"])) == ("SUCCEEDED", 2, 1, 1)
    assert "error_type" not in job and "error_message" not in job


def test_a_dead_lettered_job_is_retried_and_a_later_redrive_of_its_message_is_a_harmless_duplicate(
    queues: Platform,
) -> None:
    # GIVEN a DEAD_LETTERED job whose message is still in the DLQ
    key, version = dead_letter(queues, "raw/sales/dead.csv", GOOD_CSV)
    # WHEN retried and delivered
    assert retry(queues, job_ids=[job_id(queues, key, version)]).complete
    assert deliver(queues) == {"batchItemFailures": []}
    # THEN it SUCCEEDED on its fourth attempt, the dead-lettering in its history
    job = queues.job(key, version)
    assert (job["job_status"], job["attempts"], job["retries"]) == ("SUCCEEDED", 4, 1)
    assert [(h["status"], h["attempts"]) for h in job["history"]] == [("DEAD_LETTERED", 3)]
    assert "dead_lettered_at" not in job
    # WHEN its old message is redriven later THEN the delivery is acknowledged and changes nothing
    assert redrive(queues.sqs, queue_url=queues.queue_url, dlq_url=queues.dlq_url, method=RedriveMethod.COPY).moved == 1
    assert deliver(queues) == {"batchItemFailures": []}
    assert queues.job(key, version) == job


def test_the_dead_letter_sweep_does_not_undo_a_retry_of_a_dead_lettered_job(queues: Platform) -> None:
    # GIVEN a DEAD_LETTERED job whose old message is still in the DLQ, retried (PENDING, its message queued)
    key, version = dead_letter(queues, "raw/sales/swept.csv", GOOD_CSV)
    assert retry(queues, job_ids=[job_id(queues, key, version)]).complete
    # WHEN the scheduled sweep reads the DLQ before the worker picks the retry up
    sweep_dead_letters(
        sqs=queues.sqs, dlq_url=queues.dlq_url, jobs=JobTracker(queues.table, region=REGION),
        parse=parse_object_created, dataset_of=lambda key: "sales", clock=lambda: datetime.now(UTC),
    )  # fmt: skip
    # THEN the job stays PENDING for its retry (the old message predates it), and the retry's delivery decides
    assert queues.job(key, version)["job_status"] == "PENDING"
    assert deliver(queues) == {"batchItemFailures": []}
    assert queues.job(key, version)["job_status"] == "SUCCEEDED"


def test_a_job_whose_version_is_gone_is_reported_and_left_as_it_was(platform: Platform) -> None:
    # GIVEN a FAILED job whose object version was deleted since
    key, version = fail_for_lack_of_disk(platform, "raw/sales/deleted.csv")
    platform.s3.delete_object(Bucket=BUCKET, Key=key, VersionId=version)
    before = platform.job(key, version)
    waiting = visible(platform, platform.queue_url)
    # WHEN retried
    [result] = retry(platform, job_ids=[before["job_id"]]).jobs
    # THEN it says so, and neither the record nor the queue changed
    assert result.outcome is RetryOutcome.GONE and "object version gone" in result.message
    assert platform.job(key, version) == before
    assert visible(platform, platform.queue_url) == waiting


def test_jobs_in_flight_or_done_are_refused_one_by_one(platform: Platform) -> None:
    # GIVEN a SUCCEEDED job, a RUNNING one (live lease) and a PENDING one
    done, done_version = platform.upload("raw/sales/done.csv", GOOD_CSV)
    platform.invoke(platform.sqs_event(platform.body_for(done, done_version)))
    worker = handler_module.get_worker()
    now = datetime.now(UTC)
    running, running_version = platform.upload("raw/sales/running.csv", GOOD_CSV)
    ref = worker.parse(platform.body_for(running, running_version))
    worker.jobs.ensure(ref, "sales", now)
    worker.jobs.claim(ref.job_id, delivery_owner("m", 1), now, lease_expires_at=int(now.timestamp()) + 600,
                      receive_count=1)  # fmt: skip
    pending, pending_version = platform.upload("raw/sales/pending.csv", GOOD_CSV)
    worker.jobs.ensure(worker.parse(platform.body_for(pending, pending_version)), "sales", now)
    objects = [(done, done_version), (running, running_version), (pending, pending_version)]
    before = [platform.job(k, v) for k, v in objects]
    # WHEN all three are retried
    report = retry(platform, job_ids=[str(job["job_id"]) for job in before])
    # THEN each is refused with its reason and left untouched
    assert [j.outcome for j in report.jobs] == [RetryOutcome.REFUSED] * 3 and not report.complete
    assert [j.message.split(":")[1].strip() for j in report.jobs] == ["SUCCEEDED", "RUNNING", "PENDING"]
    assert "already done" in report.jobs[0].message and "processing it" in report.jobs[1].message
    assert [platform.job(k, v) for k, v in objects] == before


class RacingHead:
    """An S3 client whose first HeadObject lets a second retry run to its end first (two operators at once)."""

    def __init__(self, real: Any, rival: Any) -> None:
        self._real, self._rival, self.rival_report = real, rival, None

    def head_object(self, **kwargs: Any) -> Any:
        if self._rival is not None:
            rival, self._rival = self._rival, None
            self.rival_report = rival()
        return self._real.head_object(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def test_two_retries_racing_requeue_the_job_once(platform: Platform) -> None:
    # GIVEN a FAILED job, and two retries that both read it FAILED before either writes
    key, version = fail_for_lack_of_disk(platform, "raw/sales/race.csv")
    ident = job_id(platform, key, version)
    waiting = visible(platform, platform.queue_url)
    s3 = RacingHead(platform.s3, lambda: retry(platform, job_ids=[ident]))
    # WHEN both run
    first = retry(platform, job_ids=[ident], s3=s3)
    # THEN exactly one re-queued it: one message, one history entry
    assert s3.rival_report is not None and s3.rival_report.jobs[0].outcome is RetryOutcome.REQUEUED
    assert first.jobs[0].outcome is RetryOutcome.RACED and "PENDING" in first.jobs[0].message
    assert visible(platform, platform.queue_url) == waiting + 1
    job = platform.job(key, version)
    assert (job["retries"], len(job["history"])) == (1, 1)
    # AND a third retry right after is refused: its message is on its way
    [third] = retry(platform, job_ids=[ident]).jobs
    assert third.outcome is RetryOutcome.REFUSED and "already re-queued" in third.message


class BrokenQueue:
    """An SQS client whose SendMessage fails (``crash``: the process dies there instead)."""

    def __init__(self, real: Any, *, crash: bool = False) -> None:
        self._real, self._crash = real, crash

    def send_message(self, **kwargs: Any) -> Any:
        if self._crash:
            raise SystemExit("killed between the status write and the send")
        raise ClientError({"Error": {"Code": "InternalError", "Message": "SQS is down"}}, "SendMessage")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def test_a_retry_whose_message_cannot_be_sent_puts_the_job_back(platform: Platform) -> None:
    # GIVEN a FAILED job and a work queue that refuses the message
    key, version = fail_for_lack_of_disk(platform, "raw/sales/nosend.csv")
    before = platform.job(key, version)
    # WHEN retried
    [result] = retry(platform, job_ids=[before["job_id"]], sqs=BrokenQueue(platform.sqs)).jobs
    # THEN it says so and the record is exactly as it was (so the next retry re-queues it normally)
    assert result.outcome is RetryOutcome.SEND_FAILED and "the job is as it was" in result.message
    assert platform.job(key, version) == before


def test_a_retry_that_died_before_sending_is_picked_up_by_the_next_retry(platform: Platform) -> None:
    # GIVEN a retry killed between its status write and its send: the job is PENDING with no message
    key, version = fail_for_lack_of_disk(platform, "raw/sales/crash.csv")
    ident = job_id(platform, key, version)
    with pytest.raises(SystemExit):
        retry(platform, job_ids=[ident], sqs=BrokenQueue(platform.sqs, crash=True))
    assert platform.job(key, version)["job_status"] == "PENDING"
    assert deliver(platform) is None
    # WHEN retried at once THEN it waits (the message may be on its way)
    assert retry(platform, job_ids=[ident]).jobs[0].outcome is RetryOutcome.REFUSED
    # WHEN retried after the resend delay THEN its message is sent again, without a second history entry
    later = datetime.now(UTC) + timedelta(seconds=retry_ops.RESEND_AFTER_SECONDS + 1)
    [result] = retry(platform, job_ids=[ident], clock=lambda: later).jobs
    assert result.outcome is RetryOutcome.REQUEUED and "sent again" in result.message
    # AND the worker finishes it
    assert deliver(platform) == {"batchItemFailures": []}
    job = platform.job(key, version)
    assert (job["job_status"], job["retries"], len(job["history"]), job["attempts"]) == ("SUCCEEDED", 1, 1, 2)


class NoScanTable:
    """A job table that fails the test on any scan."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def scan(self, **kwargs: Any) -> Any:
        raise AssertionError("the job table must never be scanned")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def test_selection_by_status_and_since_uses_the_status_index_and_picks_exactly_those_jobs(queues: Platform) -> None:
    # GIVEN a FAILED job from today, one from three days ago, a DEAD_LETTERED one and a SUCCEEDED one
    recent = job_id(queues, *fail_for_lack_of_disk(queues, "raw/sales/recent.csv"))
    old = job_id(queues, *fail_for_lack_of_disk(queues, "raw/sales/old.csv"))
    three_days_ago = (datetime.now(UTC) - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    queues.table.update_item(Key={"job_id": old}, UpdateExpression="SET created_at = :t, job_day = :d",
                             ExpressionAttributeValues={":t": three_days_ago, ":d": three_days_ago[:10]})  # fmt: skip
    dead = job_id(queues, *dead_letter(queues, "raw/sales/dead.csv", GOOD_CSV))
    queues.upload_and_process("raw/sales/fine.csv", GOOD_CSV)
    table = NoScanTable(queues.table)
    # WHEN selected as `--status S --since D` does THEN exactly the matching jobs, oldest first
    assert select_jobs(table, status="FAILED", since=parse_since("1d")) == [recent]
    assert select_jobs(table, status="FAILED", since=parse_since("7d")) == [old, recent]
    assert select_jobs(table, status="DEAD_LETTERED", since=parse_since("1d")) == [dead]
    # AND retrying `--status FAILED --since 1d` re-queues only today's
    report = retry(queues, table=table, status="FAILED", since=parse_since("1d"))
    assert [(j.job_id, j.outcome) for j in report.jobs] == [(recent, RetryOutcome.REQUEUED)]
    # AND other statuses, or ids with a status, are refused before anything happens
    with pytest.raises(ValueError, match="--status must be one of"):
        select_jobs(table, status="SUCCEEDED")
    with pytest.raises(ValueError, match="not both"):
        select_jobs(table, job_ids=[recent], status="FAILED")


ODD_NAMES = ["Q1 report é.csv", "a b.csv", "a+b.csv", "50%41off.csv", "日本語 📈.csv", "k=v&x?.csv"]


@pytest.mark.parametrize("name", ODD_NAMES)
def test_odd_keys_round_trip_through_a_retry(platform: Platform, name: str) -> None:
    # GIVEN a FAILED job of an oddly named object
    key, version = fail_for_lack_of_disk(platform, f"raw/sales/{name}")
    ident = job_id(platform, key, version)
    # WHEN retried
    assert retry(platform, job_ids=[ident]).complete
    # THEN the event carries the key as S3 encodes it, and it leads the worker back to that very job
    body = platform.sqs.receive_message(QueueUrl=platform.queue_url, VisibilityTimeout=0)["Messages"][0]["Body"]
    assert json.loads(body)["detail"]["object"]["key"] == encode_key(key)
    assert deliver(platform) == {"batchItemFailures": []}
    job = platform.job(key, version)
    assert (job["job_status"], job["input_key"], job["attempts"]) == ("SUCCEEDED", key, 2)


def test_a_job_id_is_looked_up_in_its_own_regions_table_only(platform: Platform) -> None:
    # GIVEN a FAILED job in another region's table (the same account)
    key, version = fail_for_lack_of_disk(platform, "raw/sales/elsewhere.csv")
    item = platform.job(key, version)
    west = boto3.resource("dynamodb", region_name="us-west-2")
    create_job_table(west.meta.client, TABLE.replace(REGION, "us-west-2"))
    west_table = west.Table(TABLE.replace(REGION, "us-west-2"))
    west_table.put_item(Item={**item, "region": "us-west-2"})
    platform.table.delete_item(Key={"job_id": item["job_id"]})
    # WHEN retried in this region (and an id that is no job id at all)
    report = retry(platform, job_ids=[item["job_id"], "latest#0123"])
    # THEN neither is found, and the other region's record is untouched
    assert [j.outcome for j in report.jobs] == [RetryOutcome.NOT_FOUND] * 2
    assert f"{REGION}'s job table" in report.jobs[0].message
    assert west_table.get_item(Key={"job_id": item["job_id"]})["Item"]["job_status"] == "FAILED"


# --- the commands ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MotoTarget:
    """A resolved region whose clients are the in-process moto ones."""

    table: Any
    queue_name: str
    dlq_name: str
    region: str = REGION
    bucket: str = BUCKET
    local: bool = True

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=self.region)

    def job_table(self) -> Any:
        return self.table


@pytest.fixture
def target(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoTarget]:
    resolved = MotoTarget(platform.table, platform.queue_url.rsplit("/", 1)[1], platform.dlq_url.rsplit("/", 1)[1])
    seen: list[dict[str, Any]] = []

    def resolve(region: str, **kwargs: Any) -> MotoTarget:
        seen.append({"region": region, **kwargs})
        return resolved

    monkeypatch.setattr(target_module, "resolve_target", resolve)
    yield resolved
    assert seen and all(call["region"] == REGION for call in seen)


def test_the_commands_report_what_they_did(
    queues: Platform, target: MotoTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a DEAD_LETTERED job and a FAILED one
    dead = dead_letter(queues, "raw/sales/cmd dead.csv", GOOD_CSV)
    failed = job_id(queues, *fail_for_lack_of_disk(queues, "raw/sales/cmd-failed.csv"))
    common = {"region": REGION, "local": True, "config_path": None, "env": "dev"}
    # WHEN `tap redrive --region R --local`
    assert cli_jobs.redrive_command(**common) == 0
    out = capsys.readouterr().out
    assert "receive-send-delete" in out and "moved 1 message(s)" in out
    assert deliver(queues) == {"batchItemFailures": []} and queues.job(*dead)["job_status"] == "SUCCEEDED"
    capsys.readouterr()  # the handler's metrics
    # WHEN `tap jobs retry ID ID --region R`, one of them already done THEN one line each and exit 1
    assert cli_jobs.retry_command(**common, job_ids=[failed, job_id(queues, *dead)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{failed}  requeued") and "raw/sales/cmd-failed.csv" in lines[0]
    assert "refused" in lines[1] and lines[-1] == f"1 of 2 job(s) re-queued in {REGION}"
    # WHEN `--status FAILED --since 1h` finds none left THEN it says so, exit 0
    assert cli_jobs.retry_command(**common, status="FAILED", since="1h") == 0
    assert "no FAILED job" in capsys.readouterr().out
    # WHEN the arguments are wrong THEN exit 2 and nothing done
    assert cli_jobs.retry_command(**common, status="FAILED", since="yesterday") == 2
    assert "--since" in capsys.readouterr().err


def test_the_commands_refuse_a_local_platform_that_is_not_up(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN no local platform
    monkeypatch.setenv("TAP_LOCAL_HOME", str(tmp_path / "nothing"))
    common = {"region": REGION, "local": True, "config_path": None}
    # WHEN either command runs with --local THEN exit 2 with the reason
    assert cli_jobs.redrive_command(**common) == 2
    assert cli_jobs.retry_command(**common, job_ids=["0" * 32]) == 2
    assert "not up" in capsys.readouterr().err


def test_each_region_resolves_its_own_queues_on_aws_and_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    from analytics_platform.local.state import LocalOutputs, RegionOutputs
    from analytics_platform.targeting.deployment import resolve_target
    from analytics_platform.targeting.region_target import target_from_outputs

    # GIVEN the default configuration, credentials of some account, and a local platform's outputs for two regions
    monkeypatch.delenv("ENVIRONMENT_SUFFIX", raising=False)
    caller = SimpleNamespace(get_caller_identity=lambda: {"Account": "444455556666"})
    monkeypatch.setattr("analytics_platform.infra.account._default_sts", lambda _region: caller)

    def names(region: str) -> RegionOutputs:
        url = f"http://127.0.0.1:5000/000000000000/analytics-%s-{region}-dev"
        return RegionOutputs(f"b-{region}", f"t-{region}", url % "queue", url % "dlq", "f", "g", "w")

    outputs = LocalOutputs("http://127.0.0.1:5000", {r: names(r) for r in ("us-east-1", "eu-west-1")})
    # WHEN each region is resolved THEN it names that region's queues and no other's
    for region in ("us-east-1", "eu-west-1"):
        on_aws = resolve_target(region, local=False, config_path=None)
        local = target_from_outputs(outputs, region)
        assert (on_aws.queue_name, on_aws.dlq_name) == (f"analytics-queue-{region}-dev", f"analytics-dlq-{region}-dev")
        assert (local.queue_name, local.dlq_name) == (on_aws.queue_name, on_aws.dlq_name)
        assert on_aws.bucket == f"analytics-bucket-444455556666-{region}-dev"
