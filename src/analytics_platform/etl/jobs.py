"""Job records in DynamoDB, moved PENDING -> RUNNING -> SUCCEEDED | FAILED with conditional writes.

* A job is created once (``attribute_not_exists``); a redelivered event for a finished job is a no-op.
* Claiming sets RUNNING with an owner and a lease; a RUNNING job whose lease ran out (its invocation
  timed out or crashed) can be taken over. Every claim counts one attempt.
* A transient failure hands the job back to PENDING with the error, so the next delivery can claim it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from analytics_platform.etl.events import ObjectRef
from analytics_platform.etl.exceptions import JobAlreadyFinishedError, JobInProgressError

PENDING, RUNNING, SUCCEEDED, FAILED = "PENDING", "RUNNING", "SUCCEEDED", "FAILED"
FINISHED = frozenset({SUCCEEDED, FAILED})
#: Index names and keys, equal to the stack's (a unit test keeps them in step).
DAY_INDEX = "by-day"
STATUS_INDEX = "by-status"
MAX_ERROR_MESSAGE = 2000


def iso(moment: datetime) -> str:
    """UTC ISO-8601 with milliseconds: sorts lexicographically in time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


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


class JobTracker:
    """Reads and writes job records of one region's table (a boto3 ``Table`` resource, injected)."""

    def __init__(self, table: Any, *, region: str) -> None:
        self._table = table
        self._region = region

    def get(self, job_id: str) -> dict[str, Any] | None:
        """The record, or None."""
        return self._table.get_item(Key={"job_id": job_id}, ConsistentRead=True).get("Item")

    def ensure(self, ref: ObjectRef, dataset: str, now: datetime) -> None:
        """Create the PENDING record if this object version has none yet."""
        created = iso(now)
        item = {
            "job_id": ref.job_id,
            "job_status": PENDING,
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
        try:
            self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(job_id)")
        except ClientError as error:
            if not _is_condition_failure(error):
                raise

    def claim(self, job_id: str, owner: str, now: datetime, lease_seconds: int) -> dict[str, Any]:
        """Move the job to RUNNING for ``owner``; raises if finished or leased by someone else."""
        stamp = iso(now)
        try:
            response = self._table.update_item(
                Key={"job_id": job_id},
                UpdateExpression=(
                    "SET job_status = :running, job_owner = :owner, lease_expires_at = :lease, "
                    "started_at = :now, updated_at = :now ADD attempts :one"
                ),
                ConditionExpression=(
                    "attribute_exists(job_id) AND (job_status = :pending OR "
                    "(job_status = :running AND lease_expires_at < :epoch))"
                ),
                ExpressionAttributeValues={
                    ":running": RUNNING,
                    ":pending": PENDING,
                    ":owner": owner,
                    ":lease": int(now.timestamp()) + lease_seconds,
                    ":epoch": int(now.timestamp()),
                    ":now": stamp,
                    ":one": 1,
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
            raise JobInProgressError(f"job {job_id} is {status} under another invocation") from None
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
        values = self._result_values(result, started, now)
        values.update({"job_status": SUCCEEDED})
        return self._finish(job_id, owner, values, remove="lease_expires_at, error_type, error_message")

    def fail(
        self,
        job_id: str,
        owner: str,
        error: BaseException,
        result: JobResult | None,
        started: datetime,
        now: datetime,
    ) -> bool:
        """RUNNING -> FAILED with the reason (permanent errors only)."""
        values = self._result_values(result, started, now) if result else {
            "finished_at": iso(now), "updated_at": iso(now),
            "duration_ms": int((now - started).total_seconds() * 1000),
        }  # fmt: skip
        values.update(self._error_values(error, now))
        values["job_status"] = FAILED
        return self._finish(job_id, owner, values, remove="lease_expires_at")

    def release(self, job_id: str, owner: str, error: BaseException, now: datetime) -> bool:
        """RUNNING -> PENDING after a transient error, keeping the error for the record."""
        values = self._error_values(error, now)
        values["job_status"] = PENDING
        return self._finish(job_id, owner, values, remove="lease_expires_at")

    @staticmethod
    def _error_values(error: BaseException, now: datetime) -> dict[str, Any]:
        message = str(error) or type(error).__name__
        return {
            "error_type": type(error).__name__,
            "error_message": message[:MAX_ERROR_MESSAGE],
            "updated_at": iso(now),
        }

    @staticmethod
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
