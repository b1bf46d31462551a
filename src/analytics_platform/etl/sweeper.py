"""The dead-letter sweep: every message in the DLQ gets a DEAD_LETTERED job record.

The worker marks a job DEAD_LETTERED itself when its last delivery fails. A message can still reach the DLQ
with its job PENDING, RUNNING or not recorded at all: its last delivery was killed (timeout, memory), crashed
before reaching the record, or was throttled until SQS counted it out. The sweep, run on a schedule, reads the
DLQ without deleting anything, marks those jobs, and puts the messages back as they were (visible), so the DLQ
alarm, ``tap jobs`` and a later redrive see them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from analytics_platform.etl.events import ObjectRef
from analytics_platform.etl.exceptions import MalformedMessageError
from analytics_platform.etl.jobs import JobTracker

#: Seconds a message stays hidden while one sweep reads the DLQ (it is made visible again at the end).
READ_VISIBILITY_SECONDS = 60
MAX_MESSAGES_PER_SWEEP = 2000
#: Long polling: a short poll asks only some of SQS's servers and can answer empty while messages wait, which
#: would end the sweep early; a long poll asks them all.
RECEIVE_WAIT_SECONDS = 1


@dataclass
class SweepReport:
    """What one sweep saw and did."""

    messages: int = 0
    marked: int = 0
    malformed: int = 0
    marked_jobs: list[str] = field(default_factory=list)


def sweep_dead_letters(
    *,
    sqs: Any,
    dlq_url: str,
    jobs: JobTracker,
    parse: Callable[[str], ObjectRef],
    dataset_of: Callable[[str], str],
    clock: Callable[[], datetime],
    max_messages: int = MAX_MESSAGES_PER_SWEEP,
) -> SweepReport:
    """Mark the job of every DLQ message DEAD_LETTERED (where it is not already terminal)."""
    report = SweepReport()
    handles: list[str] = []
    seen: set[str] = set()
    try:
        while report.messages < max_messages:
            response = sqs.receive_message(
                QueueUrl=dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=RECEIVE_WAIT_SECONDS,
                VisibilityTimeout=READ_VISIBILITY_SECONDS, AttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
            )  # fmt: skip
            messages = [m for m in response.get("Messages", []) if m["MessageId"] not in seen]
            if not messages:
                break
            for message in messages:
                seen.add(message["MessageId"])
                handles.append(message["ReceiptHandle"])
                report.messages += 1
                try:
                    ref = parse(message["Body"])
                except MalformedMessageError:
                    report.malformed += 1
                    continue
                if ref.is_folder_marker:  # the worker records no job for a folder; neither does the sweep
                    continue
                reason = "retries exhausted: the message is in the dead-letter queue"
                if ref.is_deletion:  # no job: the deletion is applied again when the message is redriven
                    continue
                if jobs.dead_letter(ref, dataset_of(ref.key), reason, clock(), _sent_at(message)):
                    report.marked += 1
                    report.marked_jobs.append(ref.job_id)
    finally:
        _make_visible(sqs, dlq_url, handles)
    return report


def _sent_at(message: dict[str, Any]) -> datetime | None:
    """When the message was first sent (SQS keeps it through the move to the DLQ)."""
    sent = message.get("Attributes", {}).get("SentTimestamp")
    return datetime.fromtimestamp(int(sent) / 1000, UTC) if sent else None


def _make_visible(sqs: Any, queue_url: str, handles: list[str]) -> None:
    for start in range(0, len(handles), 10):
        entries = [
            {"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": 0}
            for index, handle in enumerate(handles[start : start + 10])
        ]
        sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)
