"""Where a job's Parquet lives and when its rows are visible: staged, promoted, retired, reinstated.

The worker uploads a job's Parquet to ``staging/`` (outside every table's location: nothing reads it). Only once
the job's record says SUCCEEDED, in the same transaction that checks the job is its key's current version, is the
file *promoted*: copied to its place under ``processed/`` (the table's location), ``promoted_at`` recorded, the
staged copy removed. So no row is ever visible for a job that is not SUCCEEDED; a crash before the promotion
leaves a SUCCEEDED job whose rows are not visible yet, which the next delivery of its message (or the
reconciliation, :mod:`.reconcile`) promotes.

Retiring a job (a newer version became current, or the key was deleted) deletes its Parquet, moves its record from
SUCCEEDED to SUPERSEDED / DELETED, and deletes the Parquet once more (bucket versioning keeps it recoverable). A
crash after the first delete leaves rows missing, never rows too many; a promotion racing with the retirement
either finds the record no longer SUCCEEDED and removes its own copy, or copied before the second delete, which
removes it. Every step is idempotent.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from analytics_platform.etl.catalog import DatasetCatalog, written_columns
from analytics_platform.etl.exceptions import TransientError
from analytics_platform.etl.job_values import PENDING, RETIRED, SUCCEEDED, is_condition_failure, iso
from analytics_platform.etl.settings import STAGING_PREFIX

MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
MAX_ATTEMPTS = 20


def split_uri(uri: str) -> tuple[str, str]:
    """(bucket, key) of ``s3://bucket/key``."""
    parts = urlsplit(uri)
    return parts.netloc, parts.path.lstrip("/")


class Outputs:
    """The outputs of one region's jobs (an S3 client and the job table, injected)."""

    def __init__(
        self, *, s3: Any, table: Any, processed_prefix: str, clock: Callable[[], datetime],
        staging_prefix: str = STAGING_PREFIX, catalog: DatasetCatalog | None = None,
    ) -> None:  # fmt: skip
        """``catalog``: the datasets' schemas, whose counts a retirement updates (None: no catalog)."""
        self._catalog = catalog
        self._s3 = s3
        self._table = table
        self._processed = processed_prefix
        self._staging = staging_prefix
        self._clock = clock

    def staging_key(self, output_key: str) -> str:
        """Where the Parquet of ``output_key`` (under ``processed/``) waits until its job is SUCCEEDED."""
        return self._staging + output_key.removeprefix(self._processed)

    def _get(self, job_id: str) -> dict[str, Any]:
        return self._table.get_item(Key={"job_id": job_id}, ConsistentRead=True).get("Item") or {}

    def _delete(self, uri: str | None, prefix: str) -> None:
        if not uri:
            return
        bucket, key = split_uri(uri)
        if key.startswith(prefix):  # never anything but an output or a staged output
            self._s3.delete_object(Bucket=bucket, Key=key)

    def promote(self, job_id: str) -> bool:
        """Make a SUCCEEDED job's rows visible (False: nothing to do: not SUCCEEDED, or promoted already)."""
        record = self._get(job_id)
        output, staging = record.get("output_uri"), record.get("staging_uri")
        if record.get("job_status") != SUCCEEDED or record.get("promoted_at") or not output or not staging:
            return False
        bucket, key = split_uri(str(output))
        staging_bucket, staging_key = split_uri(str(staging))
        try:
            self._s3.copy_object(
                Bucket=bucket, Key=key, CopySource={"Bucket": staging_bucket, "Key": staging_key},
                MetadataDirective="COPY",
            )  # fmt: skip
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code")) not in MISSING or not self._exists(bucket, key):
                raise TransientError(f"promoting job {job_id}'s output failed: {error}") from error
            # the staged copy is gone because an earlier promotion already copied it and crashed before recording
        if not self._mark_promoted(job_id):
            self._delete(str(output), self._processed)  # retired meanwhile: its rows must not show
            return True
        self._delete(str(staging), self._staging)
        if self._get(job_id).get("job_status") != SUCCEEDED:  # retired between the mark and now
            self._delete(str(output), self._processed)
        return True

    def _exists(self, bucket: str, key: str) -> bool:
        try:
            self._s3.head_object(Bucket=bucket, Key=key)
        except ClientError:
            return False
        return True

    def _mark_promoted(self, job_id: str) -> bool:
        try:
            self._table.update_item(
                Key={"job_id": job_id}, UpdateExpression="SET promoted_at = :now",
                ConditionExpression="job_status = :succeeded",
                ExpressionAttributeValues={":now": iso(self._clock()), ":succeeded": SUCCEEDED},
            )  # fmt: skip
        except ClientError as error:
            if is_condition_failure(error):
                return False
            raise
        return True

    def retire(self, job_id: str, *, by: str, status: str) -> bool:
        """SUCCEEDED -> ``status`` (SUPERSEDED / DELETED, ``by`` naming why), then delete its output and staged
        copy. A job retired already has its files deleted again (a crash may have come between); any other state
        is left alone (a running job retires itself). True if the job is retired now."""
        record = self._get(job_id)
        state = record.get("job_status")
        if state == SUCCEEDED:
            self._delete(record.get("output_uri"), self._processed)
            if self._mark_retired(record, by=by, status=status):
                state = status
            else:
                record = self._get(job_id)
                state = record.get("job_status")
        if state not in RETIRED:
            return False
        self._delete(record.get("output_uri"), self._processed)
        self._delete(record.get("staging_uri"), self._staging)
        return True

    def _mark_retired(self, record: dict[str, Any], *, by: str, status: str) -> bool:
        """SUCCEEDED -> ``status``, with the job's columns taken out of its dataset's schema counts in the same
        transaction (so exactly once); then the dataset's table follows. False: the job was no longer SUCCEEDED."""
        job_id, dataset = str(record["job_id"]), str(record.get("dataset", ""))
        update = {
            "TableName": self._table.name, "Key": {"job_id": job_id},
            "UpdateExpression": "SET job_status = :status, superseded_by = :by, superseded_at = :now, "
            "updated_at = :now",
            "ConditionExpression": "job_status = :succeeded",
            "ExpressionAttributeValues": {":status": status, ":by": by, ":now": iso(self._clock()),
                                          ":succeeded": SUCCEEDED},
        }  # fmt: skip
        columns = written_columns(record.get("output_schema", []))
        for _ in range(MAX_ATTEMPTS):
            extra = [self._catalog.counting_update(dataset, columns, -1)] if self._catalog and columns else []
            try:
                self._table.meta.client.transact_write_items(TransactItems=[{"Update": update}, *extra])
            except ClientError as error:
                reasons = [r.get("Code") for r in error.response.get("CancellationReasons", []) or []]
                if not reasons:
                    raise
                if reasons[0] == "ConditionalCheckFailed":
                    return False
                if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                    continue  # the schema changed meanwhile: read it again
                raise
            if self._catalog is not None and columns:
                self._catalog.publish(dataset)
            return True
        raise TransientError(f"the {dataset!r} schema kept changing under concurrent jobs; retrying")

    def reopen(self, job_id: str, reason: str) -> bool:
        """SUPERSEDED / DELETED -> PENDING: the version is current again (the one above it was deleted for good).
        The previous ending goes into ``history``; the next claim processes the version as new."""
        record = self._get(job_id)
        status = record.get("job_status")
        if status not in RETIRED:
            return False
        now = iso(self._clock())
        entry = {"status": status, "reopened_at": now, "reason": reason,
                 "superseded_by": str(record.get("superseded_by", "")),
                 "ended_at": str(record.get("finished_at", ""))}  # fmt: skip
        try:
            self._table.update_item(
                Key={"job_id": job_id},
                UpdateExpression="SET job_status = :pending, updated_at = :now, #history = "
                "list_append(if_not_exists(#history, :empty), :entry) REMOVE superseded_by, superseded_at, "
                "promoted_at",
                ConditionExpression="job_status = :was",
                ExpressionAttributeNames={"#history": "history"},
                ExpressionAttributeValues={
                    ":pending": PENDING,
                    ":now": now,
                    ":empty": [],
                    ":entry": [entry],
                    ":was": status,
                },
            )
        except ClientError as error:
            if is_condition_failure(error):
                return False
            raise
        return True
