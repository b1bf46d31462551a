"""``tap jobs retry``: chosen FAILED or DEAD_LETTERED jobs of one region re-queued on purpose.

It works on ONE region's resources, passed in as boto3 clients (tests use moto); the command that resolves them
and prints the report is :func:`analytics_platform.cli.jobs.retry_command`.

:func:`retry_jobs` puts each job back to PENDING through the job model's transitions
(:func:`analytics_platform.etl.job_transitions.requeue`: its previous outcome appended to its ``history``,
``retries`` counted up) and sends the work queue the event EventBridge would have sent for that exact object
version, marked ``detail.reason = "tap-retry"``.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from analytics_platform.analytics.job_listing import parse_since, query_jobs
from analytics_platform.etl.events import UNVERSIONED, object_created_event, parse_object_created
from analytics_platform.etl.job_transitions import left_pending_by_retry, put_back, requeue
from analytics_platform.etl.job_values import DELETED, PENDING, RETRYABLE, RUNNING, SUCCEEDED, SUPERSEDED, iso
from analytics_platform.ops.archived import ArchivedVersion, archived_version, start_restore

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
