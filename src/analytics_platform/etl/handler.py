"""Thin Lambda entry point: parse the SQS batch, delegate each record, return partial batch failures."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.config import Config

from analytics_platform.etl.exceptions import MalformedMessageError, TransientError
from analytics_platform.etl.settings import Settings
from analytics_platform.etl.worker import Worker, monotonic_ms

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "etl-worker"))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "AnalyticsPlatform"))
# A batch whose records all fail still returns its failure list instead of raising, so a crash stays
# distinguishable from bad records in the Errors metric.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=5, read_timeout=60)
#: Seconds kept back from the invocation's remaining time before a lease may be taken over.
LEASE_MARGIN_SECONDS = 30


@lru_cache(maxsize=1)
def get_worker() -> Worker:
    """Build the worker once per execution environment, with clients pinned to the data region."""
    settings = Settings.from_environment()
    session = boto3.session.Session(region_name=settings.region)
    s3 = session.client("s3", config=CLIENT_CONFIG)
    table = session.resource("dynamodb", config=CLIENT_CONFIG).Table(settings.table)
    return Worker(settings, s3=s3, table=table)


def record_handler(record: SQSRecord, lambda_context: Any = None) -> dict[str, Any]:
    """Process one SQS record; raising marks only this record as failed (SQS retries it)."""
    worker = get_worker()
    receive_count = int(record.attributes.approximate_receive_count or 1)
    remaining_ms = lambda_context.get_remaining_time_in_millis() if lambda_context else 900_000
    lease = max(60, remaining_ms // 1000 + LEASE_MARGIN_SECONDS)
    started = monotonic_ms()
    try:
        ref = worker.parse(record.body)
    except MalformedMessageError as error:
        logger.error("unprocessable message; it will reach the DLQ", message_id=record.message_id, error=str(error))
        metrics.add_metric(name="MalformedMessages", unit=MetricUnit.Count, value=1)
        raise
    logger.append_keys(job_id=ref.job_id, input_uri=ref.uri, receive_count=receive_count)
    try:
        outcome = worker.process(record.body, owner=record.message_id, lease_seconds=lease)
    except TransientError as error:
        last = receive_count >= worker.settings.max_receive_count
        logger.warning(
            "transient failure; SQS will redeliver"
            if not last
            else "transient failure on the last attempt; the message moves to the DLQ",
            error=str(error),
        )
        metrics.add_metric(name="JobsRetried", unit=MetricUnit.Count, value=1)
        raise
    finally:
        logger.remove_keys(["receive_count"])
    elapsed = monotonic_ms() - started
    if outcome.status == "succeeded" and outcome.result:
        result = outcome.result
        metrics.add_metric(name="JobsSucceeded", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="RowsOut", unit=MetricUnit.Count, value=result.rows_out)
        metrics.add_metric(name="RowsRejected", unit=MetricUnit.Count, value=result.rows_rejected)
        metrics.add_metric(name="BytesIn", unit=MetricUnit.Bytes, value=result.bytes_in)
        metrics.add_metric(name="BytesOut", unit=MetricUnit.Bytes, value=result.bytes_out)
        metrics.add_metric(name="ProcessingTime", unit=MetricUnit.Milliseconds, value=elapsed)
        logger.info(
            "job succeeded",
            rows_out=result.rows_out,
            rows_rejected=result.rows_rejected,
            output_uri=result.output_uri,
            duration_ms=elapsed,
        )
    elif outcome.status == "failed":
        metrics.add_metric(name="JobsFailed", unit=MetricUnit.Count, value=1)
        logger.error("job failed permanently; input left untouched", reason=outcome.error)
    else:
        metrics.add_metric(name="DuplicateDeliveries", unit=MetricUnit.Count, value=1)
        logger.info("duplicate delivery ignored", reason=outcome.error)
    return {"job_id": outcome.job_id, "status": outcome.status}


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """SQS-triggered entry point with ``ReportBatchItemFailures``."""
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)
