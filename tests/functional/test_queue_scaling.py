"""The local Lambda service honours an SQS event source mapping's maximum concurrency, as Lambda does."""

from __future__ import annotations

import io
import json
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from analytics_platform.local.clients import local_client
from analytics_platform.local.pollers import QueuePoller, RuntimePool
from analytics_platform.local.server import LocalLambdaService

REGION = "us-east-1"
TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
         "Principal": {"Service": "lambda.amazonaws.com"}}]}  # fmt: skip


def package() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return {}\n")
    return buffer.getvalue()


def test_the_mapping_s_maximum_concurrency_reaches_the_local_poller(endpoint: str, tmp_path: Path) -> None:
    # GIVEN a function of reserved concurrency 3 whose queue trigger is capped at 2 (as the stacks declare it)
    lam, sqs = local_client("lambda", REGION, endpoint), local_client("sqs", REGION, endpoint)
    role = local_client("iam", REGION, endpoint).create_role(
        RoleName="fn-role", AssumeRolePolicyDocument=json.dumps(TRUST)
    )["Role"]["Arn"]
    lam.create_function(FunctionName="fn", Runtime="python3.11", Role=role, Handler="app.handler",
                        Code={"ZipFile": package()}, Timeout=7, MemorySize=256)  # fmt: skip
    lam.put_function_concurrency(FunctionName="fn", ReservedConcurrentExecutions=3)
    queue_url = sqs.create_queue(QueueName="q")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    lam.create_event_source_mapping(
        EventSourceArn=queue_arn, FunctionName="fn", BatchSize=5, ScalingConfig={"MaximumConcurrency": 2}
    )
    # THEN the endpoint keeps the setting (moto stores ScalingConfig: no patch needed)
    (mapping,) = lam.list_event_source_mappings()["EventSourceMappings"]
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 2}
    service = LocalLambdaService(endpoint, [REGION], tmp_path)
    try:
        # WHEN the service discovers the mapping
        service.discover()
        (poller,) = service._pollers.values()
        # THEN the queue runs at most 2 invocations at once, out of the function's 3 environments
        assert isinstance(poller, QueuePoller)
        assert (poller.concurrency, len(poller.pool.runtimes)) == (2, 3)
    finally:
        service.stop()


@dataclass
class _Spec:
    name: str = "fn"
    region: str = REGION


class _SlowRuntime:
    """An execution environment that takes a while per invocation and counts how many run at once."""

    running = 0
    most = 0
    lock = threading.Lock()

    def __init__(self, index: int) -> None:
        self.spec = _Spec()
        self.pid_file = Path(f"fn-{index}.pid")

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            type(self).running += 1
            type(self).most = max(type(self).most, type(self).running)
        time.sleep(0.2)
        with self.lock:
            type(self).running -= 1
        return {"batchItemFailures": []}


@pytest.mark.parametrize(("maximum", "expected"), [(2, {2}), (None, {3, 4})])
def test_a_busy_queue_never_runs_more_invocations_than_its_maximum(maximum: int | None, expected: set[int]) -> None:
    # GIVEN 12 messages, a pool of 4 environments and a mapping capped at ``maximum`` (None: no cap)
    _SlowRuntime.running = _SlowRuntime.most = 0
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        queue_url = sqs.create_queue(QueueName="busy")["QueueUrl"]
        for index in range(12):
            sqs.send_message(QueueUrl=queue_url, MessageBody=str(index))
        journal: list[dict[str, Any]] = []
        pool = RuntimePool([_SlowRuntime(i) for i in range(4)])  # type: ignore[list-item]
        poller = QueuePoller(sqs=sqs, queue_url=queue_url, queue_arn="arn:aws:sqs:us-east-1:123456789012:busy",
                             batch_size=1, report_batch_item_failures=True, pool=pool, record=journal.append,
                             maximum_concurrency=maximum)  # fmt: skip
        # WHEN it drains the queue
        poller.start()
        try:
            deadline = time.monotonic() + 60
            while sum(e["event"] == "attempt" for e in journal) < 12 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            poller.stop()
    # THEN every message ran; with the cap exactly 2 ran together, without it more (up to the pool's 4)
    assert sum(e["event"] == "attempt" and e["outcome"] == "succeeded" for e in journal) == 12
    assert _SlowRuntime.most in expected
