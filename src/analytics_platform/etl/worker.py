"""One upload, end to end: claim its job, download, transform, upload the results, record the outcome."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from analytics_platform.etl.catalog import DatasetCatalog
from analytics_platform.etl.events import ObjectRef, parse_object_event
from analytics_platform.etl.exceptions import (
    ItemTooLargeError,
    JobAlreadyFinishedError,
    MalformedMessageError,
    MissingObjectError,
    NotStartedError,
    OverwrittenError,
    PermanentError,
    TimeBudgetExceededError,
    TooLargeError,
    TransientError,
)
from analytics_platform.etl.jobs import DELETED, FAILED, SUCCEEDED, TERMINAL, JobResult, JobTracker, lease_expiry
from analytics_platform.etl.keys import dataset_of, output_keys
from analytics_platform.etl.notify import JobEvents
from analytics_platform.etl.outcome import Budget, Outcome, OutcomeStatus, budget_message
from analytics_platform.etl.outputs import Outputs
from analytics_platform.etl.publish import Publisher
from analytics_platform.etl.settings import DISK_FACTOR, Settings
from analytics_platform.etl.storage import ObjectStore, classify_aws_error
from analytics_platform.etl.transform import ConversionResult, Limits, convert_file, disk_needed

#: A record is not started with less time than this left; it goes back to the queue at once.
MIN_START_SECONDS = 5.0
#: Columns a FAILED record keeps of a file whose schema was too large to record.
MAX_SCHEMA_IN_FAILED_RECORD = 100
T = TypeVar("T")


class Worker:
    """Processes upload events for one region; AWS clients are injected."""

    def __init__(
        self, settings: Settings, *, s3: Any, table: Any, glue: Any = None, events: Any = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:  # fmt: skip
        """``glue`` None (or no ``GLUE_DATABASE``): no catalog; ``events`` None (or no ``EVENT_BUS_NAME``): no job
        state events; the rest works as before."""
        self.settings = settings
        self._store = ObjectStore(s3, settings.bucket)
        self._jobs = JobTracker(table, region=settings.region)
        self._clock = clock
        catalog = None
        if glue is not None and settings.glue_database:
            catalog = DatasetCatalog(
                table, glue, database=settings.glue_database, bucket=settings.bucket, prefix=settings.processed_prefix
            )
        self.outputs = Outputs(s3=s3, table=table, processed_prefix=settings.processed_prefix, clock=clock,
                               staging_prefix=settings.staging_prefix, catalog=catalog)  # fmt: skip
        self._publisher = Publisher(s3=s3, table=table, jobs=self._jobs, catalog=catalog, outputs=self.outputs,
                                    clock=clock)  # fmt: skip
        self._events = JobEvents(events, bus=settings.event_bus) if events is not None and settings.event_bus else None

    def notify(self, *job_ids: str) -> None:
        """Publish the state event of each terminal job (raises TransientError if EventBridge refuses)."""
        if self._events is None:
            return
        for job_id in job_ids:
            record = self._jobs.get(job_id)
            if record is not None:
                self._events.publish(record)

    @property
    def jobs(self) -> JobTracker:
        """The job tracker (for queries in tests and tools)."""
        return self._jobs

    def parse(self, body: str) -> ObjectRef:
        """Parse and residency-check a message; raises :class:`MalformedMessageError`."""
        ref = parse_object_event(body)
        if ref.bucket != self.settings.bucket:
            raise MalformedMessageError(
                f"event for bucket {ref.bucket!r}, but this worker serves only {self.settings.bucket!r} "
                f"in {self.settings.region}; refusing to read another bucket"
            )
        if ref.region and ref.region != self.settings.region:
            raise MalformedMessageError(f"event from region {ref.region}, worker is in {self.settings.region}")
        if not ref.key.startswith(self.settings.raw_prefix):
            raise MalformedMessageError(f"key {ref.key!r} is not under {self.settings.raw_prefix!r}")
        return ref

    def process(self, ref: ObjectRef, *, owner: str, receive_count: int, budget: Budget) -> Outcome:
        """Handle one parsed message; raises :class:`TransientError` to have SQS deliver it again.

        On the last delivery (``receive_count`` reached ``max_receive_count``) a transient failure records
        the job DEAD_LETTERED before raising, since the message then moves to the DLQ.
        """
        if ref.is_folder_marker:
            # No job: a folder is not an upload, and a FAILED record for it would only be noise in tap jobs.
            return Outcome(OutcomeStatus.IGNORED, ref.job_id, error=f"folder marker {ref.key!r} ({ref.size} bytes)")
        if ref.is_deletion:
            return self._delete(ref, owner=owner, receive_count=receive_count, budget=budget)
        outcome = self._process_upload(ref, owner=owner, receive_count=receive_count, budget=budget)
        self._record(lambda: self.notify(outcome.job_id, *outcome.retired))
        self._record(lambda: self._publisher.announced(ref, outcome.retired))
        return outcome

    def _delete(self, ref: ObjectRef, *, owner: str, receive_count: int, budget: Budget) -> Outcome:
        """An ``Object Deleted`` event: the key's rows leave the results; a version made current again is
        processed now, in this delivery (a failure there retries the deletion, which picks it up again)."""
        deletion = self._record(lambda: self._publisher.delete(ref))
        self._record(lambda: self.notify(*deletion.retired))
        self._record(lambda: self._publisher.announced(ref, deletion.retired))
        if deletion.reinstated is not None:
            again = self.process(deletion.reinstated, owner=owner, receive_count=receive_count, budget=budget)
            reason = f"{deletion.reason}; {again.status.value} as job {again.job_id}"
            return Outcome(OutcomeStatus.DELETED, again.job_id, again.result, error=reason)
        status = OutcomeStatus.DELETED if deletion.applied else OutcomeStatus.IGNORED
        return Outcome(status, ref.job_id, error=deletion.reason)

    def _process_upload(self, ref: ObjectRef, *, owner: str, receive_count: int, budget: Budget) -> Outcome:
        working_time = budget.work_deadline() - time.monotonic()
        if working_time < MIN_START_SECONDS:
            # Claiming now would only spend one of the job's deliveries on a transfer stopped at once.
            raise NotStartedError(
                f"not started: {max(0.0, working_time):.1f} s of working time left in this invocation"
            )
        dataset = dataset_of(ref.key, self.settings.raw_prefix)
        started = self._clock()
        try:
            self._jobs.ensure(ref, dataset, started)
            lease = lease_expiry(budget.wall_deadline(started))
            self._jobs.claim(ref.job_id, owner, started, lease_expires_at=lease, receive_count=receive_count)
        except JobAlreadyFinishedError as done:
            if done.status == SUCCEEDED:  # an earlier delivery may have crashed before the promotion
                self._record(lambda: self.outputs.promote(ref.job_id))
            elif done.status == FAILED and ref.reinstated:
                # A failed version made current again is the key's content again: the pointer names it, so
                # deleting it in turn reinstates the version below.
                self._record(lambda: self._publisher.take_for_failure(ref))
            retired = self._record(lambda: self._publisher.retired_before(ref))
            return Outcome(OutcomeStatus.DUPLICATE, ref.job_id, error=str(done), retired=retired)
        except (ClientError, BotoCoreError) as error:
            raise classify_aws_error(error) from error
        final = receive_count >= self.settings.max_receive_count
        try:
            return self._run_claimed(ref, dataset, owner, started, budget)
        except TimeBudgetExceededError as late:
            late_reason = TransientError(budget_message(late, budget.function_seconds))
            raise self._hand_back(ref.job_id, owner, late_reason, final) from late
        except TransientError as transient:
            raise self._hand_back(ref.job_id, owner, transient, final) from transient
        except Exception as unexpected:
            # Unknown failure: keep the upload safe by retrying (and, if it persists, the DLQ).
            wrapped = TransientError(f"unexpected {type(unexpected).__name__}: {unexpected}")
            raise self._hand_back(ref.job_id, owner, wrapped, final) from unexpected

    def _hand_back(self, job_id: str, owner: str, error: TransientError, final: bool) -> TransientError:
        """Record the transient failure (DEAD_LETTERED on the last delivery, else PENDING); returns it to raise."""
        now = self._clock()
        if final:
            error.dead_lettered = self._record(lambda: self._jobs.dead_letter_claimed(job_id, owner, error, now))
            # The message goes to the DLQ either way; the dead-letter sweep publishes the event again.
            with contextlib.suppress(TransientError, ClientError, BotoCoreError):
                self.notify(job_id)
        else:
            self._record(lambda: self._jobs.release(job_id, owner, error, now))
        return error

    def _recorded_or_retry(self, job_id: str, written: bool) -> None:
        """A final write whose condition failed: another delivery holds the job now. Acknowledge the message only
        if the job is terminal anyway; otherwise this delivery must be retried, never acknowledged."""
        if written:
            return
        current = self._jobs.get(job_id) or {}
        if current.get("job_status") not in TERMINAL:
            raise TransientError(
                f"job {job_id} was taken over by another delivery and is {current.get('job_status')}; retrying"
            )

    def _run_claimed(self, ref: ObjectRef, dataset: str, owner: str, started: datetime, budget: Budget) -> Outcome:
        result, failure = self._convert(ref, dataset, budget)
        finished = self._clock()
        if isinstance(failure, OverwrittenError):  # versioning suspended: a newer upload replaced this one
            by = "a newer upload of the key (versioning suspended: the object was overwritten)"
            jobs = self._jobs
            written = self._record(lambda: jobs.supersede_claimed(ref.job_id, owner, by, result, started, finished))
            self._recorded_or_retry(ref.job_id, written)
            return Outcome(OutcomeStatus.SUPERSEDED, ref.job_id, result, error=f"superseded by {by}")
        if failure is None:
            try:
                done = self._record(lambda: self._publisher.finish(ref, owner, result, started))
            except PermanentError as refused:  # a schema conflict at commit, a schema too large for its item
                failure = refused
                self._discard_staged(result)
            else:
                self._recorded_or_retry(ref.job_id, done.written)
                if done.superseded_by:
                    status = OutcomeStatus.DELETED if done.status == DELETED else OutcomeStatus.SUPERSEDED
                    return Outcome(status, ref.job_id, result, error=f"superseded by {done.superseded_by}")
                return Outcome(OutcomeStatus.SUCCEEDED, ref.job_id, result, retired=done.retired)
        # A version gone from S3 is not the key's content; any other failed version is (its job says why).
        retired: tuple[str, ...] = ()
        if not isinstance(failure, MissingObjectError):
            retired = self._record(lambda: self._publisher.take_for_failure(ref))
        if isinstance(failure, ItemTooLargeError):
            result.schema = result.schema[:MAX_SCHEMA_IN_FAILED_RECORD]  # the record itself must fit
        written = self._record(lambda: self._jobs.fail(ref.job_id, owner, failure, result, started, finished))
        self._recorded_or_retry(ref.job_id, written)
        reason = f"{type(failure).__name__}: {failure}"
        return Outcome(OutcomeStatus.FAILED, ref.job_id, result, error=reason, retired=retired)

    def _discard_staged(self, result: JobResult) -> None:
        """A job that will not succeed: its staged Parquet is never promoted (and its record names no output)."""
        if result.staging_uri:
            self._record(lambda: self._store.delete_uri(str(result.staging_uri)))
        result.output_uri = result.staging_uri = None

    @staticmethod
    def _record(write: Callable[[], T]) -> T:
        try:
            return write()
        except (ClientError, BotoCoreError) as error:
            raise classify_aws_error(error) from error

    def _check_disk(self, needed: int, free: int) -> None:
        if needed > free:
            raise TooLargeError(
                f"the file needs about {needed} bytes of disk, the function has {free} free: raise ephemeral_storage_mb"
            )

    def _convert(self, ref: ObjectRef, dataset: str, budget: Budget) -> tuple[JobResult, PermanentError | None]:
        settings = self.settings
        empty = JobResult(dataset=dataset, bytes_in=ref.size)
        if ref.size > settings.max_object_bytes:
            message = f"object is {ref.size} bytes; the worker accepts at most {settings.max_object_bytes} bytes"
            return empty, TooLargeError(message)
        work_root = Path(settings.work_dir)
        try:
            self._check_disk(int(ref.size * DISK_FACTOR), shutil.disk_usage(work_root).free)
        except TooLargeError as error:
            return empty, error
        output_key, quarantine_key = output_keys(settings, ref, dataset)
        deadline = budget.work_deadline()
        with tempfile.TemporaryDirectory(prefix=f"job-{ref.job_id}-", dir=work_root) as work:
            source = Path(work) / "input"
            try:
                self._store.download(ref, source, deadline)
                self._check_disk(disk_needed(source, ref.key), shutil.disk_usage(work_root).free)
            except PermanentError as error:
                return empty, error
            limits = Limits(
                memory_mb=settings.duckdb_memory_mb, max_reject_ratio=settings.max_reject_ratio, deadline=deadline
            )
            contract = settings.contracts.get(dataset)
            converted = convert_file(
                source, Path(work) / "output.parquet", name=ref.key, limits=limits, contract=contract
            )
            if converted.failure is None:
                converted.failure = self._record(
                    lambda: self._publisher.prepare(ref, dataset, converted, limits, Path(work) / "conform")
                )
                if converted.failure is not None:
                    converted.output_path.unlink(missing_ok=True)
            result = self._upload(converted, ref, dataset, output_key, quarantine_key, budget.deadline - 1.5)
            return result, converted.failure

    def _upload(
        self, converted: ConversionResult, ref: ObjectRef, dataset: str, output_key: str, quarantine_key: str,
        deadline: float,
    ) -> JobResult:  # fmt: skip
        result = JobResult(
            dataset=dataset, rows_in=converted.rows_in, rows_rejected=converted.rows_rejected,
            bytes_in=converted.bytes_in, schema=[f"{n}:{t}" for n, t in converted.schema],
        )  # fmt: skip
        if converted.quarantine_path:
            self._store.upload(converted.quarantine_path, quarantine_key, ref, "application/x-ndjson", deadline)
            result.quarantine_uri = self._store.uri(quarantine_key)
        if converted.failure is None:
            parquet = "application/vnd.apache.parquet"
            staging_key = self.outputs.staging_key(output_key)
            self._store.upload(converted.output_path, staging_key, ref, parquet, deadline)
            result.rows_out = converted.rows_out
            result.bytes_out = converted.bytes_out
            result.output_uri = self._store.uri(output_key)
            result.staging_uri = self._store.uri(staging_key)
        return result
