"""One upload, end to end: claim its job, download, transform, upload the results, record the outcome."""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial as partial_call
from pathlib import Path, PurePosixPath
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, ReadTimeoutError

from analytics_platform.etl.events import ObjectRef, parse_object_created
from analytics_platform.etl.exceptions import (
    JobAlreadyFinishedError,
    JobInProgressError,
    MalformedMessageError,
    MissingObjectError,
    PermanentError,
    TooLargeError,
    TransientError,
)
from analytics_platform.etl.jobs import JobResult, JobTracker
from analytics_platform.etl.settings import Settings
from analytics_platform.etl.transform import ConversionResult, Limits, convert_file

TRANSIENT_CODES = frozenset(
    {
        "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
        "ProvisionedThroughputExceededException", "RequestLimitExceeded", "SlowDown",
        "InternalError", "InternalServerError", "ServiceUnavailable", "RequestTimeout",
        "RequestTimeoutException", "TransactionInProgressException",
    }
)  # fmt: skip
MISSING_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "404", "NotFound"})
#: Disk needed per input byte: the input, the Parquet output and DuckDB spill files.
DISK_FACTOR = 2.5
DEFAULT_DATASET = "default"


@dataclass(frozen=True)
class Outcome:
    """What happened to one record: ``succeeded``, ``failed``, ``duplicate`` or ``in_progress``."""

    status: str
    job_id: str
    result: JobResult | None = None
    error: str | None = None


def dataset_of(key: str, raw_prefix: str) -> str:
    """First path segment under ``raw/`` (``raw/sales/x.csv`` -> ``sales``); ``default`` if none."""
    parts = PurePosixPath(key[len(raw_prefix) :] if key.startswith(raw_prefix) else key).parts
    if len(parts) < 2:
        return DEFAULT_DATASET
    cleaned = re.sub(r"[^0-9A-Za-z_-]+", "_", parts[0]).strip("_").lower()
    return cleaned or DEFAULT_DATASET


def base_name(key: str) -> str:
    """File name without its data and compression extensions."""
    name = PurePosixPath(key).name
    for extension in (".gz", ".gzip"):
        if name.lower().endswith(extension):
            name = name[: -len(extension)]
    stem = PurePosixPath(name).stem if "." in name else name
    return re.sub(r"[^0-9A-Za-z._-]+", "_", stem) or "object"


def output_keys(settings: Settings, ref: ObjectRef, dataset: str) -> tuple[str, str]:
    """``processed/<dataset>/ingest_date=YYYY-MM-DD/<name>-<version>.parquet`` and its quarantine twin."""
    day = ref.event_time.astimezone(UTC).strftime("%Y-%m-%d")
    version = re.sub(r"[^0-9A-Za-z._-]+", "_", ref.version_id)
    stem = f"{dataset}/ingest_date={day}/{base_name(ref.key)}-{version}"
    return (
        f"{settings.processed_prefix}{stem}.parquet",
        f"{settings.quarantine_prefix}{stem}.rejects.jsonl",
    )


def classify_aws_error(error: Exception) -> Exception:
    """Map an AWS client error onto the worker's taxonomy."""
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in MISSING_CODES:
            return MissingObjectError(f"object version no longer exists ({code})")
        if code in TRANSIENT_CODES or status >= 500 or status == 429:
            return TransientError(f"{code or status}: {error}")
        return TransientError(f"unexpected AWS error {code}: {error}")
    if isinstance(error, ConnectionError | ReadTimeoutError | BotoCoreError):
        return TransientError(f"{type(error).__name__}: {error}")
    return error


class Worker:
    """Processes upload events for one region; AWS clients are injected."""

    def __init__(
        self,
        settings: Settings,
        *,
        s3: Any,
        table: Any,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        lease_seconds: int = 900,
    ) -> None:
        self.settings = settings
        self._s3 = s3
        self._jobs = JobTracker(table, region=settings.region)
        self._clock = clock
        self._lease_seconds = lease_seconds

    @property
    def jobs(self) -> JobTracker:
        """The job tracker (for queries in tests and tools)."""
        return self._jobs

    def parse(self, body: str) -> ObjectRef:
        """Parse and residency-check a message; raises :class:`MalformedMessageError`."""
        ref = parse_object_created(body)
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

    def process(self, body: str, owner: str, lease_seconds: int | None = None) -> Outcome:
        """Handle one message; raises :class:`TransientError` / :class:`MalformedMessageError` to retry."""
        ref = self.parse(body)
        dataset = dataset_of(ref.key, self.settings.raw_prefix)
        started = self._clock()
        try:
            self._jobs.ensure(ref, dataset, started)
            self._jobs.claim(ref.job_id, owner, started, lease_seconds or self._lease_seconds)
        except JobAlreadyFinishedError as done:
            return Outcome("duplicate", ref.job_id, error=str(done))
        except JobInProgressError as busy:
            return Outcome("in_progress", ref.job_id, error=str(busy))
        except (ClientError, BotoCoreError) as error:
            raise classify_aws_error(error) from error
        return self._run_claimed(ref, dataset, owner, started)

    def _run_claimed(self, ref: ObjectRef, dataset: str, owner: str, started: datetime) -> Outcome:
        job_id = ref.job_id
        try:
            result = self._convert(ref, dataset)
        except PermanentError as permanent:
            partial = self._partial_result(permanent, dataset, ref)
            self._record(partial_call(self._jobs.fail, job_id, owner, permanent, partial, started, self._clock()))
            return Outcome("failed", job_id, partial, error=f"{type(permanent).__name__}: {permanent}")
        except TransientError as transient:
            self._record(partial_call(self._jobs.release, job_id, owner, transient, self._clock()))
            raise
        except Exception as unexpected:
            # Unknown failure: keep the upload safe by retrying (and, if it persists, the DLQ).
            wrapped = TransientError(f"unexpected {type(unexpected).__name__}: {unexpected}")
            self._record(partial_call(self._jobs.release, job_id, owner, wrapped, self._clock()))
            raise wrapped from unexpected
        self._record(partial_call(self._jobs.succeed, job_id, owner, result, started, self._clock()))
        return Outcome("succeeded", job_id, result)

    @staticmethod
    def _record(write: Callable[[], bool]) -> None:
        try:
            write()
        except (ClientError, BotoCoreError) as error:
            raise classify_aws_error(error) from error

    def _partial_result(self, error: PermanentError, dataset: str, ref: ObjectRef) -> JobResult | None:
        converted = error.result
        if isinstance(converted, JobResult):
            return converted
        return JobResult(dataset=dataset, bytes_in=ref.size)

    def _convert(self, ref: ObjectRef, dataset: str) -> JobResult:
        settings = self.settings
        if ref.size > settings.max_object_bytes:
            raise TooLargeError(
                f"object is {ref.size} bytes; the worker accepts at most {settings.max_object_bytes} bytes"
            )
        work_root = Path(settings.work_dir)
        free = shutil.disk_usage(work_root).free
        if ref.size * DISK_FACTOR > free:
            raise TooLargeError(f"object needs {int(ref.size * DISK_FACTOR)} bytes of disk, {free} free")
        output_key, quarantine_key = output_keys(settings, ref, dataset)
        with tempfile.TemporaryDirectory(prefix=f"job-{ref.job_id}-", dir=work_root) as work:
            source = Path(work) / "input"
            self._download(ref, source)
            limits = Limits(memory_mb=settings.duckdb_memory_mb, max_reject_ratio=settings.max_reject_ratio)
            try:
                converted = convert_file(source, Path(work) / "output.parquet", name=ref.key, limits=limits)
            except PermanentError as error:
                if isinstance(error.result, ConversionResult):
                    error.result = self._upload_partial(error.result, ref, dataset, quarantine_key)
                raise
            return self._upload(converted, ref, dataset, output_key, quarantine_key)

    def _download(self, ref: ObjectRef, target: Path) -> None:
        extra = {} if ref.version_id == "null" else {"VersionId": ref.version_id}
        try:
            self._s3.download_file(ref.bucket, ref.key, str(target), ExtraArgs=extra)
        except (ClientError, BotoCoreError) as error:
            raise classify_aws_error(error) from error

    def _put(self, path: Path, key: str, ref: ObjectRef, content_type: str) -> None:
        extra = {
            "ContentType": content_type,
            "Metadata": {"job-id": ref.job_id, "source-key": ref.key[:512], "source-version": ref.version_id},
        }
        try:
            self._s3.upload_file(str(path), self.settings.bucket, key, ExtraArgs=extra)
        except (ClientError, BotoCoreError) as error:
            raise classify_aws_error(error) from error

    def _uri(self, key: str) -> str:
        return f"s3://{self.settings.bucket}/{key}"

    def _upload_partial(
        self, converted: ConversionResult, ref: ObjectRef, dataset: str, quarantine_key: str
    ) -> JobResult:
        result = JobResult(
            dataset=dataset, rows_in=converted.rows_in, rows_out=0, rows_rejected=converted.rows_rejected,
            bytes_in=converted.bytes_in, schema=[f"{n}:{t}" for n, t in converted.schema],
        )  # fmt: skip
        if converted.quarantine_path:
            self._put(converted.quarantine_path, quarantine_key, ref, "application/x-ndjson")
            result.quarantine_uri = self._uri(quarantine_key)
        return result

    def _upload(
        self, converted: ConversionResult, ref: ObjectRef, dataset: str, output_key: str, quarantine_key: str
    ) -> JobResult:
        self._put(converted.output_path, output_key, ref, "application/vnd.apache.parquet")
        result = self._upload_partial(converted, ref, dataset, quarantine_key)
        result.rows_out = converted.rows_out
        result.bytes_out = converted.bytes_out
        result.output_uri = self._uri(output_key)
        return result


def monotonic_ms() -> int:
    """Milliseconds from a monotonic clock (for processing-time metrics)."""
    return int(time.monotonic() * 1000)
