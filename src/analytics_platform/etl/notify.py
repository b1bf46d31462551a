"""Job outcomes as EventBridge events: every terminal state, on the region's own default bus.

Like Glue's "Glue Job State Change" events: ``source`` :data:`SOURCE`, ``detail-type`` :data:`DETAIL_TYPE`, the
job's key, version, status, rows and reason in ``detail``. Users subscribe with their own rules (README: job
events). Delivery is at least once: an event is sent after the record is written, and a delivery of the message
that finds the job ended already sends it again, so a consumer de-duplicates on ``(job_id, status)``.
"""

from __future__ import annotations

import json
from typing import Any

from analytics_platform.etl.exceptions import TransientError
from analytics_platform.etl.job_values import TERMINAL

SOURCE = "tap.etl"
DETAIL_TYPE = "ETL Job State Change"
#: Record attributes copied into the event's detail (when present).
DETAIL_FIELDS = (
    "job_id", "job_status", "dataset", "input_bucket", "input_key", "input_version", "rows_in", "rows_out",
    "rows_rejected", "bytes_in", "bytes_out", "output_uri", "quarantine_uri", "error_type", "error_message",
    "superseded_by", "attempts", "finished_at", "region",
)  # fmt: skip


def job_detail(record: dict[str, Any]) -> dict[str, Any]:
    """The event detail of a job record: its fields, numbers as numbers, ``status`` and ``reason`` spelled out."""
    detail: dict[str, Any] = {}
    for name in DETAIL_FIELDS:
        value = record.get(name)
        if value is None:
            continue
        detail[name] = int(value) if type(value).__name__ == "Decimal" else value
    detail["status"] = record.get("job_status")
    reason = record.get("error_message") or (f"superseded by {record['superseded_by']}"
                                             if record.get("superseded_by") else "")  # fmt: skip
    if reason:
        detail["reason"] = reason
    return detail


class JobEvents:
    """Puts job state events on one region's bus (``events``: that region's EventBridge client)."""

    def __init__(self, events: Any, *, bus: str) -> None:
        self._events = events
        self._bus = bus

    def publish(self, record: dict[str, Any]) -> bool:
        """Send the event of a terminal job (False: not terminal, nothing sent); raises TransientError if
        EventBridge did not take it."""
        if record.get("job_status") not in TERMINAL:
            return False
        entry = {"Source": SOURCE, "DetailType": DETAIL_TYPE, "EventBusName": self._bus,
                 "Detail": json.dumps(job_detail(record), default=str)}  # fmt: skip
        try:
            response = self._events.put_events(Entries=[entry])
        except Exception as error:  # any failure: the message is delivered again
            raise TransientError(f"publishing the job's state event failed: {error}") from error
        if response.get("FailedEntryCount"):
            failure = (response.get("Entries") or [{}])[0]
            raise TransientError(f"EventBridge refused the job's state event: {failure.get('ErrorMessage', failure)}")
        return True
