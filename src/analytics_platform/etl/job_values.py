"""The values of job records: states, the table's key and index names, the result of a transform, and the
attributes each write sets.

The one place these are defined: the worker (:mod:`.jobs`), the stack's table
(:mod:`analytics_platform.infra.constructs.job_table`) and the commands all import them from here. Light on
purpose (no boto3 / botocore at import time): the stack and the CLI's parser import it too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from analytics_platform.etl.settings import LEASE_MARGIN_SECONDS

if TYPE_CHECKING:
    from botocore.exceptions import ClientError

MAX_ERROR_MESSAGE = 2000

#: The table's partition key: one record per object version.
JOB_KEY = "job_id"
#: Index names and their (hash, range) keys: jobs by day + time, by status + time.
DAY_INDEX = "by-day"
DAY_INDEX_KEYS = ("job_day", "created_at")
STATUS_INDEX = "by-status"
STATUS_INDEX_KEYS = ("job_status", "created_at")


class JobStatus(StrEnum):
    """A job record's ``job_status``."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    DEAD_LETTERED = "DEAD_LETTERED"
    SUPERSEDED = "SUPERSEDED"
    #: The version was deleted from raw/ (a delete marker, or deleted for good): its rows left the query results.
    DELETED = "DELETED"


PENDING, RUNNING, SUCCEEDED, FAILED, DEAD_LETTERED, SUPERSEDED, DELETED = (s.value for s in JobStatus)
#: States a job ends in; a record in any other state still has a message that will come back.
TERMINAL = frozenset({SUCCEEDED, FAILED, DEAD_LETTERED, SUPERSEDED, DELETED})
#: States a redelivery never reprocesses.
FINISHED = frozenset({SUCCEEDED, FAILED, SUPERSEDED, DELETED})
#: States whose output was retired: no rows of theirs are visible.
RETIRED = frozenset({SUPERSEDED, DELETED})
#: States ``tap jobs retry`` re-queues (by id or by ``--status``).
RETRYABLE = frozenset({FAILED, DEAD_LETTERED})


def settled(record: dict[str, Any]) -> bool:
    """Terminal, and if SUCCEEDED, its rows visible (``promoted_at``: the Parquet is in the table's location)."""
    status = record.get("job_status")
    return status in TERMINAL and (status != SUCCEEDED or bool(record.get("promoted_at")))


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
    #: Where the Parquet is visible once promoted (under the table's location) and where it waits until then.
    output_uri: str | None = None
    staging_uri: str | None = None
    quarantine_uri: str | None = None
    schema: list[str] = field(default_factory=list)


def is_condition_failure(error: ClientError) -> bool:
    """Whether a DynamoDB write was refused by its condition (the record is not in the state it expected)."""
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def error_values(error: BaseException | str, now: datetime, error_type: str | None = None) -> dict[str, Any]:
    message = str(error) or type(error).__name__
    return {
        "error_type": error_type or type(error).__name__,
        "error_message": message[:MAX_ERROR_MESSAGE],
        "updated_at": iso(now),
    }


def result_values(result: JobResult, started: datetime, now: datetime) -> dict[str, Any]:
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
    if result.staging_uri:
        values["staging_uri"] = result.staging_uri
    if result.quarantine_uri:
        values["quarantine_uri"] = result.quarantine_uri
    return values
