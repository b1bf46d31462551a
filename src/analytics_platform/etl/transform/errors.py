"""What a failure means for the job, in one place: a full disk (transient), a corrupt gzip, a DuckDB error."""

from __future__ import annotations

import errno
import gzip
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from analytics_platform.etl.exceptions import (
    CompressionError,
    DiskFullError,
    EncodingError,
    MalformedContentError,
    PermanentError,
    TooLargeError,
)

DISK_FULL_HINT = "raise ephemeral_storage_mb, or lower max_object_mb"


def disk_full(detail: object) -> DiskFullError:
    """The error of a full disk: nothing is wrong with the file, the function's storage is too small."""
    return DiskFullError(f"the function's ephemeral storage is full ({detail}): {DISK_FULL_HINT}")


@contextmanager
def disk_full_errors() -> Iterator[None]:
    """ENOSPC anywhere in the block as :class:`DiskFullError`; every other error passes unchanged."""
    try:
        yield
    except OSError as error:
        if error.errno == errno.ENOSPC:
            raise disk_full(error) from error
        raise


@contextmanager
def gzip_and_disk_errors() -> Iterator[None]:
    """A full disk as :class:`DiskFullError`, a truncated or corrupt gzip stream as :class:`CompressionError`.

    Other ``OSError``s (EIO, EACCES, ...) say nothing about the file and propagate, so the worker retries.
    """
    try:
        yield
    except OSError as error:
        if error.errno == errno.ENOSPC:
            raise disk_full(error) from error
        if isinstance(error, gzip.BadGzipFile):
            raise CompressionError(f"corrupt gzip stream: {error}") from error
        raise
    except EOFError as error:
        raise CompressionError(
            f"truncated gzip: the stream ends before its end-of-stream marker, the upload is incomplete ({error})"
        ) from error
    except zlib.error as error:
        raise CompressionError(f"corrupt gzip stream: {error}") from error


def classify_duckdb_error(error: duckdb.Error) -> PermanentError:
    """The permanent error a DuckDB failure means for the file; a full disk raises :class:`DiskFullError`."""
    text = str(error).splitlines()[0][:500]
    lowered = text.lower()
    if "no space left" in lowered:
        raise disk_full(text) from error
    if isinstance(error, duckdb.OutOfMemoryException):
        return TooLargeError(f"the file needs more memory than the worker allows: {text}")
    if "non-record json" in lowered:
        return MalformedContentError("JSON of the wrong shape: every element must be an object (a record)")
    if "unicode" in lowered or "utf" in lowered or "encoding" in lowered:
        return EncodingError(f"not UTF-8 text: {text}")
    if "gzip" in lowered or "compression" in lowered:
        return CompressionError(text)
    return MalformedContentError(text)
