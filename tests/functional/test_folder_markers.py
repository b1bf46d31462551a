"""A key ending in ``/`` is the S3 console's "folder": acknowledged, logged, and no job is recorded for it."""

from __future__ import annotations

import io
import json

from analytics_platform.etl import handler as handler_module
from tests.functional.conftest import FakeContext, Platform


def test_a_folder_marker_is_acknowledged_without_a_job(platform: Platform) -> None:
    # GIVEN the zero-byte object the console creates for a new folder, and its event
    key, version = platform.upload("raw/sales/2024/", b"")
    event = platform.sqs_event(platform.body_for(key, version))
    # WHEN its message is processed (the worker's log going to a buffer)
    buffer = io.StringIO()
    previous = handler_module.logger.registered_handler.setStream(buffer)
    try:
        response = platform.invoke(event)
    finally:
        handler_module.logger.registered_handler.setStream(previous)
    # THEN the message is acknowledged, no job is recorded, and the log says why
    assert response["batchItemFailures"] == []
    assert platform.job(key, version) == {}
    lines = [json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{")]
    ignored = [line for line in lines if line.get("message") == "no job for a folder marker; acknowledged"]
    assert len(ignored) == 1 and "raw/sales/2024/" in ignored[0]["reason"]


def test_an_object_under_a_folder_still_makes_its_job(platform: Platform) -> None:
    response, job = platform.upload_and_process("raw/sales/2024/day.csv", b"id,name\n1,a\n")
    assert response["batchItemFailures"] == [] and job["job_status"] == "SUCCEEDED"


def test_the_sweep_records_no_job_for_a_folder_marker_in_the_dlq(platform: Platform) -> None:
    key, version = platform.upload("raw/sales/old-folder/", b"")
    platform.sqs.send_message(QueueUrl=platform.dlq_url, MessageBody=platform.body_for(key, version))
    sweep = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {"task": "dead-letter-sweep"}}
    report = handler_module.lambda_handler(sweep, FakeContext())
    assert report == {"messages": 1, "marked": 0, "malformed": 0, "promoted": 0, "retired": 0, "orphans": 0}
    assert platform.job(key, version) == {}
