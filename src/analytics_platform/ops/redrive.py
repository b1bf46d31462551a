"""``tap redrive``: one region's dead-letter queue moved back to its work queue.

It works on ONE region's resources, passed in as boto3 clients (tests use moto); the command that resolves them
and prints the report is :func:`analytics_platform.cli.jobs.redrive_command`.

:func:`redrive` moves every message of the dead-letter queue back to the work queue, by an SQS message move task or
by receive-send-delete (:class:`RedriveMethod`). Their jobs are DEAD_LETTERED, a state a later delivery claims
again (see :mod:`analytics_platform.etl.jobs`), so the worker reprocesses them and the attempt count goes on from
where it was; no job record is written here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from analytics_platform.ops.archived import ArchivedVersion, archived_in_queue, archived_of_message, show_again

#: How long :func:`redrive` waits for an SQS message move task before reporting it as still running.
MOVE_TASK_TIMEOUT_SECONDS = 300.0
MOVE_TASK_POLL_SECONDS = 5.0
#: Seconds a DLQ message stays hidden while it is copied (it reappears by itself if the copy dies).
COPY_VISIBILITY_SECONDS = 120
#: At most this many messages are copied per run (a run more moves the rest).
MAX_COPY_MESSAGES = 100_000
#: States of an SQS message move task (not job states): the one it runs in, and those it ends in. A copy reports
#: in the same words.
TASK_RUNNING = "RUNNING"
TASK_COMPLETED = "COMPLETED"
TASK_FAILED = "FAILED"
TASK_CANCELLED = "CANCELLED"
TASK_DONE = frozenset({TASK_COMPLETED, TASK_FAILED, TASK_CANCELLED})
_ATTRIBUTE_FIELDS = ("DataType", "StringValue", "BinaryValue")


class RedriveMethod(StrEnum):
    """How messages are moved."""

    #: SQS ``StartMessageMoveTask`` (AWS): SQS itself moves them.
    MOVE_TASK = "message-move-task"
    #: Receive, send to the work queue, then delete from the DLQ: for endpoints without move tasks. moto 5.2
    #: (the local platform's endpoint) implements neither ``StartMessageMoveTask`` nor ``ListMessageMoveTasks``.
    COPY = "receive-send-delete"


@dataclass(frozen=True)
class RedriveReport:
    """What one redrive did.

    ``finished`` False means it is still going on (a move task past the timeout) or it stopped early
    (``detail`` says why); ``left_in_dlq`` is the DLQ's approximate message count afterwards (visible and
    in flight), when it could be read.
    """

    method: RedriveMethod
    moved: int
    finished: bool
    status: str
    to_move: int | None = None
    failed: int = 0
    left_in_dlq: int | None = None
    task_handle: str | None = None
    detail: str = ""
    #: Messages left in the DLQ because their upload is archived (each with how to restore it).
    archived: tuple[ArchivedVersion, ...] = ()

    def lines(self, region: str) -> list[str]:
        """A human-readable report."""
        lines = [f"redrive of {region}'s dead-letter queue ({self.method.value}): {self.status}"]
        if self.to_move is not None:
            lines.append(f"  moved {self.moved} of about {self.to_move} message(s) back to the work queue")
        else:
            lines.append(f"  moved {self.moved} message(s) back to the work queue")
        if self.failed:
            lines.append(f"  {self.failed} message(s) could not be sent and stay in the dead-letter queue")
        if self.left_in_dlq:
            lines.append(f"  about {self.left_in_dlq} message(s) are in the dead-letter queue now (arrived meanwhile, "
                         "or held by the dead-letter sweep): run it again to move them")  # fmt: skip
        if self.detail:
            lines.append(f"  {self.detail}")
        again = f"tap redrive --region {region}"
        for version in self.archived:
            where = f"s3://{version.bucket}/{version.key} (version {version.version_id})"
            lines.append(f"  left in the dead-letter queue: {where} is {version.explanation(again)}")
        return lines


def queue_arn(sqs: Any, queue_url: str) -> str:
    """The ARN of a queue."""
    return str(sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def queue_depth(sqs: Any, queue_url: str) -> int:
    """Approximate messages in a queue, visible and in flight."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes.get("ApproximateNumberOfMessages", 0)) + int(
        attributes.get("ApproximateNumberOfMessagesNotVisible", 0)
    )


def redrive(
    sqs: Any, *, queue_url: str, dlq_url: str, method: RedriveMethod,
    timeout_seconds: float = MOVE_TASK_TIMEOUT_SECONDS, poll_seconds: float = MOVE_TASK_POLL_SECONDS,
    sleep: Callable[[float], None] = time.sleep, monotonic: Callable[[], float] = time.monotonic, s3: Any = None,
) -> RedriveReport:  # fmt: skip
    """Move every message of the DLQ ``dlq_url`` back to its work queue ``queue_url`` (one region's ``sqs``).

    With ``s3`` (the region's), a message whose upload is archived in Glacier stays in the DLQ and is reported
    with how to restore it: moved, it would fail on every delivery (GetObject answers ``InvalidObjectState``)
    and come back. A move task cannot leave a message behind, so when the DLQ holds such a message the others
    are copied instead.

    A move task is waited for up to ``timeout_seconds``; past that the report says it is still running (SQS goes
    on moving). The copy never deletes a message before its send succeeded: a crash at any point leaves each
    message in the DLQ, in the work queue, or (between send and delete) in both, and a duplicate is harmless
    since the worker is idempotent per object version.
    """
    if method is RedriveMethod.MOVE_TASK and s3 is not None and archived_in_queue(sqs, s3, dlq_url):
        method = RedriveMethod.COPY
    if method is RedriveMethod.MOVE_TASK:
        return _move_with_task(sqs, queue_url, dlq_url, timeout_seconds, poll_seconds, sleep, monotonic)
    return _move_by_copy(sqs, queue_url, dlq_url, s3)


def _move_with_task(
    sqs: Any, queue_url: str, dlq_url: str, timeout: float, poll: float, sleep: Callable[[float], None],
    monotonic: Callable[[], float],
) -> RedriveReport:  # fmt: skip
    method = RedriveMethod.MOVE_TASK
    dlq_arn = queue_arn(sqs, dlq_url)
    try:
        handle = str(
            sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=queue_arn(sqs, queue_url))["TaskHandle"]
        )
    except ClientError as error:  # for example a move task already running on this DLQ
        return RedriveReport(method, 0, False, "NOT_STARTED", detail=f"SQS refused the move task: {error}")
    deadline = monotonic() + timeout
    while True:
        task = _find_task(sqs, dlq_arn, handle)
        status = str(task.get("Status", TASK_RUNNING))
        moved = int(task.get("ApproximateNumberOfMessagesMoved", 0))
        to_move = task.get("ApproximateNumberOfMessagesToMove")
        total = int(to_move) if to_move is not None else None
        if status in TASK_DONE:
            reason = f"SQS says: {task['FailureReason']}" if task.get("FailureReason") else ""
            return RedriveReport(method, moved, status == TASK_COMPLETED, status, total, task_handle=handle,
                                 left_in_dlq=_depth_or_none(sqs, dlq_url), detail=reason)  # fmt: skip
        if monotonic() >= deadline:
            detail = (f"the move task is still running after {timeout:.0f} s; SQS goes on moving (follow it with "
                      "'aws sqs list-message-move-tasks --source-arn " + dlq_arn + "')")  # fmt: skip
            return RedriveReport(method, moved, False, status, total, task_handle=handle, detail=detail)
        sleep(poll)


def _find_task(sqs: Any, dlq_arn: str, handle: str) -> dict[str, Any]:
    """Our task among the DLQ's recent move tasks.

    SQS shows the handle of running tasks only; a finished one is recognised as the newest task of the DLQ
    (SQS runs one move task per source queue at a time, so the newest after ours started is ours unless someone
    started another since).
    """
    results = sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=10).get("Results", [])
    for task in results:
        if task.get("TaskHandle") == handle:
            return dict(task)
    return dict(results[0]) if results else {}


def _depth_or_none(sqs: Any, queue_url: str) -> int | None:
    try:
        return queue_depth(sqs, queue_url)
    except (ClientError, BotoCoreError):
        return None


def _send_entry(index: int, message: dict[str, Any]) -> dict[str, Any]:
    """The message to send again: same body, same message attributes."""
    entry: dict[str, Any] = {"Id": str(index), "MessageBody": message["Body"]}
    attributes = {
        name: {k: v for k, v in value.items() if k in _ATTRIBUTE_FIELDS}
        for name, value in (message.get("MessageAttributes") or {}).items()
    }
    if attributes:
        entry["MessageAttributes"] = attributes
    return entry


def _hold_archived(s3: Any, messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[Any]]:
    """``messages`` split into those to move and ``(message, archived version)`` pairs to leave in the DLQ."""
    if s3 is None:
        return messages, []
    checked = [(message, archived_of_message(s3, message["Body"])) for message in messages]
    return [m for m, a in checked if a is None], [(m, a) for m, a in checked if a is not None]


#: Receives in a row that bring only messages handled already before the copy stops.
STALE_ROUNDS = 3


def _move_by_copy(sqs: Any, queue_url: str, dlq_url: str, s3: Any = None) -> RedriveReport:
    method = RedriveMethod.COPY
    moved = failed = 0
    seen: set[str] = set()
    held: list[Any] = []
    detail = ""
    stale_rounds = 0
    while moved + failed < MAX_COPY_MESSAGES:
        # Long polling (WaitTimeSeconds >= 1) asks every SQS server: an empty answer means an empty queue. A short
        # poll samples some servers only and may answer nothing while messages remain.
        received = sqs.receive_message(
            QueueUrl=dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=COPY_VISIBILITY_SECONDS,
            MessageAttributeNames=["All"],
        ).get("Messages", [])  # fmt: skip
        # A message seen before came back (its delete failed, or a held one outlived its hiding): it was handled
        # already, leave it for the next run; others may still follow it, so stop only when nothing else comes.
        fresh = [m for m in received if m["MessageId"] not in seen]
        seen.update(m["MessageId"] for m in received)
        stale_rounds = stale_rounds + 1 if received and not fresh else 0
        if not received or stale_rounds >= STALE_ROUNDS:
            break
        if not fresh:
            continue
        messages, archived = _hold_archived(s3, fresh)
        held += archived  # hidden until the end of the run, then shown again: they stay in the DLQ
        if not messages:
            continue
        try:
            sent = sqs.send_message_batch(
                QueueUrl=queue_url, Entries=[_send_entry(i, m) for i, m in enumerate(messages)]
            )
        except (ClientError, BotoCoreError) as error:
            _show_again(sqs, dlq_url, [m["ReceiptHandle"] for m in messages])
            failed += len(messages)
            detail = f"sending to the work queue failed ({error}); nothing was deleted from the dead-letter queue"
            break
        done = [messages[int(s["Id"])] for s in sent.get("Successful", [])]
        not_sent = [messages[int(f["Id"])] for f in sent.get("Failed", [])]
        if not_sent:
            _show_again(sqs, dlq_url, [m["ReceiptHandle"] for m in not_sent])
            failed += len(not_sent)
            detail = f"the work queue refused some messages: {sent['Failed'][0].get('Message', '')}"
        if done:
            # Only what was sent is deleted; a failed delete leaves a duplicate in the DLQ, never a loss.
            sqs.delete_message_batch(
                QueueUrl=dlq_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        moved += len(done)
        if not_sent:
            break
    show_again(sqs, dlq_url, [message["ReceiptHandle"] for message, _ in held])
    return RedriveReport(method, moved, not failed, TASK_FAILED if failed else TASK_COMPLETED, failed=failed,
                         left_in_dlq=_depth_or_none(sqs, dlq_url), detail=detail,
                         archived=tuple(version for _, version in held))  # fmt: skip


def _show_again(sqs: Any, queue_url: str, handles: list[str]) -> None:
    """Best effort: make messages visible again at once (else they reappear after the copy's visibility)."""
    entries = [{"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0} for i, h in enumerate(handles)]
    try:
        if entries:
            sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)
    except (ClientError, BotoCoreError):
        pass  # they come back after COPY_VISIBILITY_SECONDS anyway
