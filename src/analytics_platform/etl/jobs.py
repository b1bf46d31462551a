"""Job records in DynamoDB: one per object version, moved between states with conditional writes only.

States: ``PENDING -> RUNNING -> SUCCEEDED | FAILED | DEAD_LETTERED | SUPERSEDED | DELETED`` (and
``SUCCEEDED -> SUPERSEDED | DELETED`` when a newer version of the key becomes current or the key is deleted, see
:mod:`.latest` and :mod:`.outputs`); ``RUNNING -> PENDING`` after a transient error (the message is redelivered);
``SUPERSEDED | DELETED -> PENDING`` when deleting the version above it makes the version current again
(:mod:`.outputs`). Rules the conditions enforce:

* A job is created once (``attribute_not_exists``). A redelivered event for a SUCCEEDED or FAILED job is a no-op.
* Claiming sets RUNNING with an owner (the SQS message id) and a lease that ends :data:`LEASE_MARGIN_SECONDS`
  after the invocation's deadline. The configuration makes the queue's visibility timeout longer than that,
  so when SQS shows the message again the lease has run out and the new delivery takes the job over. The same
  message may always take its own lease back; another owner's live lease means "retry later", never "done".
* ``DEAD_LETTERED`` is terminal for the upload but not final for the object version: a later delivery of it
  (a DLQ redrive, a duplicate event) claims it again.
* ``FAILED | DEAD_LETTERED -> PENDING`` happens only on purpose, by ``tap jobs retry`` through
  :func:`.job_transitions.requeue`: it moves the previous outcome into the ``history`` list and counts ``retries``
  up, and the retry re-queues the version's event; the claim then takes the PENDING job as any new delivery's,
  with ``attempts`` counting on.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from analytics_platform.etl.events import ObjectRef
from analytics_platform.etl.exceptions import JobAlreadyFinishedError, JobInProgressError
from analytics_platform.etl.job_values import (
    DAY_INDEX,
    DEAD_LETTERED,
    DELETED,
    FAILED,
    FINISHED,
    MAX_ERROR_MESSAGE,
    PENDING,
    RUNNING,
    STATUS_INDEX,
    SUCCEEDED,
    SUPERSEDED,
    TERMINAL,
    JobResult,
    JobStatus,
    delivery_owner,
    error_values,
    is_condition_failure,
    iso,
    lease_expiry,
    result_values,
)

__all__ = [
    "DAY_INDEX", "DEAD_LETTERED", "DELETED", "FAILED", "FINISHED", "PENDING", "RUNNING", "STATUS_INDEX", "SUCCEEDED",
    "SUPERSEDED", "TERMINAL", "JobResult", "JobStatus", "JobTracker", "delivery_owner", "iso", "lease_expiry",
]  # fmt: skip


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
            # What a retry's event carries again: S3's order of the upload, and (versioning suspended) its ETag.
            **({"input_sequencer": ref.sequencer} if ref.sequencer else {}),
            **({"input_etag": ref.etag} if ref.etag else {}),
        }

    def ensure(self, ref: ObjectRef, dataset: str, now: datetime) -> None:
        """Create the PENDING record if this object version has none yet."""
        self._put_new(self.new_item(ref, dataset, now))

    def _put_new(self, item: dict[str, Any]) -> bool:
        try:
            self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(job_id)")
        except ClientError as error:
            if not is_condition_failure(error):
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
            if not is_condition_failure(error):
                raise
            current = self.get(job_id) or {}
            status = current.get("job_status")
            if status in FINISHED:
                raise JobAlreadyFinishedError(f"job {job_id} already {status}", str(status)) from None
            lease = int(current.get("lease_expires_at", epoch))
            raise JobInProgressError(
                f"job {job_id} is {status} under another delivery ({current.get('job_owner')}) until its lease "
                f"ends in {max(0, lease - epoch)} s",
                retry_after_seconds=max(1, lease - epoch + 1),
            ) from None
        return dict(response["Attributes"])

    @staticmethod
    def _finish_update(job_id: str, owner: str, values: dict[str, Any], remove: str = "") -> dict[str, Any]:
        """The conditional update that ends a RUNNING job held by ``owner``."""
        expression = "SET " + ", ".join(f"#{key} = :{key}" for key in values)
        if remove:
            expression += f" REMOVE {remove}"
        return {
            "Key": {"job_id": job_id},
            "UpdateExpression": expression,
            "ConditionExpression": "job_status = :expected_status AND job_owner = :expected_owner",
            "ExpressionAttributeNames": {f"#{key}": key for key in values},
            "ExpressionAttributeValues": {
                **{f":{key}": value for key, value in values.items()},
                ":expected_status": RUNNING,
                ":expected_owner": owner,
            },
        }

    def _finish(self, job_id: str, owner: str, values: dict[str, Any], remove: str = "") -> bool:
        try:
            self._table.update_item(**self._finish_update(job_id, owner, values, remove))
        except ClientError as error:
            if is_condition_failure(error):
                return False  # the lease was taken over; the new owner records the outcome
            raise
        return True

    def succeed_current(
        self, job_id: str, owner: str, result: JobResult, started: datetime, now: datetime, pointer: dict[str, str],
        extra: list[dict[str, Any]] = (),  # type: ignore[assignment]
    ) -> str:  # fmt: skip
        """RUNNING -> SUCCEEDED, in one transaction with a check that the job is still its key's current version
        (and the ``extra`` writes: the dataset's schema counts).

        Returns ``"ok"``, ``"superseded"`` (a newer version took over: nothing written), ``"lost"`` (another
        delivery holds the job now) or ``"retry"`` (an ``extra`` write's condition failed: read and try again).
        """
        values = {**result_values(result, started, now), "job_status": SUCCEEDED}
        update = self._finish_update(job_id, owner, values, remove="lease_expires_at, error_type, error_message")
        check = {
            "Key": pointer,
            "ConditionExpression": "current_job = :me",
            "ExpressionAttributeValues": {":me": job_id},
        }
        # The resource's client takes plain Python values, as the Table does (boto3 serializes them).
        update["TableName"] = check["TableName"] = self._table.name
        return self._transact(self._table, [{"Update": update}, {"ConditionCheck": check}, *extra])

    @staticmethod
    def _transact(table: Any, items: list[dict[str, Any]]) -> str:
        """Run a transaction whose first item is the job's, second the pointer check; see :meth:`succeed_current`."""
        try:
            table.meta.client.transact_write_items(TransactItems=items)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
            if reasons and reasons[0] == "ConditionalCheckFailed":
                return "lost"
            if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                return "superseded"
            if any(code == "ConditionalCheckFailed" for code in reasons[2:]):
                return "retry"
            raise
        return "ok"

    def supersede_claimed(
        self, job_id: str, owner: str, by: str, result: JobResult, started: datetime, now: datetime,
        status: str = SUPERSEDED,
    ) -> bool:  # fmt: skip
        """RUNNING -> SUPERSEDED (a newer version of the key is current) or DELETED (the key was deleted meanwhile);
        ``by`` names what is current instead. Nothing of this job was ever visible."""
        values = {**result_values(result, started, now), "job_status": status, "superseded_by": by,
                  "superseded_at": iso(now)}  # fmt: skip
        return self._finish(job_id, owner, values, remove="lease_expires_at, error_type, error_message")

    def fail(
        self, job_id: str, owner: str, error: BaseException, result: JobResult, started: datetime, now: datetime
    ) -> bool:
        """RUNNING -> FAILED with the reason (permanent errors only)."""
        values = {**result_values(result, started, now), **error_values(error, now), "job_status": FAILED}
        return self._finish(job_id, owner, values, remove="lease_expires_at")

    def release(self, job_id: str, owner: str, error: BaseException, now: datetime) -> bool:
        """RUNNING -> PENDING after a transient error, keeping the error for the record."""
        values = {**error_values(error, now), "job_status": PENDING}
        return self._finish(job_id, owner, values, remove="lease_expires_at")

    def dead_letter_claimed(self, job_id: str, owner: str, error: BaseException, now: datetime) -> bool:
        """RUNNING -> DEAD_LETTERED: the last delivery failed transiently; its message moves to the DLQ."""
        values = {
            **error_values(error, now),
            "job_status": DEAD_LETTERED,
            "dead_lettered_at": iso(now),
            "finished_at": iso(now),
        }
        return self._finish(job_id, owner, values, remove="lease_expires_at")

    def dead_letter(
        self, ref: ObjectRef, dataset: str, reason: str, now: datetime, sent_at: datetime | None = None
    ) -> bool:
        """Mark the job of a message that is in (or on its way to) the DLQ; False if nothing was changed.

        A missing record is created DEAD_LETTERED; a PENDING record, or a RUNNING one whose lease ran out,
        becomes DEAD_LETTERED with its last error kept in the reason. A live lease or a terminal state is left
        alone, and so is a job re-queued by ``tap jobs retry`` after the message was first sent (``sent_at``): the
        old message is not the retry's, whose own delivery decides.
        """
        stamp = iso(now)
        fresh = {**self.new_item(ref, dataset, now, DEAD_LETTERED), **error_values(reason, now, "RetriesExhausted")}
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
                ConditionExpression=(
                    "(job_status = :pending OR (job_status = :running AND lease_expires_at < :epoch)) "
                    "AND (attribute_not_exists(retried_at) OR retried_at < :sent)"
                ),
                ExpressionAttributeValues={
                    ":sent": iso(sent_at or now),
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
            if is_condition_failure(error):
                return False
            raise
        return True
