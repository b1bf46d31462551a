"""Inputs that cannot be recorded end FAILED with their real reason, never DEAD_LETTERED as if transient."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from analytics_platform.etl import handler as handler_module
from tests.functional.conftest import Platform


def too_large(operation: str, *, cancelled: bool) -> ClientError:
    """DynamoDB's answer to a write over 400 KB: directly, or as a cancelled transaction."""
    if not cancelled:
        error = {"Code": "ValidationException", "Message": "Item size has exceeded the maximum allowed size"}
        return ClientError({"Error": error}, operation)
    reasons = [{"Code": "None"}, {"Code": "None"},
               {"Code": "ValidationError", "Message": "Item size has exceeded the maximum allowed size"}]  # fmt: skip
    response: dict[str, Any] = {"Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                                "CancellationReasons": reasons}  # fmt: skip
    return ClientError(response, operation)  # type: ignore[arg-type]


@pytest.mark.parametrize("cancelled", [False, True], ids=["validation", "transaction"])
def test_a_schema_too_large_for_its_item_fails_with_that_reason(
    platform: Platform, monkeypatch: pytest.MonkeyPatch, cancelled: bool
) -> None:
    # GIVEN a file whose success cannot be recorded: its schema item would pass DynamoDB's 400 KB
    jobs = handler_module.get_worker().jobs

    def refuse(*_: Any, **__: Any) -> str:
        raise too_large("TransactWriteItems", cancelled=cancelled)

    monkeypatch.setattr(jobs, "succeed_current", refuse)
    key, version = platform.upload("raw/wide/many.csv", b"a,b\n1,2\n")
    response = platform.invoke(platform.sqs_event(platform.body_for(key, version)))
    # THEN the job is FAILED at once (the message acknowledged), saying why; nothing is visible
    job = platform.job(key, version)
    assert response["batchItemFailures"] == []
    assert (job["job_status"], job["error_type"], job["attempts"]) == ("FAILED", "ItemTooLargeError", 1), job
    assert "400 KB" in job["error_message"]
    assert platform.keys("processed/") == [] and platform.keys("staging/") == []
