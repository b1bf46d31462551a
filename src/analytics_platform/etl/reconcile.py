"""Reconciliation, run with every dead-letter sweep: ``processed/`` holds exactly the current SUCCEEDED jobs' files.

A crash can leave three kinds of disagreement behind, each repaired here and counted in a metric:

* a SUCCEEDED job whose Parquet was never promoted (the crash came between the record and the copy): promoted;
* a SUCCEEDED job that is no longer its key's current state (the crash came between moving the key's pointer and
  retiring it, and the newer job's message is gone): retired, as the newer job would have;
* an *orphan*: a file under ``processed/`` that no current SUCCEEDED job names (a promotion racing with a
  retirement, a file put there by hand): deleted (bucket versioning keeps it recoverable). Before a file is
  deleted, its job's record is read consistently (the status index is eventually consistent).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote

from boto3.dynamodb.conditions import Key

from analytics_platform.etl import latest
from analytics_platform.etl.events import ObjectRef
from analytics_platform.etl.job_values import DELETED, STATUS_INDEX, SUCCEEDED, SUPERSEDED
from analytics_platform.etl.outputs import Outputs

#: A SUCCEEDED job is promoted by its own delivery within seconds; reconciliation leaves it that long first.
PROMOTION_GRACE = timedelta(seconds=60)


@dataclass
class ReconcileReport:
    """What one reconciliation repaired."""

    promoted: int = 0
    retired: int = 0
    orphans: int = 0


def succeeded_jobs(table: Any) -> Iterator[dict[str, Any]]:
    """Every SUCCEEDED job (through the by-status index, never a scan)."""
    kwargs: dict[str, Any] = {"IndexName": STATUS_INDEX, "KeyConditionExpression": Key("job_status").eq(SUCCEEDED)}
    while True:
        response = table.query(**kwargs)
        yield from response.get("Items", [])
        if "LastEvaluatedKey" not in response:
            return
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def _ref(record: dict[str, Any]) -> ObjectRef:
    return ObjectRef(str(record.get("input_bucket", "")), str(record.get("input_key", "")),
                     str(record.get("input_version", "")), 0, datetime.now().astimezone(), "")  # fmt: skip


def reconcile(
    *, s3: Any, table: Any, outputs: Outputs, bucket: str, processed_prefix: str, clock: Callable[[], datetime]
) -> ReconcileReport:
    """One pass over the region's SUCCEEDED jobs and ``processed/``."""
    report = ReconcileReport()
    now = clock()
    # Listed before the jobs are read: a file promoted after this listing is not looked at in this pass.
    files = list(_processed_files(s3, bucket, processed_prefix))
    expected: set[str] = set()
    for record in succeeded_jobs(table):
        job_id = str(record["job_id"])
        pointer = latest.read(table, _ref(record))
        if pointer is not None and pointer.current_job != job_id:
            status = DELETED if pointer.state == latest.DELETED else SUPERSEDED
            report.retired += outputs.retire(job_id, by=pointer.describe(), status=status)
            continue
        expected.add(str(record.get("output_uri", "")))
        finished = str(record.get("finished_at", ""))
        if not record.get("promoted_at") and finished and _parse(finished) < now - PROMOTION_GRACE:
            report.promoted += outputs.promote(job_id)
    for key in files:
        uri = f"s3://{bucket}/{key}"
        if uri not in expected and _orphan(s3, table, bucket, key, uri):
            s3.delete_object(Bucket=bucket, Key=key)
            report.orphans += 1
    return report


def _processed_files(s3: Any, bucket: str, prefix: str) -> Iterator[str]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            if not entry["Key"].endswith("/"):
                yield entry["Key"]


def _orphan(s3: Any, table: Any, bucket: str, key: str, uri: str) -> bool:
    """Whether no current SUCCEEDED job names this file, by a consistent read of the job its metadata names."""
    try:
        metadata = s3.head_object(Bucket=bucket, Key=key).get("Metadata", {})
    except Exception:  # gone meanwhile: nothing to delete
        return False
    job_id = unquote(str(metadata.get("job-id", "")))
    if not job_id:
        return True  # not a worker's output at all
    record = table.get_item(Key={"job_id": job_id}, ConsistentRead=True).get("Item") or {}
    return not (record.get("job_status") == SUCCEEDED and record.get("output_uri") == uri)


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
