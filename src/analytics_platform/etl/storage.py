"""The worker's S3 traffic: download one object version, upload results, map AWS errors onto the taxonomy."""

from __future__ import annotations

import errno
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, ReadTimeoutError

from analytics_platform.etl.events import UNVERSIONED, ObjectRef
from analytics_platform.etl.exceptions import (
    DiskFullError,
    ItemTooLargeError,
    MissingObjectError,
    OverwrittenError,
    TimeBudgetExceededError,
    TransientError,
)

TRANSIENT_CODES = frozenset(
    {
        "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
        "ProvisionedThroughputExceededException", "RequestLimitExceeded", "SlowDown",
        "InternalError", "InternalServerError", "ServiceUnavailable", "RequestTimeout",
        "RequestTimeoutException", "TransactionInProgressException",
    }
)  # fmt: skip
#: With ``s3:ListBucket`` (granted for exactly this) S3 answers 404 for a key or version that is gone.
MISSING_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "404", "NotFound"})
#: S3 user metadata is ASCII and at most 2 KB in all; the source key is percent-encoded and capped.
MAX_METADATA_KEY_CHARS = 1024


def classify_aws_error(error: Exception) -> Exception:
    """Map an AWS client error onto the worker's taxonomy (missing object: permanent; the rest: transient)."""
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in MISSING_CODES:
            return MissingObjectError(f"object version no longer exists ({code})")
        if _item_too_large(error):
            return ItemTooLargeError(
                f"a DynamoDB item would exceed its 400 KB limit ({code}: {error}): the file's schema (its columns) is "
                "too large to record; split the file's columns into several datasets"
            )
        if code in {"PreconditionFailed", "412"}:
            return OverwrittenError("the object was overwritten since the event (its ETag changed)")
        if code in TRANSIENT_CODES or status >= 500 or status == 429:
            return TransientError(f"{code or status}: {error}")
        return TransientError(f"unexpected AWS error {code}: {error}")
    if isinstance(error, ConnectionError | ReadTimeoutError | BotoCoreError):
        return TransientError(f"{type(error).__name__}: {error}")
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return DiskFullError(f"the function's ephemeral storage is full: {error}; raise ephemeral_storage_mb")
    return error


def _item_too_large(error: ClientError) -> bool:
    """DynamoDB's answer to a write over 400 KB: ValidationException, or a transaction cancelled for it."""
    messages = [str(error.response.get("Error", {}).get("Message", ""))]
    messages += [str(r.get("Message", "")) for r in error.response.get("CancellationReasons", []) or []]
    return any("item size" in message.lower() for message in messages)


def object_metadata(ref: ObjectRef) -> dict[str, str]:
    """User metadata tying an output to its source; ASCII only (botocore refuses anything else)."""
    metadata = {"job-id": ref.job_id, "source-version": quote(ref.version_id, safe="")}
    encoded_key = quote(ref.key, safe="/")
    if len(encoded_key) <= MAX_METADATA_KEY_CHARS:
        metadata["source-key"] = encoded_key
    return metadata


@dataclass
class _Progress:
    """An S3 transfer callback that stops the transfer once the deadline has passed."""

    what: str
    total: int
    deadline: float | None
    started: float
    done: int = 0

    def __call__(self, chunk: int) -> None:
        self.done += chunk
        now = time.monotonic()
        if self.deadline is None or now < self.deadline:
            return
        elapsed = now - self.started
        estimate = elapsed * self.total / self.done if self.done else None
        raise TimeBudgetExceededError(
            f"{self.what} stopped after {elapsed:.0f} s at {self.done} of {self.total} bytes",
            elapsed_seconds=elapsed,
            estimated_total_seconds=estimate,
        )


class ObjectStore:
    """One bucket's objects for the worker (an injected boto3 S3 client)."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self.bucket = bucket

    def uri(self, key: str) -> str:
        """``s3://bucket/key``."""
        return f"s3://{self.bucket}/{key}"

    def download(self, ref: ObjectRef, target: Path, deadline: float | None) -> None:
        """The exact object version to ``target``; stops at ``deadline`` (``time.monotonic()``).

        Version ``null`` (versioning suspended) is whatever the key holds now: the event's ETag makes sure it is
        still the event's upload (S3 answers 412 otherwise, see :class:`OverwrittenError`). An overwrite in the
        instant between that check and the download converts the newer content under the older job; ordering by
        sequencer then retires the older job's output in favour of the newer one's, which is the same content.
        """
        extra: dict[str, str] = {"VersionId": ref.version_id}
        if ref.version_id == UNVERSIONED:
            extra = {}
            if ref.etag:
                try:
                    self._s3.head_object(Bucket=ref.bucket, Key=ref.key, IfMatch=f'"{ref.etag}"')
                except (ClientError, BotoCoreError) as error:
                    raise classify_aws_error(error) from error
        progress = _Progress("download", ref.size, deadline, time.monotonic())
        try:
            self._s3.download_file(ref.bucket, ref.key, str(target), ExtraArgs=extra, Callback=progress)
        except (ClientError, BotoCoreError, OSError) as error:
            raise classify_aws_error(error) from error

    def delete_uri(self, uri: str) -> None:
        """Delete ``s3://bucket/key`` (this bucket's only)."""
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        if bucket == self.bucket:
            self._s3.delete_object(Bucket=bucket, Key=key)

    def upload(self, path: Path, key: str, ref: ObjectRef, content_type: str, deadline: float | None) -> None:
        """Upload one result file with its source metadata; stops at ``deadline``."""
        extra = {"ContentType": content_type, "Metadata": object_metadata(ref)}
        progress = _Progress("upload", path.stat().st_size, deadline, time.monotonic())
        try:
            self._s3.upload_file(str(path), self.bucket, key, ExtraArgs=extra, Callback=progress)
        except (ClientError, BotoCoreError, OSError) as error:
            raise classify_aws_error(error) from error
