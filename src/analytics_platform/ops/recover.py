"""Recovery of one region's jobs: ``tap redrive`` and ``tap jobs retry``.

Both work on ONE region's resources, passed in as boto3 clients (tests use moto); the ``*_command`` functions
resolve them as every region-bound command does (:func:`analytics_platform.analytics.target.resolve_target`),
print a report and return an exit code.

* :func:`redrive` moves every message of the dead-letter queue back to the work queue. Their jobs are
  DEAD_LETTERED, a state a later delivery claims again (see :mod:`analytics_platform.etl.jobs`), so the worker
  reprocesses them and the attempt count goes on from where it was.
* :func:`retry_jobs` re-queues chosen FAILED or DEAD_LETTERED jobs on purpose: the job goes back to PENDING
  (its previous outcome appended to its ``history``, ``retries`` counted up) and the work queue gets the event
  EventBridge would have sent for that exact object version, marked ``detail.reason = "tap-retry"``.

Exit codes of the commands: 0 everything done, 1 something was not done (reported per message or job),
2 refused before anything happened (bad arguments, region not deployed).
"""

from __future__ import annotations

import json
import re
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from analytics_platform.analytics.target import RegionTarget, TargetError, resolve_target
from analytics_platform.etl.events import UNVERSIONED, object_created_event, parse_object_created
from analytics_platform.etl.job_transitions import left_pending_by_retry, put_back, requeue
from analytics_platform.etl.job_values import (
    DELETED,
    PENDING,
    RETRYABLE,
    RUNNING,
    SUCCEEDED,
    SUPERSEDED,
    iso,
)
from analytics_platform.exit_codes import ExitCode
from analytics_platform.local.jobs_query import parse_since, query_jobs
from analytics_platform.ops.archived import (
    ArchivedVersion,
    archived_in_queue,
    archived_of_message,
    archived_version,
    show_again,
    start_restore,
)

# --- redrive --------------------------------------------------------------------------------------------------

#: How long :func:`redrive` waits for an SQS message move task before reporting it as still running.
MOVE_TASK_TIMEOUT_SECONDS = 300.0
MOVE_TASK_POLL_SECONDS = 5.0
#: Seconds a DLQ message stays hidden while it is copied (it reappears by itself if the copy dies).
COPY_VISIBILITY_SECONDS = 120
#: At most this many messages are copied per run (a run more moves the rest).
MAX_COPY_MESSAGES = 100_000
TASK_DONE = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
_ATTRIBUTE_FIELDS = ("DataType", "StringValue", "BinaryValue")


class RedriveMethod(StrEnum):
    """How messages are moved."""

    #: SQS ``StartMessageMoveTask`` (AWS): SQS itself moves them.
    MOVE_TASK = "message-move-task"
    #: Receive, send to the work queue, then delete from the DLQ: for endpoints without move tasks. moto 5.2
    #: (the local platform's endpoint) implements neither ``StartMessageMoveTask`` nor ``ListMessageMoveTasks``.
    COPY = "receive-send-delete"


@dataclass(frozen=True)
class RedriveReport:
    """What one redrive did.

    ``finished`` False means it is still going on (a move task past the timeout) or it stopped early
    (``detail`` says why); ``left_in_dlq`` is the DLQ's approximate message count afterwards (visible and
    in flight), when it could be read.
    """

    method: RedriveMethod
    moved: int
    finished: bool
    status: str
    to_move: int | None = None
    failed: int = 0
    left_in_dlq: int | None = None
    task_handle: str | None = None
    detail: str = ""
    #: Messages left in the DLQ because their upload is archived (each with how to restore it).
    archived: tuple[ArchivedVersion, ...] = ()

    def lines(self, region: str) -> list[str]:
        """A human-readable report."""
        lines = [f"redrive of {region}'s dead-letter queue ({self.method.value}): {self.status}"]
        if self.to_move is not None:
            lines.append(f"  moved {self.moved} of about {self.to_move} message(s) back to the work queue")
        else:
            lines.append(f"  moved {self.moved} message(s) back to the work queue")
        if self.failed:
            lines.append(f"  {self.failed} message(s) could not be sent and stay in the dead-letter queue")
        if self.left_in_dlq:
            lines.append(f"  about {self.left_in_dlq} message(s) are in the dead-letter queue now (arrived meanwhile, "
                         "or held by the dead-letter sweep): run it again to move them")  # fmt: skip
        if self.detail:
            lines.append(f"  {self.detail}")
        again = f"tap redrive --region {region}"
        for version in self.archived:
            where = f"s3://{version.bucket}/{version.key} (version {version.version_id})"
            lines.append(f"  left in the dead-letter queue: {where} is {version.explanation(again)}")
        return lines


def queue_arn(sqs: Any, queue_url: str) -> str:
    """The ARN of a queue."""
    return str(sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def queue_depth(sqs: Any, queue_url: str) -> int:
    """Approximate messages in a queue, visible and in flight."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes.get("ApproximateNumberOfMessages", 0)) + int(
        attributes.get("ApproximateNumberOfMessagesNotVisible", 0)
    )


def redrive(
    sqs: Any, *, queue_url: str, dlq_url: str, method: RedriveMethod,
    timeout_seconds: float = MOVE_TASK_TIMEOUT_SECONDS, poll_seconds: float = MOVE_TASK_POLL_SECONDS,
    sleep: Callable[[float], None] = time.sleep, monotonic: Callable[[], float] = time.monotonic, s3: Any = None,
) -> RedriveReport:  # fmt: skip
    """Move every message of the DLQ ``dlq_url`` back to its work queue ``queue_url`` (one region's ``sqs``).

    With ``s3`` (the region's), a message whose upload is archived in Glacier stays in the DLQ and is reported
    with how to restore it: moved, it would fail on every delivery (GetObject answers ``InvalidObjectState``)
    and come back. A move task cannot leave a message behind, so when the DLQ holds such a message the others
    are copied instead.

    A move task is waited for up to ``timeout_seconds``; past that the report says it is still running (SQS goes
    on moving). The copy never deletes a message before its send succeeded: a crash at any point leaves each
    message in the DLQ, in the work queue, or (between send and delete) in both, and a duplicate is harmless
    since the worker is idempotent per object version.
    """
    if method is RedriveMethod.MOVE_TASK and s3 is not None and archived_in_queue(sqs, s3, dlq_url):
        method = RedriveMethod.COPY
    if method is RedriveMethod.MOVE_TASK:
        return _move_with_task(sqs, queue_url, dlq_url, timeout_seconds, poll_seconds, sleep, monotonic)
    return _move_by_copy(sqs, queue_url, dlq_url, s3)


def _move_with_task(
    sqs: Any, queue_url: str, dlq_url: str, timeout: float, poll: float, sleep: Callable[[float], None],
    monotonic: Callable[[], float],
) -> RedriveReport:  # fmt: skip
    method = RedriveMethod.MOVE_TASK
    dlq_arn = queue_arn(sqs, dlq_url)
    try:
        handle = str(
            sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=queue_arn(sqs, queue_url))["TaskHandle"]
        )
    except ClientError as error:  # for example a move task already running on this DLQ
        return RedriveReport(method, 0, False, "NOT_STARTED", detail=f"SQS refused the move task: {error}")
    deadline = monotonic() + timeout
    while True:
        task = _find_task(sqs, dlq_arn, handle)
        status = str(task.get("Status", "RUNNING"))
        moved = int(task.get("ApproximateNumberOfMessagesMoved", 0))
        to_move = task.get("ApproximateNumberOfMessagesToMove")
        total = int(to_move) if to_move is not None else None
        if status in TASK_DONE:
            reason = f"SQS says: {task['FailureReason']}" if task.get("FailureReason") else ""
            return RedriveReport(method, moved, status == "COMPLETED", status, total, task_handle=handle,
                                 left_in_dlq=_depth_or_none(sqs, dlq_url), detail=reason)  # fmt: skip
        if monotonic() >= deadline:
            detail = (f"the move task is still running after {timeout:.0f} s; SQS goes on moving (follow it with "
                      "'aws sqs list-message-move-tasks --source-arn " + dlq_arn + "')")  # fmt: skip
            return RedriveReport(method, moved, False, status, total, task_handle=handle, detail=detail)
        sleep(poll)


def _find_task(sqs: Any, dlq_arn: str, handle: str) -> dict[str, Any]:
    """Our task among the DLQ's recent move tasks.

    SQS shows the handle of running tasks only; a finished one is recognised as the newest task of the DLQ
    (SQS runs one move task per source queue at a time, so the newest after ours started is ours unless someone
    started another since).
    """
    results = sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=10).get("Results", [])
    for task in results:
        if task.get("TaskHandle") == handle:
            return dict(task)
    return dict(results[0]) if results else {}


def _depth_or_none(sqs: Any, queue_url: str) -> int | None:
    try:
        return queue_depth(sqs, queue_url)
    except (ClientError, BotoCoreError):
        return None


def _send_entry(index: int, message: dict[str, Any]) -> dict[str, Any]:
    """The message to send again: same body, same message attributes."""
    entry: dict[str, Any] = {"Id": str(index), "MessageBody": message["Body"]}
    attributes = {
        name: {k: v for k, v in value.items() if k in _ATTRIBUTE_FIELDS}
        for name, value in (message.get("MessageAttributes") or {}).items()
    }
    if attributes:
        entry["MessageAttributes"] = attributes
    return entry


def _hold_archived(s3: Any, messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[Any]]:
    """``messages`` split into those to move and ``(message, archived version)`` pairs to leave in the DLQ."""
    if s3 is None:
        return messages, []
    checked = [(message, archived_of_message(s3, message["Body"])) for message in messages]
    return [m for m, a in checked if a is None], [(m, a) for m, a in checked if a is not None]


#: Receives in a row that bring only messages handled already before the copy stops.
STALE_ROUNDS = 3


def _move_by_copy(sqs: Any, queue_url: str, dlq_url: str, s3: Any = None) -> RedriveReport:
    method = RedriveMethod.COPY
    moved = failed = 0
    seen: set[str] = set()
    held: list[Any] = []
    detail = ""
    stale_rounds = 0
    while moved + failed < MAX_COPY_MESSAGES:
        # Long polling (WaitTimeSeconds >= 1) asks every SQS server: an empty answer means an empty queue. A short
        # poll samples some servers only and may answer nothing while messages remain.
        received = sqs.receive_message(
            QueueUrl=dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=COPY_VISIBILITY_SECONDS,
            MessageAttributeNames=["All"],
        ).get("Messages", [])  # fmt: skip
        # A message seen before came back (its delete failed, or a held one outlived its hiding): it was handled
        # already, leave it for the next run; others may still follow it, so stop only when nothing else comes.
        fresh = [m for m in received if m["MessageId"] not in seen]
        seen.update(m["MessageId"] for m in received)
        stale_rounds = stale_rounds + 1 if received and not fresh else 0
        if not received or stale_rounds >= STALE_ROUNDS:
            break
        if not fresh:
            continue
        messages, archived = _hold_archived(s3, fresh)
        held += archived  # hidden until the end of the run, then shown again: they stay in the DLQ
        if not messages:
            continue
        try:
            sent = sqs.send_message_batch(
                QueueUrl=queue_url, Entries=[_send_entry(i, m) for i, m in enumerate(messages)]
            )
        except (ClientError, BotoCoreError) as error:
            _show_again(sqs, dlq_url, [m["ReceiptHandle"] for m in messages])
            failed += len(messages)
            detail = f"sending to the work queue failed ({error}); nothing was deleted from the dead-letter queue"
            break
        done = [messages[int(s["Id"])] for s in sent.get("Successful", [])]
        not_sent = [messages[int(f["Id"])] for f in sent.get("Failed", [])]
        if not_sent:
            _show_again(sqs, dlq_url, [m["ReceiptHandle"] for m in not_sent])
            failed += len(not_sent)
            detail = f"the work queue refused some messages: {sent['Failed'][0].get('Message', '')}"
        if done:
            # Only what was sent is deleted; a failed delete leaves a duplicate in the DLQ, never a loss.
            sqs.delete_message_batch(
                QueueUrl=dlq_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        moved += len(done)
        if not_sent:
            break
    show_again(sqs, dlq_url, [message["ReceiptHandle"] for message, _ in held])
    return RedriveReport(method, moved, not failed, "FAILED" if failed else "COMPLETED", failed=failed,
                         left_in_dlq=_depth_or_none(sqs, dlq_url), detail=detail,
                         archived=tuple(version for _, version in held))  # fmt: skip


def _show_again(sqs: Any, queue_url: str, handles: list[str]) -> None:
    """Best effort: make messages visible again at once (else they reappear after the copy's visibility)."""
    entries = [{"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0} for i, h in enumerate(handles)]
    try:
        if entries:
            sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)
    except (ClientError, BotoCoreError):
        pass  # they come back after COPY_VISIBILITY_SECONDS anyway


# --- retry ----------------------------------------------------------------------------------------------------

#: ``detail.reason`` of the event a retry sends (S3's own reasons are PutObject, CopyObject, ...).
RETRY_REASON = "tap-retry"
#: A job left PENDING by a retry that no delivery has claimed for this long is re-queued again by the next retry
#: (its message may have been lost: the retry died between the status write and the send).
RESEND_AFTER_SECONDS = 900
JOB_ID = re.compile(r"^[0-9a-f]{32}$")
#: S3's answers to HEAD of a version that cannot be read any more. Without ``s3:ListBucket`` S3 answers 403
#: instead of 404 for a version that is gone; 405 is a version that is a delete marker; 400 a malformed id.
GONE_CODES = frozenset({
    "404", "NoSuchKey", "NoSuchVersion", "NotFound", "403", "AccessDenied", "Forbidden", "405", "MethodNotAllowed",
    "400", "InvalidArgument",
})  # fmt: skip
_REFUSALS = {
    RUNNING: "RUNNING: a delivery is processing it (a later delivery takes it over if that one died)",
    PENDING: "PENDING: its message is in the work queue and will be processed",
    SUCCEEDED: "SUCCEEDED: already done",
    SUPERSEDED: "SUPERSEDED: a newer version of the key is current; this version is done",
    DELETED: "DELETED: the version was deleted from raw/ (upload it again to process it)",
}


class RetryOutcome(StrEnum):
    """What a retry did with one job."""

    REQUEUED = "requeued"
    NOT_FOUND = "not-found"
    REFUSED = "refused"
    GONE = "gone"
    #: The version is in Glacier / Deep Archive: restore it first (the report says how, or --restore starts it).
    ARCHIVED = "archived"
    RACED = "raced"
    SEND_FAILED = "send-failed"
    ERROR = "error"


@dataclass(frozen=True)
class JobRetry:
    """One job's result."""

    job_id: str
    outcome: RetryOutcome
    message: str
    input_key: str | None = None
    previous_status: str | None = None
    retries: int | None = None


@dataclass(frozen=True)
class RetryReport:
    """What one ``tap jobs retry`` did, per job, in one region."""

    region: str
    jobs: list[JobRetry] = field(default_factory=list)

    @property
    def requeued(self) -> list[JobRetry]:
        """The jobs re-queued."""
        return [job for job in self.jobs if job.outcome is RetryOutcome.REQUEUED]

    @property
    def complete(self) -> bool:
        """Whether every selected job was re-queued."""
        return len(self.requeued) == len(self.jobs)

    def lines(self) -> list[str]:
        """A human-readable report."""
        lines = [f"{job.job_id}  {job.outcome.value:<11}  {job.input_key or '-'}  {job.message}" for job in self.jobs]
        lines.append(f"{len(self.requeued)} of {len(self.jobs)} job(s) re-queued in {self.region}")
        return lines


def select_jobs(
    table: Any, *, job_ids: Sequence[str] = (), status: str | None = None, since: datetime | None = None
) -> list[str]:
    """The job ids to retry: ``job_ids`` as given (in order, once each), or every job of ``status`` created at or
    after ``since`` (default: 24 hours ago) through the table's status index, never a scan."""
    if job_ids and status:
        raise ValueError("give job ids or --status, not both")
    if job_ids:
        return list(dict.fromkeys(job_ids))
    if status not in RETRYABLE:
        raise ValueError(f"--status must be one of {', '.join(sorted(RETRYABLE))} (or give job ids)")
    items = query_jobs(table, since=since or parse_since(None), status=status)
    return [str(item["job_id"]) for item in reversed(items)]  # oldest first


def retry_jobs(
    *, table: Any, s3: Any, sqs: Any, region: str, bucket: str, queue_url: str, job_ids: Sequence[str] = (),
    status: str | None = None, since: datetime | None = None, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    resend_after_seconds: int = RESEND_AFTER_SECONDS, restore: bool = False,
) -> RetryReport:  # fmt: skip
    """Re-queue FAILED / DEAD_LETTERED jobs of ONE region for another processing of their exact object version.

    The clients are that region's (``table``: its job table as a boto3 Table; ``bucket``: its data bucket;
    ``queue_url``: its work queue). A job id is looked up in this table only: an id of another region's job is
    "not found" here and is never looked for elsewhere. Jobs are selected as :func:`select_jobs` says.

    Per job:

    1. Consistent read; anything not FAILED / DEAD_LETTERED is refused, except a job a retry left PENDING that no
       delivery has claimed for ``resend_after_seconds`` (see 4).
    2. ``HeadObject`` of its bucket/key/version: if that version is gone, the job is reported "gone" and left as
       it is; if it is archived (Glacier, Deep Archive: GetObject would answer ``InvalidObjectState`` on every
       delivery, into the DLQ), it is reported "archived" with the command that restores it (``restore``: the
       restore is started) and left as it is; a retry once the restore is done goes on.
    3. One conditional write, on the status, ``attempts`` and ``retries`` read in 1 (so of two concurrent retries
       of one job exactly one re-queues it): the previous outcome (status, error, attempts, end time) is appended
       to ``history``, ``retries`` counts up, the previous outcome's fields are removed, and the status becomes
       PENDING, which the worker's claim accepts as for any new delivery (``attempts`` counts on).
    4. The EventBridge ``Object Created`` event of that version is sent to the work queue, ``detail.reason``
       ``"tap-retry"``. If the send fails, the record is put back exactly as it was (conditionally: only if no
       delivery touched it meanwhile).

    What if it crashes: before 3, nothing changed. Between 3 and 4 (or if the put-back fails too) the job is
    PENDING with no message: ``tap jobs`` lists it PENDING, the DLQ sweep never sees it, and the next
    ``tap jobs retry JOB_ID`` after ``resend_after_seconds`` sends its message again (no new history entry); a
    message that did arrive meanwhile makes that second one a duplicate, which the worker ignores. After 4,
    everything is done.
    """
    retrier = _Retrier(table, s3, sqs, region=region, bucket=bucket, queue_url=queue_url, clock=clock,
                       resend_after=timedelta(seconds=resend_after_seconds), restore=restore)  # fmt: skip
    selected = select_jobs(table, job_ids=job_ids, status=status, since=since)
    return RetryReport(region, [retrier.retry(job_id) for job_id in selected])


@dataclass(frozen=True)
class _Retrier:
    """One region's clients and settings, applied to one job at a time."""

    table: Any
    s3: Any
    sqs: Any
    region: str
    bucket: str
    queue_url: str
    clock: Callable[[], datetime]
    resend_after: timedelta
    restore: bool = False

    def retry(self, job_id: str) -> JobRetry:
        """Steps 1 to 4 for one job."""
        if not JOB_ID.match(job_id):
            return JobRetry(job_id, RetryOutcome.NOT_FOUND, "not a job id (32 hexadecimal characters)")
        item = self._read(job_id)
        if item is None:
            return JobRetry(job_id, RetryOutcome.NOT_FOUND, f"no such job in {self.region}'s job table")
        now = self.clock()
        resend = item.get("job_status") == PENDING and left_pending_by_retry(item)
        refusal = self._refusal(item, now, resend)
        if refusal is not None:
            return self._result(item, RetryOutcome.REFUSED, refusal)
        head, problem = _head_version(self.s3, item)
        if head is None:
            gone = problem.startswith("object version gone")
            return self._result(item, RetryOutcome.GONE if gone else RetryOutcome.ERROR, problem)
        archived = archived_version(head, bucket=str(item["input_bucket"]), key=str(item["input_key"]),
                                    version_id=_version_id(item))  # fmt: skip
        if archived is not None:
            return self._result(item, RetryOutcome.ARCHIVED, self._archived(archived))
        size = int(head.get("ContentLength", 0))
        body = retry_event_body(item, size=size, region=self.region, now=now)
        if parse_object_created(body).job_id != job_id:  # the event must lead the worker to this very job
            return self._result(item, RetryOutcome.ERROR, "internal error: the retry event names another job")
        return self._requeue(item, body, now, resend)

    def _archived(self, archived: ArchivedVersion) -> str:
        """The report of an archived version; with ``restore``, after starting its restore."""
        again = f"tap jobs retry --region {self.region}"
        if not self.restore or archived.restoring:
            return archived.explanation(again, can_restore=True)
        return f"{start_restore(self.s3, archived)}: run {again} again once it is done; the job is left as it was"

    def _read(self, job_id: str) -> dict[str, Any] | None:
        item = self.table.get_item(Key={"job_id": job_id}, ConsistentRead=True).get("Item")
        return dict(item) if item is not None else None

    @staticmethod
    def _result(item: dict[str, Any], outcome: RetryOutcome, message: str, retries: int | None = None) -> JobRetry:
        key = item.get("input_key")
        return JobRetry(str(item["job_id"]), outcome, message, str(key) if key else None, item.get("job_status"),
                        retries)  # fmt: skip

    def _refusal(self, item: dict[str, Any], now: datetime, resend: bool) -> str | None:
        """Why this job is not retried now, or None."""
        state = str(item.get("job_status"))
        if resend and now - _parse_iso(str(item["retried_at"])) < self.resend_after:
            wait = int(self.resend_after.total_seconds())
            return (f"already re-queued by a retry at {item['retried_at']}; waiting for the worker (a retry sends "
                    f"it again once it waited {wait} s)")  # fmt: skip
        if state not in RETRYABLE and not resend:
            return "not retried: " + _REFUSALS.get(state, f"status {state}")
        if item.get("input_bucket") != self.bucket:
            return f"its object is in {item.get('input_bucket')!r}, not in {self.region}'s bucket"
        return None

    def _requeue(self, item: dict[str, Any], body: str, now: datetime, resend: bool) -> JobRetry:
        """Steps 3 and 4: the conditional write, then the message (put back if it cannot be sent)."""
        written = requeue(self.table, item, now, resend=resend)
        if written is None:
            current = (self._read(str(item["job_id"])) or {}).get("job_status")
            return self._result(item, RetryOutcome.RACED, f"not re-queued: the job changed meanwhile (now "
                                f"{current}); another retry or a delivery got there first")  # fmt: skip
        retries = int(written.get("retries", 0))
        try:
            self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=body)
        except (ClientError, BotoCoreError) as error:
            restored = put_back(self.table, item, stamp=iso(now))
            after = "the job is as it was" if restored else "the job stays PENDING; retry it again later to resend"
            return self._result(item, RetryOutcome.SEND_FAILED, f"sending to the work queue failed ({error}); {after}",
                                retries)  # fmt: skip
        attempts = int(item.get("attempts", 0))
        what = "sent again (its earlier retry message may have been lost)" if resend else f"re-queued (retry {retries})"
        return self._result(item, RetryOutcome.REQUEUED, f"{what}; it was {item['job_status']} after {attempts} "
                            "attempt(s)", retries)  # fmt: skip


def _parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _version_id(item: dict[str, Any]) -> str | None:
    version = str(item.get("input_version") or UNVERSIONED)
    return None if version == UNVERSIONED else version


def _head_version(s3: Any, item: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """The version's HeadObject answer, or None and why it cannot be read."""
    version = str(item.get("input_version") or UNVERSIONED)
    extra = {} if version == UNVERSIONED else {"VersionId": version}
    try:
        head = s3.head_object(Bucket=item["input_bucket"], Key=item["input_key"], **extra)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in {"403", "AccessDenied", "Forbidden"}:
            return None, (
                f"object version gone or not readable: S3 answers {code} for version {version} (reading it needs "
                "s3:GetObjectVersion, and telling a missing version from a forbidden one s3:ListBucket); the job is "
                "left as it was"
            )
        if code in GONE_CODES:
            return None, f"object version gone: S3 answers {code} for version {version}; the job is left as it was"
        return None, f"could not check the object version ({error}); the job is left as it was"
    except BotoCoreError as error:
        return None, f"could not check the object version ({error}); the job is left as it was"
    return dict(head), ""


def retry_event_body(item: dict[str, Any], *, size: int, region: str, now: datetime) -> str:
    """The SQS body EventBridge would deliver for the job's object version, marked as a retry; its time is the
    upload's (the output lands under the upload's ``ingest_date``, as the first attempt's did)."""
    version = str(item.get("input_version") or UNVERSIONED)
    uploaded = _parse_iso(str(item["event_time"])) if item.get("event_time") else now
    event = object_created_event(
        str(item["input_bucket"]), str(item["input_key"]), version_id=None if version == UNVERSIONED else version,
        size=size, region=region, time=uploaded, sequencer=str(item.get("input_sequencer", "")),
        etag=str(item.get("input_etag", "")),
    )  # fmt: skip
    event["id"] = str(uuid.uuid4())  # each retry is its own event
    detail = event["detail"]
    if isinstance(detail, dict):
        detail["reason"] = RETRY_REASON
    return json.dumps(event)


# --- commands -------------------------------------------------------------------------------------------------


def _queue_urls(sqs: Any, target: RegionTarget) -> tuple[str, str]:
    """The region's work queue and DLQ URLs, by the names the target resolved."""
    if not target.queue_name or not target.dlq_name:
        raise TargetError(f"the queues of {target.region} are not known")
    try:
        return (
            str(sqs.get_queue_url(QueueName=target.queue_name)["QueueUrl"]),
            str(sqs.get_queue_url(QueueName=target.dlq_name)["QueueUrl"]),
        )
    except ClientError as error:
        raise TargetError(
            f"the queues of {target.region} cannot be found ({error}): is the region deployed?"
        ) from error


def redrive_command(
    *, region: str, local: bool, config_path: str | None, env: str | None = None,
    timeout_seconds: float = MOVE_TASK_TIMEOUT_SECONDS,
) -> int:  # fmt: skip
    """``tap redrive --region R``: move the region's DLQ back to its work queue; print how many moved.

    AWS: an SQS message move task, waited for up to ``timeout_seconds``. ``--local``: receive-send-delete (the
    local endpoint has no move tasks). Exit 0 when the move finished, 1 when not (still running, failed, some
    messages not sent), 2 when the region cannot be resolved.
    """
    try:
        target = resolve_target(region, local=local, config_path=config_path, env=env)
        sqs = target.client("sqs")
        queue_url, dlq_url = _queue_urls(sqs, target)
    except (TargetError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return ExitCode.USAGE
    method = RedriveMethod.COPY if target.local else RedriveMethod.MOVE_TASK
    try:
        report = redrive(sqs, queue_url=queue_url, dlq_url=dlq_url, method=method, timeout_seconds=timeout_seconds,
                         s3=target.client("s3"))  # fmt: skip
    except (ClientError, BotoCoreError) as error:
        print(f"error: {region}: {error}", file=sys.stderr)
        return ExitCode.FAILED
    print("\n".join(report.lines(region)))
    if report.moved:
        print("  their jobs are processed again by the worker: follow them with 'tap jobs --region "
              f"{region} --since 1h'")  # fmt: skip
    return ExitCode.OK if report.finished and not report.failed and not report.archived else ExitCode.FAILED


def retry_command(
    *, region: str, local: bool, config_path: str | None, env: str | None = None, job_ids: Sequence[str] = (),
    status: str | None = None, since: str | None = None, restore: bool = False,
) -> int:  # fmt: skip
    """``tap jobs retry JOB_ID ... --region R`` or ``tap jobs retry --status FAILED|DEAD_LETTERED --since 1d
    --region R``: re-queue those jobs' object versions; print one line per job.

    ``restore``: start the restore of archived versions (reported "archived" either way). Exit 0 when every
    selected job was re-queued (or none matched), 1 when some were not (refused, gone, archived, lost a race,
    send failed), 2 when refused before anything happened.
    """
    try:
        start = parse_since(since) if status else None
        target = resolve_target(region, local=local, config_path=config_path, env=env)
        sqs = target.client("sqs")
        queue_url, _ = _queue_urls(sqs, target)
        report = retry_jobs(
            table=target.job_table(), s3=target.client("s3"), sqs=sqs, region=region, bucket=target.bucket,
            queue_url=queue_url, job_ids=job_ids, status=status, since=start, restore=restore,
        )  # fmt: skip
    except (TargetError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return ExitCode.USAGE
    except (ClientError, BotoCoreError) as error:
        print(f"error: {region}: {error}", file=sys.stderr)
        return ExitCode.FAILED
    if not report.jobs:
        print(f"no {status} job in {region} since {iso(start or parse_since(None))}")
        return ExitCode.OK
    print("\n".join(report.lines()))
    return ExitCode.OK if report.complete else ExitCode.FAILED
