"""The worker's custom metrics: their names (the stack's alarm and dashboard use them too) and emission.

Powertools writes them as CloudWatch embedded-metric-format log lines in namespace :data:`NAMESPACE` with the
dimension ``service`` = the function's name (``POWERTOOLS_SERVICE_NAME``), so two environments in one region
never share a metric.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

NAMESPACE = "AnalyticsPlatform"
SERVICE_DIMENSION = "service"
JOBS_SUCCEEDED = "JobsSucceeded"
JOBS_FAILED = "JobsFailed"
JOBS_DEAD_LETTERED = "JobsDeadLettered"
JOBS_RETRIED = "JobsRetried"
DUPLICATE_DELIVERIES = "DuplicateDeliveries"
MALFORMED_MESSAGES = "MalformedMessages"
KEYS_DELETED = "KeysDeleted"
#: Reconciliation's repairs: late promotions, late retirements, and files under processed/ no job stands behind.
OUTPUTS_PROMOTED_LATE = "OutputsPromotedLate"
JOBS_RETIRED_LATE = "JobsRetiredLate"
ORPHAN_OUTPUTS_RETIRED = "OrphanOutputsRetired"
#: Metrics whose sum is the "failed jobs" alarm: every job that ended without its Parquet.
FAILED_JOB_METRICS = (JOBS_FAILED, JOBS_DEAD_LETTERED)


def count(metrics: Any, name: str, value: int = 1) -> None:
    """Add ``value`` to a count metric."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def record_success(metrics: Any, *, rows_out: int, rows_rejected: int, bytes_in: int, bytes_out: int, ms: int) -> None:
    """The figures of one succeeded job."""
    count(metrics, JOBS_SUCCEEDED)
    count(metrics, "RowsOut", rows_out)
    count(metrics, "RowsRejected", rows_rejected)
    metrics.add_metric(name="BytesIn", unit=MetricUnit.Bytes, value=bytes_in)
    metrics.add_metric(name="BytesOut", unit=MetricUnit.Bytes, value=bytes_out)
    metrics.add_metric(name="ProcessingTime", unit=MetricUnit.Milliseconds, value=ms)
