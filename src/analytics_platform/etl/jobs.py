"""Job records in DynamoDB: one per object version, moved between states with conditional writes only.

States: ``PENDING -> RUNNING -> SUCCEEDED | FAILED | DEAD_LETTERED``; ``RUNNING -> PENDING`` after a transient
error (the message is redelivered). Rules the conditions enforce:

* A job is created once (``attribute_not_exists``). A redelivered event for a SUCCEEDED or FAILED job is a no-op.
* Claiming sets RUNNING with an owner (the SQS message id) and a lease that ends :data:`LEASE_MARGIN_SECONDS`
  after the invocation's deadline. The configuration makes the queue's visibility timeout longer than that,
  so when SQS shows the message again the lease has run out and the new delivery takes the job over. The same
  message may always take its own lease back; another owner's live lease means "retry later", never "done".
* ``DEAD_LETTERED`` is terminal for the upload but not final for the object version: a later delivery of it
  (a DLQ redrive, a duplicate event) claims it again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError

from analytics_platform.etl.events import ObjectRef
from analytics_platform.etl.exceptions import JobAlreadyFinishedError, JobInProgressError
from analytics_platform.etl.settings import LEASE_MARGIN_SECONDS

#: Index names and keys, equal to the stack's (a unit test keeps them in step).
DAY_INDEX = "by-day"
STATUS_INDEX = "by-status"
MAX_ERROR_MESSAGE = 2000


class JobStatus(StrEnum):
    """A job record's ``job_status``."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    DEAD_LETTERED = "DEAD_LETTERED"


PENDING, RUNNING, SUCCEEDED, FAILED, DEAD_LETTERED = (s.value for s in JobStatus)
#: States a job ends in; a record in any other state still has a message that will come back.
TERMINAL = frozenset({SUCCEEDED, FAILED, DEAD_LETTERED})
#: States a redelivery never reprocesses.
FINISHED = frozenset({SUCCEEDED, FAILED})


def iso(moment: datetime) -> str:
    """UTC ISO-8601 with milliseconds: sorts lexicographically in time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def delivery_owner(message_id: str, receive_count: int) -> str:
    """The owner of a claim: one delivery of one message (``<message id>/<receive count>``).

    A later delivery of the same message may take the lease back; an earlier one, still running somewhere,
    can then no longer write over the job.
    """
    return f"{message_id}/{receive_count}"


def lease_expiry(invocation_deadline: datetime) -> int:
    """Epoch second a lease taken by an invocation ending at ``invocation_deadline`` runs out."""
    return int(invocation_deadline.timestamp()) + LEASE_MARGIN_SECONDS


@dataclass
class JobResult:
    """What a finished transform reports into the job record."""

    dataset: str
    rows_in: int = 0
    rows_out: int = 0
    rows_rejected: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    output_uri: str | None = None
    quarantine_uri: str | None = None
    schema: list[str] = field(default_factory=list)


def _is_condition_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _error_values(error: BaseException | str, now: datetime, error_type: str | None = None) -> dict[str, Any]:
    message = str(error) or type(error).__name__
    return {
        "error_type": error_type or type(error).__name__,
        "error_message": message[:MAX_ERROR_MESSAGE],
        "updated_at": iso(now),
    }


def _result_values(result: JobResult, started: datetime, now: datetime) -> dict[str, Any]:
    values: dict[str, Any] = {
        "dataset": result.dataset,
        "rows_in": result.rows_in,
        "rows_out": result.rows_out,
        "rows_rejected": result.rows_rejected,
        "bytes_in": result.bytes_in,
        "bytes_out": result.bytes_out,
        "finished_at": iso(now),
        "updated_at": iso(now),
        "duration_ms": int((now - started).total_seconds() * 1000),
        "output_schema": result.schema,
    }
    if result.output_uri:
        values["output_uri"] = result.output_uri
    if result.quarantine_uri:
        values["quarantine_uri"] = result.quarantine_uri
    return values


class JobTracker:
    """Reads and writes job records of one region's table (a boto3 ``Table`` resource, injected)."""

    def __init__(self, table: Any, *, region: str) -> None:
        self._table = table
        self._region = region

    def get(self, job_id: str) -> dict[str, Any] | None:
        """The record, or None."""
        return self._table.get_item(Key={"job_id": job_id}, ConsistentRead=True).get("Item")

    def new_item(self, ref: ObjectRef, dataset: str, now: datetime, status: str = PENDING) -> dict[str, Any]:
        """A fresh record for ``ref``."""
        created = iso(now)
        return {
            "job_id": ref.job_id,
            "job_status": status,
            "dataset": dataset,
            "input_uri": ref.uri,
            "input_bucket": ref.bucket,
            "input_key": ref.key,
            "input_version": ref.version_id,
            "bytes_in": ref.size,
            "attempts": 0,
            "region": self._region,
            "created_at": created,
            "updated_at": created,
            "job_day": created[:10],
            "event_time": iso(ref.event_time),
        }

    def ensure(self, ref: ObjectRef, dataset: str, now: datetime) -> None:
        """Create the PENDING record if this object version has none yet."""
        self._put_new(self.new_item(ref, dataset, now))

    def _put_new(self, item: dict[str, Any]) -> bool:
        try:
            self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(job_id)")
        except ClientError as error:
            if not _is_condition_failure(error):
                raise
            return False
        return True

    def claim(
        self, job_id: str, owner: str, now: datetime, *, lease_expires_at: int, receive_count: int
    ) -> dict[str, Any]:
        """Move the job to RUNNING for ``owner``.

        Raises :class:`JobAlreadyFinishedError` (SUCCEEDED / FAILED) or :class:`JobInProgressError` (another
        owner holds a live lease; its ``retry_after_seconds`` says when that lease runs out).
        """
        epoch = int(now.timestamp())
        try:
            response = self._table.update_item(
                Key={"job_id": job_id},
                UpdateExpression=(
                    "SET job_status = :running, job_owner = :owner, lease_expires_at = :lease, "
                    "started_at = :now, updated_at = :now, receive_count = :receives ADD attempts :one"
                ),
                ConditionExpression=(
                    "attribute_exists(job_id) AND (job_status IN (:pending, :dead) OR (job_status = :running "
                    "AND (lease_expires_at < :epoch OR begins_with(job_owner, :message))))"
                ),
                ExpressionAttributeValues={
                    ":running": RUNNING,
                    ":pending": PENDING,
                    ":dead": DEAD_LETTERED,
                    ":owner": owner,
                    ":lease": lease_expires_at,
                    ":epoch": epoch,
                    ":now": iso(now),
                    ":one": 1,
                    ":receives": receive_count,
                    ":message": owner.rsplit("/", 1)[0] + "/",
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if not _is_condition_failure(error):
                raise
            current = self.get(job_id) or {}
            status = current.get("job_status")
            if status in FINISHED:
                raise JobAlreadyFinishedError(f"job {job_id} already {status}") from None
            lease = int(current.get("lease_expires_at", epoch))
            raise JobInProgressError(
                f"job {job_id} is {status} under another delivery ({current.get('job_owner')}) until its lease "
                f"ends in {max(0, lease - epoch)} s",
                retry_after_seconds=max(1, lease - epoch + 1),
            ) from None
        return dict(response["Attributes"])

    def _finish(self, job_id: str, owner: str, values: dict[str, Any], remove: str = "") -> bool:
        names = {f"#{key}": key for key in values}
        expression = "SET " + ", ".join(f"#{key} = :{key}" for key in values)
        if remove:
            expression += f" REMOVE {remove}"
        try:
            self._table.update_item(
                Key={"job_id": job_id},
                UpdateExpression=expression,
                ConditionExpression="job_status = :expected_status AND job_owner = :expected_owner",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={
                    **{f":{key}": value for key, value in values.items()},
                    ":expected_status": RUNNING,
                    ":expected_owner": owner,
                },
            )
        except ClientError as error:
            if _is_condition_failure(error):
                return False  # the lease was taken over; the new owner records the outcome
            raise
        return True

    def succeed(self, job_id: str, owner: str, result: JobResult, started: datetime, now: datetime) -> bool:
        """RUNNING -> SUCCEEDED with the transform's figures."""
        values = {**_result_values(result, started, now), "job_status": SUCCEEDED}
        return self._finish(job_id, owner, values, remove="lease_expires_at, error_type, error_message")

    def fail(
        self, job_id: str, owner: str, error: BaseException, result: JobResult, started: datetime, now: datetime
    ) -> bool:
        """RUNNING -> FAILED with the reason (permanent errors only)."""
        values = {**_result_values(result, started, now), **_error_values(error, now), "job_status": FAILED}
        return self._finish(job_id, owner, values, remove="lease_expires_at")

    def release(self, job_id: str, owner: str, error: BaseException, now: datetime) -> bool:
        """RUNNING -> PENDING after a transient error, keeping the error for the record."""
        values = {**_error_values(error, now), "job_status": PENDING}
        return self._finish(job_id, owner, values, remove="lease_expires_at")

    def dead_letter_claimed(self, job_id: str, owner: str, error: BaseException, now: datetime) -> bool:
        """RUNNING -> DEAD_LETTERED: the last delivery failed transiently; its message moves to the DLQ."""
        values = {
            **_error_values(error, now),
            "job_status": DEAD_LETTERED,
            "dead_lettered_at": iso(now),
            "finished_at": iso(now),
        }
        return self._finish(job_id, owner, values, remove="lease_expires_at")

    def dead_letter(self, ref: ObjectRef, dataset: str, reason: str, now: datetime) -> bool:
        """Mark the job of a message that is in (or on its way to) the DLQ; False if nothing was changed.

        A missing record is created DEAD_LETTERED; a PENDING record, or a RUNNING one whose lease ran out,
        becomes DEAD_LETTERED with its last error kept in the reason. A live lease or a terminal state is left
        alone.
        """
        stamp = iso(now)
        fresh = {**self.new_item(ref, dataset, now, DEAD_LETTERED), **_error_values(reason, now, "RetriesExhausted")}
        if self._put_new({**fresh, "dead_lettered_at": stamp, "finished_at": stamp}):
            return True
        current = self.get(ref.job_id) or {}
        last = current.get("error_message")
        message = f"{reason}; last error: {current.get('error_type')}: {last}" if last else reason
        try:
            self._table.update_item(
                Key={"job_id": ref.job_id},
                UpdateExpression=(
                    "SET job_status = :dead, error_type = :type, error_message = :message, updated_at = :now, "
                    "dead_lettered_at = :now, finished_at = :now REMOVE lease_expires_at"
                ),
                ConditionExpression=("job_status = :pending OR (job_status = :running AND lease_expires_at < :epoch)"),
                ExpressionAttributeValues={
                    ":dead": DEAD_LETTERED,
                    ":pending": PENDING,
                    ":running": RUNNING,
                    ":type": "RetriesExhausted",
                    ":message": message[:MAX_ERROR_MESSAGE],
                    ":now": stamp,
                    ":epoch": int(now.timestamp()),
                },
            )
        except ClientError as error:
            if _is_condition_failure(error):
                return False
            raise
        return True
