"""After a file converted: agree with the dataset's table, then make the result visible exactly once.

* :meth:`Publisher.prepare` (before any upload) merges the file's columns into the dataset's schema under the
  evolution policy of :mod:`.catalog` and casts the file to the table's wider types; an incompatible change
  fails the job before anything is written.
* :meth:`Publisher.finish` (after the Parquet upload) publishes the schema to the Glue table and applies
  "latest version wins" (:mod:`.latest`): the job ends SUCCEEDED only while it is its key's newest converted
  version; older versions are retired, or this one is when a newer version won first.

Every step is idempotent, so a delivery that crashes anywhere in between is simply run again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from analytics_platform.etl import latest
from analytics_platform.etl.catalog import DatasetCatalog
from analytics_platform.etl.events import ObjectRef
from analytics_platform.etl.exceptions import SchemaConflictError
from analytics_platform.etl.job_values import SUCCEEDED, JobResult
from analytics_platform.etl.jobs import JobTracker
from analytics_platform.etl.transform import ConversionResult, Limits, conform_file


@dataclass(frozen=True)
class Finished:
    """How the job ended: ``written`` False when another delivery holds it now; ``superseded_by`` the newer job."""

    written: bool
    superseded_by: str | None = None


class Publisher:
    """The catalog and latest-version steps of one region's worker (clients injected)."""

    def __init__(
        self, *, s3: Any, table: Any, jobs: JobTracker, catalog: DatasetCatalog | None, processed_prefix: str,
        clock: Callable[[], datetime],
    ) -> None:  # fmt: skip
        self._s3 = s3
        self._table = table
        self._jobs = jobs
        self._catalog = catalog
        self._processed_prefix = processed_prefix
        self._clock = clock

    def prepare(
        self, dataset: str, converted: ConversionResult, limits: Limits, work: Path
    ) -> SchemaConflictError | None:
        """Evolve the dataset's schema with the file, and cast the file to the table's types where they are wider."""
        if self._catalog is None:
            return None
        try:
            evolution = self._catalog.evolve(dataset, converted.schema)
        except SchemaConflictError as conflict:
            return conflict
        if evolution.casts:
            converted.schema = conform_file(converted.output_path, evolution.casts, limits, work)
            converted.bytes_out = converted.output_path.stat().st_size
        return None

    def finish(self, ref: ObjectRef, owner: str, result: JobResult, started: datetime) -> Finished:
        """Publish the table, retire what this version replaces, and end the job SUCCEEDED (or SUPERSEDED)."""
        if self._catalog is not None:
            self._catalog.publish(result.dataset)
        position = latest.position(self._s3, ref)
        if position is None:  # unversioned, or the version vanished meanwhile: nothing to order against
            return Finished(self._jobs.succeed(ref.job_id, owner, result, started, self._clock()))
        newer = latest.take_current(self._table, ref, position.order)
        if newer is not None:
            return self._retire_self(ref, owner, result, started, newer)
        for version in position.older:
            self._retire(latest.version_ref(ref, version).job_id, by=ref.job_id)
        outcome = self._jobs.succeed_current(ref.job_id, owner, result, started, self._clock(), latest.pointer_key(ref))
        if outcome == "superseded":
            current = self._table.get_item(Key=latest.pointer_key(ref), ConsistentRead=True).get("Item") or {}
            return self._retire_self(ref, owner, result, started, str(current.get("current_job", "unknown")))
        return Finished(outcome == "ok")

    def _delete_output(self, uri: str | None) -> None:
        if not uri:
            return
        parts = urlsplit(uri)
        key = parts.path.lstrip("/")
        if key.startswith(self._processed_prefix):  # never anything but a Parquet output
            self._s3.delete_object(Bucket=parts.netloc, Key=key)

    def _retire_self(self, ref: ObjectRef, owner: str, result: JobResult, started: datetime, by: str) -> Finished:
        self._delete_output(result.output_uri)
        written = self._jobs.supersede_claimed(ref.job_id, owner, by, result, started, self._clock())
        return Finished(written, superseded_by=by)

    def _retire(self, job_id: str, by: str) -> None:
        record = self._jobs.get(job_id)
        if record is None or record.get("job_status") != SUCCEEDED:
            return  # never converted, failed, already retired; or still running: it retires itself
        self._delete_output(record.get("output_uri"))
        self._jobs.supersede_finished(job_id, by, self._clock())
