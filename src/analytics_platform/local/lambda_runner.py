"""Local Lambda runtime: poll each SQS event source mapping and invoke the deployed function package.

moto stores functions but cannot run them without Docker. For every event source mapping Terraform
created, a :class:`QueuePoller` does what the Lambda service does: receive up to ``BatchSize`` messages
(with the queue's own visibility timeout), invoke the function, delete what succeeded, and leave failed
messages to reappear after the visibility timeout, so the queue's redrive policy moves a message that
keeps failing to the DLQ after ``maxReceiveCount`` attempts. The code that runs is the zip moto holds
for the function - the deployed package - in a warm subprocess with the function's own environment.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
POLL_WAIT_SECONDS = 1
#: Every region's function runs the same package (same hash, same code folder), and their pollers start
#: together: extraction happens once, under this lock, into a staging folder renamed into place.
_EXTRACT_LOCK = threading.Lock()


class InvocationError(RuntimeError):
    """The function crashed or timed out; the whole batch counts as failed."""


@dataclass(frozen=True)
class FunctionSpec:
    """What the runtime needs about a deployed function."""

    name: str
    arn: str
    region: str
    handler: str
    timeout_seconds: int
    memory_mb: int
    environment: dict[str, str]
    code_sha256: str
    code: bytes


def verify_code(spec: FunctionSpec) -> None:
    """Refuse to run bytes that are not what Lambda reports as deployed."""
    actual = base64.b64encode(hashlib.sha256(spec.code).digest()).decode()
    if actual != spec.code_sha256:
        raise InvocationError(f"{spec.name}: package hash {actual} differs from deployed {spec.code_sha256}")


class FunctionRuntime:
    """One warm execution environment of one function (reserved concurrency 1 locally)."""

    def __init__(self, spec: FunctionSpec, *, endpoint: str, work_dir: Path) -> None:
        verify_code(spec)
        self.spec = spec
        self._endpoint = endpoint
        self._code_dir = work_dir / "code" / spec.code_sha256.replace("/", "_")
        self._tmp_dir = work_dir / "tmp" / spec.name
        self._log_path = work_dir / "logs" / f"{spec.name}.log"
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._responses: Any = None

    def _extract(self) -> None:
        """Unpack the package once per hash; a folder left half-written by a crash is replaced."""
        with _EXTRACT_LOCK:
            if (self._code_dir / ".complete").exists():
                return
            self._code_dir.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=self._code_dir.parent))
            try:
                with zipfile.ZipFile(io.BytesIO(self.spec.code)) as archive:
                    archive.extractall(staging)
                (staging / ".complete").write_text(self.spec.code_sha256)
                shutil.rmtree(self._code_dir, ignore_errors=True)
                staging.rename(self._code_dir)
            finally:
                shutil.rmtree(staging, ignore_errors=True)

    def _start(self) -> None:
        self._extract()
        self._tmp_dir.mkdir(parents=True, exist_ok=True)
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        read_fd, write_fd = os.pipe()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            **self.spec.environment,
            "PYTHONPATH": str(self._code_dir),
            "PYTHONNOUSERSITE": "1",
            "PYTHONUNBUFFERED": "1",
            "AWS_ENDPOINT_URL": self._endpoint,
            "AWS_REGION": self.spec.region,
            "AWS_DEFAULT_REGION": self.spec.region,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_LAMBDA_FUNCTION_NAME": self.spec.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.spec.memory_mb),
            "_HANDLER": self.spec.handler,
            "TAP_RESPONSE_FD": str(write_fd),
            "TAP_WORK_DIR": str(self._tmp_dir),
        }
        log = self._log_path.open("ab")
        self._process = subprocess.Popen(
            [sys.executable, "-P", str(BOOTSTRAP)], stdin=subprocess.PIPE, stdout=log, stderr=log, env=env,
            pass_fds=(write_fd,), cwd=self._code_dir,
        )  # fmt: skip
        os.close(write_fd)
        log.close()
        self._responses = os.fdopen(read_fd, "rb")

    def stop(self) -> None:
        """End the execution environment."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None
        if self._responses is not None:
            self._responses.close()
            self._responses = None

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        """Invoke synchronously; raises :class:`InvocationError` on a crash, error or timeout."""
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self.stop()
                self._start()
            assert self._process is not None and self._process.stdin is not None
            request = {"event": event, "function_arn": self.spec.arn, "timeout_seconds": self.spec.timeout_seconds}
            try:
                self._process.stdin.write((json.dumps(request) + "\n").encode())
                self._process.stdin.flush()
            except BrokenPipeError as error:
                self.stop()
                raise InvocationError(f"{self.spec.name}: runtime exited") from error
            ready, _, _ = select.select([self._responses], [], [], self.spec.timeout_seconds)
            if not ready:
                self.stop()
                raise InvocationError(f"{self.spec.name}: task timed out after {self.spec.timeout_seconds} s")
            line = self._responses.readline()
            if not line:
                self.stop()
                raise InvocationError(f"{self.spec.name}: runtime exited during the invocation")
            reply = json.loads(line)
            if not reply.get("ok"):
                raise InvocationError(f"{reply.get('errorType')}: {reply.get('errorMessage')}")
            return reply.get("result") or {}


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


class QueuePoller(threading.Thread):
    """Lambda's SQS poller for one event source mapping."""

    def __init__(
        self,
        *,
        sqs: Any,
        queue_url: str,
        queue_arn: str,
        batch_size: int,
        report_batch_item_failures: bool,
        runtime: FunctionRuntime,
        record: Callable[[dict[str, Any]], None],
    ) -> None:
        super().__init__(daemon=True, name=f"poller-{runtime.spec.name}")
        self._sqs = sqs
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._batch_size = batch_size
        self._report_failures = report_batch_item_failures
        self.runtime = runtime
        self._record = record
        self._stop_event = threading.Event()

    def stop(self) -> None:
        """Stop polling and end the runtime."""
        self._stop_event.set()
        self.join(timeout=POLL_WAIT_SECONDS * 5)
        self.runtime.stop()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                self.poll_once()
            except Exception as error:  # keep polling, as Lambda does; the error is logged
                self._record({"event": "poller_error", "function": self.runtime.spec.name, "error": str(error)})
                time.sleep(1)

    def poll_once(self) -> int:
        """One receive / invoke / delete cycle; returns the number of messages received."""
        response = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=self._batch_size,
            WaitTimeSeconds=POLL_WAIT_SECONDS,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if not messages:
            return 0
        spec = self.runtime.spec
        event = {"Records": [sqs_record(m, self._queue_arn, spec.region) for m in messages]}
        started = time.monotonic()
        try:
            result = self.runtime.invoke(event)
            failed = {item["itemIdentifier"] for item in result.get("batchItemFailures", [])}
            if not self._report_failures and failed:
                failed = {m["MessageId"] for m in messages}
            error = None
        except InvocationError as invocation_error:
            failed = {m["MessageId"] for m in messages}
            error = str(invocation_error)
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        for message in messages:
            self._record(
                {
                    "event": "attempt",
                    "function": spec.name,
                    "region": spec.region,
                    "message_id": message["MessageId"],
                    "receive_count": int(message.get("Attributes", {}).get("ApproximateReceiveCount", "0")),
                    "outcome": "failed" if message["MessageId"] in failed else "succeeded",
                    "error": error,
                    "duration_ms": int((time.monotonic() - started) * 1000),
                    "at": time.time(),
                }
            )
        return len(messages)
