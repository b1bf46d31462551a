"""What the Lambda service does around a function: poll its SQS event sources and fire its schedules.

A :class:`QueuePoller` receives up to ``BatchSize`` messages (with the queue's own visibility timeout),
invokes the function, deletes what succeeded, and leaves failed messages to reappear after the visibility
timeout, so the queue's redrive policy moves a message that keeps failing to the DLQ after
``maxReceiveCount`` receives. A :class:`SchedulePoller` invokes the function at a rule's ``rate(...)`` with
what EventBridge sends. A function's invocations, from all its sources, share one :class:`RuntimePool`: at
most its reserved concurrency of execution environments, each running one invocation at a time, as on Lambda;
a queue takes at most its mapping's maximum concurrency of them.
Every attempt goes into the journal.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
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


class RuntimePool:
    """A function's execution environments (as many as its reserved concurrency), shared by all its sources.

    Waiters are served first come, first served: a loop that hands an environment back and asks again
    queues behind the schedule that was already waiting, so no source starves another.
    """

    def __init__(self, runtimes: list[FunctionRuntime]) -> None:
        if not runtimes:
            raise ValueError("a runtime pool needs at least one execution environment")
        self.runtimes = list(runtimes)
        self.spec = runtimes[0].spec
        self._free = list(runtimes)
        self._waiting: deque[object] = deque()
        self._changed = threading.Condition()

    def acquire(self, stopping: threading.Event) -> FunctionRuntime | None:
        """The next free environment, or None once ``stopping`` is set."""
        ticket = object()
        with self._changed:
            self._waiting.append(ticket)
            try:
                while not (self._free and self._waiting[0] is ticket):
                    if stopping.is_set():
                        return None
                    self._changed.wait(0.2)
                # the most recently used environment is the warmest, as Lambda prefers
                return self._free.pop()
            finally:
                self._waiting.remove(ticket)
                self._changed.notify_all()

    def release(self, runtime: FunctionRuntime) -> None:
        """Hand an environment back."""
        with self._changed:
            self._free.append(runtime)
            self._changed.notify_all()

    def stop(self) -> None:
        """End every environment."""
        for runtime in self.runtimes:
            runtime.stop()


class _Loop(threading.Thread):
    """A daemon thread running ``step`` until stopped; errors are journaled and the loop goes on."""

    def __init__(self, name: str, step: Callable[[threading.Event], object], journal: Journal, function: str) -> None:
        super().__init__(daemon=True, name=name)
        self._step = step
        self._journal = journal
        self._function = function
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self._step(self.stopping)
            except Exception as error:  # keep polling, as Lambda does; the error is journaled
                self._journal({"event": "poller_error", "function": self._function, "error": str(error)})
                time.sleep(1)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=POLL_WAIT_SECONDS * 5)


class QueuePoller:
    """Lambda's SQS poller for one event source mapping: one receive/invoke/delete loop per invocation it may
    run at once, which is the function's pool of environments, or fewer: the mapping's maximum concurrency."""

    def __init__(
        self, *, sqs: Any, queue_url: str, queue_arn: str, batch_size: int, report_batch_item_failures: bool,
        pool: RuntimePool, record: Journal, maximum_concurrency: int | None = None,
    ) -> None:  # fmt: skip
        """``maximum_concurrency``: the mapping's ``ScalingConfig.MaximumConcurrency`` (by default none: as many
        invocations as the pool has environments)."""
        self._sqs = sqs
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._batch_size = batch_size
        self._report_failures = report_batch_item_failures
        self._record = record
        self.pool = pool
        name = pool.spec.name
        # Each loop holds at most one environment at a time, so the number of loops is the cap on this queue's
        # concurrent invocations; the pool's other environments stay free for the function's other sources.
        self.concurrency = min(maximum_concurrency or len(pool.runtimes), len(pool.runtimes))
        self._loops = [_Loop(f"poller-{name}-{i}", self._step, record, name) for i in range(self.concurrency)]

    def start(self) -> None:
        """Start every loop."""
        for loop in self._loops:
            loop.start()

    def stop(self) -> None:
        """Stop polling (the pool's owner ends the environments)."""
        for loop in self._loops:
            loop.stopping.set()
        for loop in self._loops:
            loop.stop()

    def _step(self, stopping: threading.Event) -> None:
        # an environment first, then the messages: no batch waits out its visibility timeout for a free one
        runtime = self.pool.acquire(stopping)
        if runtime is None:
            return
        try:
            self.poll_once(runtime)
        finally:
            self.pool.release(runtime)

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
    """Invokes the function at a schedule rule's rate, in an environment of the function's pool."""

    def __init__(
        self, *, rule_arn: str, interval_seconds: float, payload: dict[str, Any] | None, pool: RuntimePool,
        record: Journal,
    ) -> None:  # fmt: skip
        self._rule_arn = rule_arn
        self._interval = interval_seconds
        self._payload = payload
        self._record = record
        self.pool = pool
        self._next = time.monotonic() + interval_seconds
        self._loop = _Loop(f"schedule-{pool.spec.name}", self.tick, record, pool.spec.name)

    def start(self) -> None:
        """Start firing."""
        self._loop.start()

    def stop(self) -> None:
        """Stop firing (the pool's owner ends the environments)."""
        self._loop.stop()

    def event(self) -> dict[str, Any]:
        """What EventBridge sends: the target's constant input exactly as written, else the Scheduled Event."""
        if self._payload is not None:  # EventBridge adds nothing to a constant input; neither do we
            return dict(self._payload)
        spec = self.pool.spec
        return {
            "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
            "account": spec.arn.split(":")[4], "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": spec.region, "resources": [self._rule_arn], "detail": {},
        }  # fmt: skip

    def tick(self, stopping: threading.Event) -> None:
        """Fire if the time has come, else wait a little."""
        if time.monotonic() < self._next:
            stopping.wait(0.5)
            return
        runtime = self.pool.acquire(stopping)
        if runtime is None:
            return
        self._next += self._interval
        spec = runtime.spec
        try:
            result, error = runtime.invoke(self.event()), None
        except InvocationError as invocation_error:
            result, error = None, str(invocation_error)
        finally:
            self.pool.release(runtime)
        self._record({"event": "schedule", "function": spec.name, "region": spec.region, "rule": self._rule_arn,
                      "result": result, "error": error, "at": time.time()})  # fmt: skip
