"""What the Lambda service does around a function: poll its SQS event sources and fire its schedules.

A :class:`QueuePoller` receives up to ``BatchSize`` messages (with the queue's own visibility timeout),
invokes the function, deletes what succeeded, and leaves failed messages to reappear after the visibility
timeout, so the queue's redrive policy moves a message that keeps failing to the DLQ after
``maxReceiveCount`` receives. Like Lambda, it runs up to the function's reserved concurrency of these loops at
once, each with its own execution environment. A :class:`SchedulePoller` invokes the function with an
EventBridge ``Scheduled Event`` at a rule's ``rate(...)``. Every attempt goes into the journal.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from analytics_platform.local.lambda_runner import FunctionRuntime, InvocationError

POLL_WAIT_SECONDS = 1
Journal = Callable[[dict[str, Any]], None]


def sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """An SQS message as Lambda hands it to the function."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


class _Loop(threading.Thread):
    """A daemon thread running ``step`` until stopped; errors are journaled and the loop goes on."""

    def __init__(self, name: str, step: Callable[[], object], journal: Journal, runtime: FunctionRuntime) -> None:
        super().__init__(daemon=True, name=name)
        self._step = step
        self._journal = journal
        self.runtime = runtime
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self._step()
            except Exception as error:  # keep polling, as Lambda does; the error is journaled
                self._journal({"event": "poller_error", "function": self.runtime.spec.name, "error": str(error)})
                time.sleep(1)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=POLL_WAIT_SECONDS * 5)
        self.runtime.stop()


class QueuePoller:
    """Lambda's SQS poller for one event source mapping: ``concurrency`` receive/invoke/delete loops."""

    def __init__(
        self, *, sqs: Any, queue_url: str, queue_arn: str, batch_size: int, report_batch_item_failures: bool,
        runtimes: list[FunctionRuntime], record: Journal,
    ) -> None:  # fmt: skip
        self._sqs = sqs
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._batch_size = batch_size
        self._report_failures = report_batch_item_failures
        self._record = record
        self.runtimes = runtimes
        self._loops = [
            _Loop(f"poller-{r.spec.name}-{i}", partial(self.poll_once, r), record, r) for i, r in enumerate(runtimes)
        ]

    def start(self) -> None:
        """Start every loop."""
        for loop in self._loops:
            loop.start()

    def stop(self) -> None:
        """Stop polling and end the execution environments."""
        for loop in self._loops:
            loop.stopping.set()
        for loop in self._loops:
            loop.stop()

    def poll_once(self, runtime: FunctionRuntime) -> int:
        """One receive / invoke / delete cycle on ``runtime``; returns the number of messages received."""
        response = self._sqs.receive_message(
            QueueUrl=self._queue_url, MaxNumberOfMessages=self._batch_size, WaitTimeSeconds=POLL_WAIT_SECONDS,
            AttributeNames=["All"], MessageAttributeNames=["All"],
        )  # fmt: skip
        messages = response.get("Messages", [])
        if not messages:
            return 0
        spec = runtime.spec
        ids = [m["MessageId"] for m in messages]
        self._record({"event": "invoke", "function": spec.name, "region": spec.region, "message_ids": ids,
                      "pid_file": str(runtime.pid_file), "at": time.time()})  # fmt: skip
        started = time.monotonic()
        try:
            result = runtime.invoke({"Records": [sqs_record(m, self._queue_arn, spec.region) for m in messages]})
            failed = {item["itemIdentifier"] for item in result.get("batchItemFailures", [])}
            if not self._report_failures and failed:
                failed = set(ids)
            error = None
        except InvocationError as invocation_error:
            failed, error = set(ids), str(invocation_error)
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        for message in messages:
            self._record({
                "event": "attempt", "function": spec.name, "region": spec.region, "message_id": message["MessageId"],
                "receive_count": int(message.get("Attributes", {}).get("ApproximateReceiveCount", "0")),
                "outcome": "failed" if message["MessageId"] in failed else "succeeded", "error": error,
                "duration_ms": int((time.monotonic() - started) * 1000), "at": time.time(),
            })  # fmt: skip
        return len(messages)


def rate_seconds(expression: str) -> float | None:
    """Seconds between runs of ``rate(N minute|minutes|hour|hours|day|days)``; None for anything else."""
    match = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression.strip())
    if not match:
        return None
    unit = {"minute": 60, "hour": 3600, "day": 86400}[match.group(2).rstrip("s")]
    return int(match.group(1)) * unit


class SchedulePoller:
    """Invokes the function at a schedule rule's rate, with the rule's input or a Scheduled Event."""

    def __init__(
        self, *, rule_arn: str, interval_seconds: float, payload: dict[str, Any] | None, runtime: FunctionRuntime,
        record: Journal,
    ) -> None:  # fmt: skip
        self._rule_arn = rule_arn
        self._interval = interval_seconds
        self._payload = payload
        self._record = record
        self.runtime = runtime
        self._next = time.monotonic() + interval_seconds
        self._loop = _Loop(f"schedule-{runtime.spec.name}", self.tick, record, runtime)

    def start(self) -> None:
        """Start firing."""
        self._loop.start()

    def stop(self) -> None:
        """Stop firing and end the execution environment."""
        self._loop.stop()

    def event(self) -> dict[str, Any]:
        """What EventBridge sends: the target's constant input, else the Scheduled Event."""
        spec = self.runtime.spec
        base = {
            "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
            "account": spec.arn.split(":")[4], "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": spec.region, "resources": [self._rule_arn], "detail": {},
        }  # fmt: skip
        return {**base, **(self._payload or {})}

    def tick(self) -> None:
        """Fire if the time has come, else wait a little."""
        if time.monotonic() < self._next:
            self._loop.stopping.wait(0.5)
            return
        self._next += self._interval
        spec = self.runtime.spec
        try:
            result, error = self.runtime.invoke(self.event()), None
        except InvocationError as invocation_error:
            result, error = None, str(invocation_error)
        self._record({"event": "schedule", "function": spec.name, "region": spec.region, "rule": self._rule_arn,
                      "result": result, "error": error, "at": time.time()})  # fmt: skip
