"""The transitions of a job record an operator makes on purpose (``tap jobs retry``), next to the worker's own in
:class:`~analytics_platform.etl.jobs.JobTracker`.

* :func:`requeue`: ``FAILED | DEAD_LETTERED -> PENDING``. The previous outcome moves into the record's ``history``
  (one :func:`history_entry`), ``retries`` counts up, the previous outcome's fields (:data:`CLEARED_FIELDS`) are
  removed and ``retried_at`` is stamped; the worker's claim then takes the PENDING job as any new delivery's, with
  ``attempts`` counting on. With ``resend``, a job a retry left PENDING (:func:`left_pending_by_retry`) only gets
  a new ``retried_at``.
* :func:`put_back`: the record exactly as it was read, when the retry's message could not be sent.

Both are conditional writes on a boto3 ``Table``: :func:`requeue` only while the record is as it was read (so of
two concurrent retries of one job exactly one writes), :func:`put_back` only while the record is still the PENDING
one that retry wrote.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from analytics_platform.etl.job_values import PENDING, is_condition_failure, iso

#: Fields of the previous outcome that a retry moves into ``history`` and removes from the record, so the new
#: outcome never shows a stale error, end time or quarantine file.
CLEARED_FIELDS = ("error_type", "error_message", "finished_at", "dead_lettered_at", "duration_ms", "quarantine_uri")


def history_entry(item: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The previous outcome as one ``history`` element."""
    entry: dict[str, Any] = {"status": item.get("job_status"), "attempts": item.get("attempts", 0),
                             "retried_at": iso(now)}  # fmt: skip
    ended = item.get("finished_at") or item.get("dead_lettered_at")
    for name, value in (
        ("error_type", item.get("error_type")), ("error_message", item.get("error_message")), ("ended_at", ended),
        ("updated_at", item.get("updated_at")), ("quarantine_uri", item.get("quarantine_uri")),
    ):  # fmt: skip
        if value is not None:
            entry[name] = value
    return entry


def left_pending_by_retry(item: dict[str, Any]) -> bool:
    """A PENDING job whose last retry no delivery has claimed yet (a claim counts ``attempts`` up)."""
    history = item.get("history") or []
    return bool(history) and "retried_at" in item and history[-1].get("attempts") == item.get("attempts", 0)


def _read_condition(item: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A condition that holds only while status, attempts, retries and retried_at are what ``item`` says."""
    values: dict[str, Any] = {":was_status": item["job_status"], ":was_attempts": item.get("attempts", 0)}
    condition = "job_status = :was_status AND "
    condition += "attempts = :was_attempts" if "attempts" in item else "attribute_not_exists(attempts)"
    if "retries" in item:
        condition += " AND #retries = :was_retries"
        values[":was_retries"] = item["retries"]
    else:
        condition += " AND attribute_not_exists(#retries)"
    if "retried_at" in item:  # two retries resending one PENDING job: the first one's new stamp stops the second
        condition += " AND retried_at = :was_retried_at"
        values[":was_retried_at"] = item["retried_at"]
    return condition, values


def requeue(table: Any, item: dict[str, Any], now: datetime, *, resend: bool) -> dict[str, Any] | None:
    """Mark the job read as ``item`` PENDING for a retry (``resend``: only a new ``retried_at``), conditionally on
    the record being still as read; the new record, or None if the write lost (the job changed meanwhile)."""
    condition, values = _read_condition(item)
    values.update({":pending": PENDING, ":now": iso(now)})
    names = {"#retries": "retries"}
    if resend:
        expression = "SET job_status = :pending, retried_at = :now, updated_at = :now"
    else:
        names["#history"] = "history"
        values.update({":entry": [history_entry(item, now)], ":empty": [], ":one": 1})
        expression = (
            "SET job_status = :pending, retried_at = :now, updated_at = :now, "
            "#history = list_append(if_not_exists(#history, :empty), :entry) "
            f"REMOVE {', '.join(CLEARED_FIELDS)}, job_owner, lease_expires_at ADD #retries :one"
        )
    try:
        response = table.update_item(
            Key={"job_id": item["job_id"]}, UpdateExpression=expression, ConditionExpression=condition,
            ExpressionAttributeNames=names, ExpressionAttributeValues=values, ReturnValues="ALL_NEW",
        )  # fmt: skip
    except ClientError as error:
        if is_condition_failure(error):
            return None
        raise
    return dict(response["Attributes"])


def put_back(table: Any, item: dict[str, Any], *, stamp: str) -> bool:
    """Restore the record read as ``item``, if it is still the PENDING one a :func:`requeue` stamped ``stamp``
    wrote; False if not (or the write failed)."""
    try:
        table.put_item(
            Item=item,
            ConditionExpression="job_status = :pending AND retried_at = :stamp AND attempts = :attempts",
            ExpressionAttributeValues={":pending": PENDING, ":stamp": stamp, ":attempts": item.get("attempts", 0)},
        )
    except ClientError as error:
        if is_condition_failure(error):
            return False  # a delivery took it meanwhile: its message did arrive after all
        raise
    except BotoCoreError:
        return False
    return True
