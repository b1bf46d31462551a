"""After a file converted: agree with the dataset's table, then make the result visible exactly when it is true.

* :meth:`Publisher.prepare` (before any upload) merges the file's columns into the dataset's schema under the
  evolution policy of :mod:`.catalog` and casts the file to the table's wider types; an incompatible change
  fails the job before anything is written.
* :meth:`Publisher.finish` (after the Parquet is staged) publishes the schema to the Glue table, moves the key's
  pointer (:mod:`.latest`) to this version if S3 ordered it last, retires the job it replaces, ends the job
  SUCCEEDED only while it is still current, then promotes its Parquet (:mod:`.outputs`). A version that lost to a
  later one, or to a deletion, ends SUPERSEDED / DELETED with nothing ever visible.
* :meth:`Publisher.delete` applies an ``Object Deleted`` event: the key's rows leave the results, and if the
  deleted version was current and S3 now lists an older version as latest, that version is reinstated.

Every step is idempotent, so a delivery that crashes anywhere in between is simply run again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from analytics_platform.etl import latest
from analytics_platform.etl.catalog import DatasetCatalog, written_columns
from analytics_platform.etl.events import DELETE_MARKER_CREATED, ObjectRef
from analytics_platform.etl.exceptions import SchemaConflictError, TransientError
from analytics_platform.etl.job_values import DELETED, SUCCEEDED, SUPERSEDED, JobResult
from analytics_platform.etl.jobs import JobTracker
from analytics_platform.etl.outputs import Outputs, split_uri
from analytics_platform.etl.transform import ConversionResult, Limits, conform_file


@dataclass(frozen=True)
class Finished:
    """How the job ended: ``written`` False when another delivery holds it now; ``superseded_by``: what is current
    instead (then ``status`` is SUPERSEDED or DELETED)."""

    written: bool
    superseded_by: str | None = None
    status: str = SUCCEEDED
    retired: tuple[str, ...] = ()


@dataclass(frozen=True)
class Deletion:
    """What an ``Object Deleted`` event changed: ``applied`` (rows left the results), ``reason``, and the version
    made current again (to process now), if any."""

    applied: bool
    reason: str
    reinstated: ObjectRef | None = None
    retired: tuple[str, ...] = ()


class Publisher:
    """The catalog and latest-version steps of one region's worker (clients injected)."""

    def __init__(
        self, *, s3: Any, table: Any, jobs: JobTracker, catalog: DatasetCatalog | None, outputs: Outputs,
        clock: Callable[[], datetime],
    ) -> None:  # fmt: skip
        self._s3 = s3
        self._table = table
        self._jobs = jobs
        self._catalog = catalog
        self._outputs = outputs
        self._clock = clock

    @property
    def outputs(self) -> Outputs:
        """The region's output promotion and retirement."""
        return self._outputs

    def prepare(
        self, ref: ObjectRef, dataset: str, converted: ConversionResult, limits: Limits, work: Path
    ) -> SchemaConflictError | None:
        """Check the file against the dataset's current files (not counting the key's current version, which it
        replaces), and cast the file to the table's types where they are wider."""
        if self._catalog is None:
            return None
        try:
            evolution = self._catalog.evolve(dataset, converted.schema, self._replaced_columns(ref))
        except SchemaConflictError as conflict:
            return conflict
        if evolution.casts:
            converted.schema = conform_file(converted.output_path, evolution.casts, limits, work)
            converted.bytes_out = converted.output_path.stat().st_size
        return None

    def _replaced_columns(self, ref: ObjectRef) -> list[tuple[str, str]]:
        pointer = latest.read(self._table, ref)
        if pointer is None or not pointer.current_job or pointer.current_job == ref.job_id:
            return []
        record = self._jobs.get(pointer.current_job) or {}
        return written_columns(record.get("output_schema", [])) if record.get("job_status") == SUCCEEDED else []

    def _succeed(self, ref: ObjectRef, owner: str, result: JobResult, started: datetime) -> str:
        """The SUCCEEDED transaction, with the dataset's schema counts (re-read and retried when they changed)."""
        for _ in range(latest.MAX_ATTEMPTS):
            extra = []
            if self._catalog is not None:
                extra = [self._catalog.counting_update(result.dataset, written_columns(result.schema), +1)]
            outcome = self._jobs.succeed_current(ref.job_id, owner, result, started, self._clock(),
                                                 latest.pointer_key(ref), extra)  # fmt: skip
            if outcome != "retry":
                return outcome
        raise TransientError(f"the {result.dataset!r} schema kept changing under concurrent jobs; retrying")

    def finish(self, ref: ObjectRef, owner: str, result: JobResult, started: datetime) -> Finished:
        """Take the key's pointer, retire what this version replaces, end the job SUCCEEDED with its columns
        counted, publish the table and promote the output (or end it SUPERSEDED / DELETED when a later state of
        the key won). Raises SchemaConflictError when a concurrent job of the dataset committed a type this file's
        cannot share a column with."""
        order = ref.order if ref.order else latest.listing_order(self._s3, self._table, ref)
        if order is None:
            holder = latest.Pointer(state="object", current_job="a newer version S3 lists as the key's latest")
            return self._retire_self(ref, owner, result, started, holder)
        moved = latest.move(self._table, ref, order=order, job_id=ref.job_id, at_least=not ref.order)
        if not moved.won:
            return self._retire_self(ref, owner, result, started, moved.holder or latest.Pointer())
        retired = self._retire_replaced(ref, moved.replaced, by=ref.job_id, status=SUPERSEDED)
        outcome = self._succeed(ref, owner, result, started)
        if outcome == "superseded":
            return self._retire_self(ref, owner, result, started, latest.read(self._table, ref) or latest.Pointer())
        if outcome == "lost":
            return Finished(False)
        if self._catalog is not None:
            self._catalog.publish(result.dataset)
        self._outputs.promote(ref.job_id)
        return Finished(True, retired=retired)

    def take_for_failure(self, ref: ObjectRef) -> tuple[str, ...]:
        """A version that failed for good is still the key's current content: if S3 ordered it last, the key's
        older rows leave the results (the failed job says why). Returns the jobs retired."""
        order = ref.order if ref.order else latest.listing_order(self._s3, self._table, ref)
        if order is None:
            return ()
        moved = latest.move(self._table, ref, order=order, job_id=ref.job_id, at_least=not ref.order)
        return self._retire_replaced(ref, moved.replaced, by=ref.job_id, status=SUPERSEDED) if moved.won else ()

    def _retire_replaced(self, ref: ObjectRef, replaced: str, *, by: str, status: str) -> tuple[str, ...]:
        if not replaced:
            return ()
        if not self._outputs.retire(replaced, by=by, status=status):
            latest.clear_previous(self._table, ref, replaced)
            return ()
        # The pointer keeps naming it (``previous_job``) until its state event is out (:meth:`announced`), so a
        # delivery that crashes before the event sends it again.
        return (replaced,)

    def announced(self, ref: ObjectRef, retired: tuple[str, ...]) -> None:
        """The retired jobs' state events are published: the key's pointer forgets them."""
        for job_id in retired:
            latest.clear_previous(self._table, ref, job_id)

    def retired_before(self, ref: ObjectRef) -> tuple[str, ...]:
        """For a repeated delivery of a job that ended already: the job it replaced, if the pointer still names it
        (its retirement, or its state event, may have been cut short by a crash)."""
        pointer = latest.read(self._table, ref)
        if pointer is None or pointer.current_job != ref.job_id or not pointer.previous_job:
            return ()
        return self._retire_replaced(ref, pointer.previous_job, by=ref.job_id, status=SUPERSEDED)

    def _retire_self(
        self, ref: ObjectRef, owner: str, result: JobResult, started: datetime, holder: latest.Pointer
    ) -> Finished:
        status = DELETED if holder.state == latest.DELETED else SUPERSEDED
        written = self._jobs.supersede_claimed(ref.job_id, owner, holder.describe(), result, started, self._clock(),
                                               status=status)  # fmt: skip
        if result.staging_uri:
            bucket, key = split_uri(result.staging_uri)
            self._s3.delete_object(Bucket=bucket, Key=key)
        return Finished(written, superseded_by=holder.describe(), status=status)

    def delete(self, ref: ObjectRef) -> Deletion:
        """Apply an ``Object Deleted`` event to the key's pointer and outputs."""
        by = f"{ref.deletion_type.lower()} (version {ref.version_id})"
        pointer = latest.read(self._table, ref)
        order = ref.order or (pointer.order if pointer else "")
        if ref.deletion_type == DELETE_MARKER_CREATED:
            if not latest.marker_exists(self._s3, ref):
                # Deleted for good since: its own deletion (a later event) restored what was below it, which the
                # pointer still names if that deletion's event came first.
                return Deletion(False, f"delete marker {ref.version_id} no longer exists; nothing visible changed")
            moved = latest.move(self._table, ref, order=order, job_id="", state=latest.DELETED, at_least=not ref.order)
            if not moved.won:
                holder = moved.holder.describe() if moved.holder else "unknown"
                return Deletion(False, f"a later change of the key is current: {holder}")
            retired = self._retire_replaced(ref, moved.replaced, by=by, status=DELETED)
            return Deletion(True, f"key deleted: {by}", retired=retired)
        # Permanently deleted: only the deletion of what is current (a version, or the delete marker on top)
        # changes what is visible; S3's listing says what is current now.
        current = pointer is not None and pointer.current_version == ref.version_id
        repeated = pointer is not None and pointer.order.startswith(order) and bool(order)
        if not (current or repeated):
            return Deletion(False, f"version {ref.version_id} was not the key's current one; nothing visible changed")
        now = latest.latest_in_s3(self._s3, ref)
        reinstated = latest.version_ref(ref, now.version_id, size=now.size, reinstated=True) if now.exists else None
        moved = latest.move(self._table, ref, order=order, job_id="", state=latest.DELETED,
                            version=now.version_id if now.is_delete_marker else "", at_least=True,
                            reinstating=reinstated.job_id if reinstated else "")  # fmt: skip
        if not moved.won and not (reinstated and moved.holder and moved.holder.order == reinstated.order):
            return Deletion(False, "a later change of the key is current")
        retired = self._retire_replaced(ref, moved.replaced, by=by, status=DELETED)
        if reinstated is None:
            return Deletion(True, f"key deleted: {by}", retired=retired)
        self._outputs.reopen(reinstated.job_id, f"current again: {by}")
        return Deletion(True, f"{by}; version {now.version_id} is current again", reinstated, retired)
