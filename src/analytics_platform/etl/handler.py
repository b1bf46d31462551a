"""Thin Lambda entry point: parse each SQS record once, delegate, return the partial batch response.

The same function also runs the scheduled dead-letter sweep (an EventBridge ``Scheduled Event``).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import BotoCoreError, ClientError

from analytics_platform.etl import metrics as names
from analytics_platform.etl.clients import worker_client, worker_resource
from analytics_platform.etl.exceptions import (
    JobInProgressError,
    MalformedMessageError,
    NotStartedError,
    TransientError,
)
from analytics_platform.etl.jobs import delivery_owner
from analytics_platform.etl.keys import dataset_of
from analytics_platform.etl.reconcile import reconcile
from analytics_platform.etl.settings import Settings
from analytics_platform.etl.storage import classify_aws_error
from analytics_platform.etl.sweeper import sweep_dead_letters
from analytics_platform.etl.worker import Budget, OutcomeStatus, Worker

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "etl-worker"))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", names.NAMESPACE))
# A batch whose records all fail still returns its failure list instead of raising, so a crash stays
# distinguishable from bad records in the Errors metric.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
#: Without a Lambda context (tests, tools) an invocation gets the longest Lambda timeout.
DEFAULT_REMAINING_MS = 900_000


@dataclass(frozen=True)
class Runtime:
    """The clients and worker of one execution environment, built once."""

    worker: Worker
    sqs: Any
    s3: Any = None
    table: Any = None


@lru_cache(maxsize=1)
def get_runtime() -> Runtime:
    """Build the worker once per execution environment, with clients pinned to the data region."""
    settings = Settings.from_environment()
    session = boto3.session.Session(region_name=settings.region)
    s3 = worker_client(session, "s3")
    table = worker_resource(session, "dynamodb").Table(settings.table)
    glue = worker_client(session, "glue") if settings.glue_database else None
    events = worker_client(session, "events") if settings.event_bus else None
    worker = Worker(settings, s3=s3, table=table, glue=glue, events=events)
    return Runtime(worker, worker_client(session, "sqs"), s3, table)


def get_worker() -> Worker:
    """The execution environment's worker."""
    return get_runtime().worker


class _Invocation:
    """Per-invocation state: the time budget, shared by every record of the batch."""

    budget: Budget | None = None


invocation = _Invocation()


def _keep_invisible(record: SQSRecord, seconds: int) -> None:
    """Leave a failed record invisible for ``seconds`` (0: deliver again now); best effort."""
    queue_url = get_runtime().worker.settings.queue_url
    if not queue_url:
        return
    try:
        get_runtime().sqs.change_message_visibility(
            QueueUrl=queue_url, ReceiptHandle=record.receipt_handle, VisibilityTimeout=min(43_200, max(0, seconds))
        )
    except Exception as error:  # the queue's own visibility timeout applies instead
        logger.warning("could not change the message's visibility", error=str(error))


def record_handler(record: SQSRecord, lambda_context: Any = None) -> dict[str, Any]:
    """Process one SQS record; raising marks only this record as failed (SQS delivers it again)."""
    worker = get_worker()
    receive_count = int(record.attributes.approximate_receive_count or 1)
    budget = invocation.budget or Budget.from_remaining(DEFAULT_REMAINING_MS)
    started = time.monotonic()
    try:
        ref = worker.parse(record.body)
    except MalformedMessageError as error:
        logger.error("unprocessable message; it will reach the DLQ", message_id=record.message_id, error=str(error))
        names.count(metrics, names.MALFORMED_MESSAGES)
        raise
    logger.append_keys(job_id=ref.job_id, input_uri=ref.uri, receive_count=receive_count)
    try:
        owner = delivery_owner(record.message_id, receive_count)
        outcome = worker.process(ref, owner=owner, receive_count=receive_count, budget=budget)
    except JobInProgressError as busy:
        logger.info("another delivery holds the job; retrying after its lease", reason=str(busy))
        _keep_invisible(record, busy.retry_after_seconds)
        raise
    except NotStartedError as error:
        logger.info("not started in this invocation; back to the queue", reason=str(error))
        _keep_invisible(record, 0)
        raise
    except TransientError as error:
        logger.warning("transient failure; the job is DEAD_LETTERED and the message moves to the DLQ"
                       if error.dead_lettered else "transient failure; SQS will deliver it again",
                       error=str(error))  # fmt: skip
        names.count(metrics, names.JOBS_DEAD_LETTERED if error.dead_lettered else names.JOBS_RETRIED)
        raise
    finally:
        logger.remove_keys(["receive_count"])
    if outcome.status is OutcomeStatus.SUCCEEDED and outcome.result:
        result = outcome.result
        names.record_success(
            metrics, rows_out=result.rows_out, rows_rejected=result.rows_rejected, bytes_in=result.bytes_in,
            bytes_out=result.bytes_out, ms=int((time.monotonic() - started) * 1000),
        )  # fmt: skip
        logger.info("job succeeded", rows_out=result.rows_out, rows_rejected=result.rows_rejected,
                    output_uri=result.output_uri)  # fmt: skip
    elif outcome.status is OutcomeStatus.SUPERSEDED:
        logger.info("converted, but a newer version of the key is current; nothing of it is visible",
                    reason=outcome.error)  # fmt: skip
    elif outcome.status is OutcomeStatus.DELETED:
        names.count(metrics, names.KEYS_DELETED)
        logger.info("deletion applied: the key's rows left the query results", reason=outcome.error)
    elif outcome.status is OutcomeStatus.FAILED:
        names.count(metrics, names.JOBS_FAILED)
        logger.error("job failed permanently; input left untouched", reason=outcome.error)
    elif outcome.status is OutcomeStatus.IGNORED:
        logger.info("no job for a folder marker; acknowledged", reason=outcome.error)
    else:
        names.count(metrics, names.DUPLICATE_DELIVERIES)
        logger.info("duplicate delivery ignored", reason=outcome.error)
    return {"job_id": outcome.job_id, "status": outcome.status.value}


def sweep_handler() -> dict[str, Any]:
    """The scheduled dead-letter sweep."""
    runtime = get_runtime()
    worker = runtime.worker
    try:
        report = sweep_dead_letters(
            sqs=runtime.sqs,
            dlq_url=worker.settings.dlq_url,
            jobs=worker.jobs,
            parse=worker.parse,
            dataset_of=lambda key: dataset_of(key, worker.settings.raw_prefix),
            clock=lambda: datetime.now(UTC),
        )
    except (ClientError, BotoCoreError) as error:
        # The invocation fails (the Errors metric and its alarm see it): the DLQ's jobs stay unmarked until a
        # sweep gets through. A connect timeout here usually means the VPC has no route to SQS.
        failure = classify_aws_error(error)
        logger.error("dead-letter sweep failed; no job was marked", error=f"{type(error).__name__}: {error}")
        raise failure from error
    if report.marked:
        names.count(metrics, names.JOBS_DEAD_LETTERED, report.marked)
    logger.info("dead-letter sweep", messages=report.messages, marked=report.marked, malformed=report.malformed)
    worker.notify(*report.marked_jobs)
    repaired = reconcile(
        s3=runtime.s3, table=runtime.table, outputs=worker.outputs, bucket=worker.settings.bucket,
        processed_prefix=worker.settings.processed_prefix, clock=lambda: datetime.now(UTC),
    )  # fmt: skip
    for name, value in ((names.OUTPUTS_PROMOTED_LATE, repaired.promoted), (names.JOBS_RETIRED_LATE, repaired.retired),
                        (names.ORPHAN_OUTPUTS_RETIRED, repaired.orphans)):  # fmt: skip
        names.count(metrics, name, value)
    logger.info("reconciliation", promoted=repaired.promoted, retired=repaired.retired, orphans=repaired.orphans)
    return {"messages": report.messages, "marked": report.marked, "malformed": report.malformed,
            "promoted": repaired.promoted, "retired": repaired.retired, "orphans": repaired.orphans}  # fmt: skip


def is_sweep(event: dict[str, Any]) -> bool:
    """Whether ``event`` is the scheduled sweep rather than an SQS batch."""
    return event.get("source") == "aws.events" and event.get("detail-type") == "Scheduled Event"


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """SQS-triggered entry point with ``ReportBatchItemFailures``; also the scheduled sweep."""
    if is_sweep(event):
        return sweep_handler()
    remaining = context.get_remaining_time_in_millis() if context else DEFAULT_REMAINING_MS
    invocation.budget = Budget.from_remaining(remaining)
    try:
        response = process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    finally:
        invocation.budget = None
    return dict(response)
