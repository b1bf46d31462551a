"""The dead-letter sweep long-polls the DLQ: a short poll samples only some of SQS's servers and can come back
empty while messages wait, which would end the sweep before it saw them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from analytics_platform.etl.events import ObjectRef
from analytics_platform.etl.exceptions import MalformedMessageError
from analytics_platform.etl.sweeper import sweep_dead_letters


class RecordingQueue:
    """A DLQ that hands out its messages once, then nothing, and records every receive."""

    def __init__(self, bodies: list[str]) -> None:
        self.pending = [{"MessageId": str(i), "ReceiptHandle": f"h{i}", "Body": b} for i, b in enumerate(bodies)]
        self.receives: list[dict[str, Any]] = []
        self.made_visible: list[str] = []

    def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        self.receives.append(kwargs)
        batch, self.pending = self.pending[:10], self.pending[10:]
        return {"Messages": batch} if batch else {}

    def change_message_visibility_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> None:
        self.made_visible += [entry["ReceiptHandle"] for entry in Entries]


def reject(body: str) -> ObjectRef:
    raise MalformedMessageError(body)


def test_every_receive_of_the_sweep_long_polls() -> None:
    # GIVEN a DLQ of twelve messages (two batches)
    queue = RecordingQueue([f"not an event {i}" for i in range(12)])
    # WHEN swept
    report = sweep_dead_letters(
        sqs=queue, dlq_url="dlq", jobs=None,  # type: ignore[arg-type]  # never reached: every message is malformed
        parse=reject, dataset_of=lambda key: key, clock=lambda: datetime.now(UTC),
    )  # fmt: skip
    # THEN each receive waited at least a second, the last one (empty) included, and all were made visible again
    assert report.messages == 12 and report.malformed == 12
    assert len(queue.receives) == 3 and all(r["WaitTimeSeconds"] >= 1 for r in queue.receives)
    assert len(queue.made_visible) == 12
