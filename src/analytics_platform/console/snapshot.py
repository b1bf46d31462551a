"""What the console shows of one region, read-only: stack outputs, job counts by status (and per hour over the last
day), dead-letter depth, recent failures with their reasons, datasets with their schema and rows.

Each part is read on its own: a part that cannot be read says why, the others are still shown.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from analytics_platform.etl.job_values import RETRYABLE, JobStatus
from analytics_platform.targeting.region_target import RegionTarget

#: The window of job counts and of the per-hour timeline.
WINDOW = timedelta(hours=24)
#: Recent failures shown per region.
FAILURES_SHOWN = 10
#: How long the datasets part is reused: it reads every SUCCEEDED job of the region, which the page's 10-second
#: refresh should not repeat each time.
DATASETS_SECONDS = 60.0


class PartCache:
    """Parts of a region's snapshot kept for a while (one per console server; thread-safe)."""

    def __init__(self, seconds: float = DATASETS_SECONDS) -> None:
        self.seconds = seconds
        self._kept: dict[tuple[str, str], tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str], read: Callable[[], Any]) -> Any:
        """The value kept under ``key`` if younger than :attr:`seconds`, else ``read()`` (kept when it succeeds)."""
        with self._lock:
            kept = self._kept.get(key)
        if kept is not None and time.monotonic() - kept[0] < self.seconds:
            return kept[1]
        value = read()
        with self._lock:
            self._kept[key] = (time.monotonic(), value)
        return value


def region_snapshot(
    target: RegionTarget, now: datetime | None = None, cache: PartCache | None = None
) -> dict[str, Any]:
    """Everything the console shows of ``target``'s region (see the module docstring); with ``cache``, the
    datasets part is reused for :data:`DATASETS_SECONDS`."""
    now = now or datetime.now(UTC)
    snapshot: dict[str, Any] = {"region": target.region, "at": now.isoformat(), "outputs": outputs_of(target),
                                "errors": {}}  # fmt: skip
    datasets = (lambda: _datasets(target)) if cache is None else (
        lambda: cache.get((target.region, "datasets"), lambda: _datasets(target)))  # fmt: skip
    parts: dict[str, Callable[[], Any]] = {
        "jobs": lambda: _jobs(target, now),
        "dlq_depth": lambda: _dlq_depth(target),
        "datasets": datasets,
    }
    for name, read in parts.items():
        try:
            snapshot.update(read())
        except Exception as error:  # one part unreadable: the page says why, the rest is shown
            snapshot["errors"][name] = f"{type(error).__name__}: {error}"
    return snapshot


def outputs_of(target: RegionTarget) -> dict[str, str]:
    """The region's stack outputs the console lists."""
    return {
        "bucket": target.bucket, "job_table": target.table_name, "queue": target.queue_name,
        "dead_letter_queue": target.dlq_name, "glue_database": target.database, "athena_workgroup": target.workgroup,
        "query_role_arn": target.query_role_arn, "account_id": target.account_id,
    }  # fmt: skip


def _jobs(target: RegionTarget, now: datetime) -> dict[str, Any]:
    from analytics_platform.analytics.job_listing import query_jobs

    jobs = query_jobs(target.job_table(), since=now - WINDOW, now=now)
    counts = Counter(str(job.get("job_status")) for job in jobs)
    hours = [(now - timedelta(hours=h)).strftime("%Y-%m-%dT%H") for h in range(23, -1, -1)]
    timeline = {hour: Counter[str]() for hour in hours}
    for job in jobs:
        hour = str(job.get("created_at", ""))[:13]
        if hour in timeline:
            timeline[hour][str(job.get("job_status"))] += 1
    failures = [job for job in jobs if job.get("job_status") in RETRYABLE][:FAILURES_SHOWN]
    return {
        "job_counts": {status.value: counts.get(status.value, 0) for status in JobStatus},
        "jobs_total": len(jobs),
        "timeline": [{"hour": hour, "counts": dict(timeline[hour])} for hour in hours],
        "failures": [
            {"job_id": job.get("job_id"), "status": job.get("job_status"), "key": job.get("input_key"),
             "error_type": job.get("error_type"), "error": str(job.get("error_message", ""))[:500],
             "at": job.get("updated_at")}
            for job in failures
        ],
    }  # fmt: skip


def _dlq_depth(target: RegionTarget) -> dict[str, Any]:
    sqs = target.client("sqs")
    url = sqs.get_queue_url(QueueName=target.dlq_name)["QueueUrl"]
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return {"dlq_depth": sum(int(value) for value in attributes.values())}


def _datasets(target: RegionTarget) -> dict[str, Any]:
    from analytics_platform.analytics.commands import dataset_documents

    return {"datasets": dataset_documents(target)[1]}


__all__ = ["DATASETS_SECONDS", "WINDOW", "PartCache", "outputs_of", "region_snapshot"]
