"""Every exception of the worker. Permanent ones end the job FAILED; transient ones are retried."""

from __future__ import annotations


class EtlError(Exception):
    """Base class of the worker's errors."""


class PermanentError(EtlError):
    """Retrying cannot help: the job ends FAILED with this reason and the message is acknowledged."""


class UnsupportedFormatError(PermanentError):
    """The object is not CSV, JSON Lines or a JSON array (optionally gzip)."""


class EmptyInputError(PermanentError):
    """The object has zero bytes."""


class NoRowsError(PermanentError):
    """The object parsed, but holds no data rows (for example a header only)."""


class EncodingError(PermanentError):
    """The text is not UTF-8, or the content is binary."""


class CompressionError(PermanentError):
    """The object claims to be gzip but is not, or the gzip stream is corrupt."""


class MalformedContentError(PermanentError):
    """The content cannot be parsed as the detected format."""


class SchemaError(PermanentError):
    """The columns are unusable, for example duplicate names after normalisation."""


class TooLargeError(PermanentError):
    """The object is larger than the function can hold on its disk."""


class RejectShareExceededError(PermanentError):
    """More rows were rejected than the configured share allows."""


class MissingObjectError(PermanentError):
    """The object version named in the event no longer exists."""


class ItemTooLargeError(PermanentError):
    """A job record or dataset schema would exceed DynamoDB's 400 KB item limit (a file with thousands of columns)."""


class OverwrittenError(PermanentError):
    """Versioning suspended: the key now holds another upload than the event's (its ETag differs); that newer
    upload's own event processes it, and this job ends SUPERSEDED."""


class TransientError(EtlError):
    """Throttling, 5xx or a timeout: fail only this record so SQS redelivers it.

    ``dead_lettered`` is set when it happened on the last delivery and the job was recorded DEAD_LETTERED.
    """

    dead_lettered: bool = False


class NotStartedError(TransientError):
    """Too little of the invocation's time was left to start this record; it goes back to the queue at once."""


class TimeBudgetExceededError(TransientError):
    """The conversion was stopped before the function's deadline; the job is handed back.

    ``elapsed_seconds`` is how long it ran; ``estimated_total_seconds`` the whole conversion's estimated
    duration at the rate measured so far (None when no progress could be measured).
    """

    def __init__(self, message: str, *, elapsed_seconds: float, estimated_total_seconds: float | None) -> None:
        super().__init__(message)
        self.elapsed_seconds = elapsed_seconds
        self.estimated_total_seconds = estimated_total_seconds


class DiskFullError(TransientError):
    """The function's ephemeral storage ran out (ENOSPC) while the job was working on it."""


class MalformedMessageError(EtlError):
    """The SQS message is not an S3 ``Object Created`` event for this region's bucket.

    No job can be recorded for it; the record fails so the message ends in the DLQ for inspection.
    """


class JobAlreadyFinishedError(EtlError):
    """A redelivered event for a job that already ended for good (a no-op but for finishing a promotion)."""

    def __init__(self, message: str, status: str = "") -> None:
        super().__init__(message)
        self.status = status


class JobInProgressError(TransientError):
    """Another delivery holds a live lease on this job: retry once that lease has run out, never acknowledge.

    ``retry_after_seconds`` is when the lease ends; the handler keeps the message invisible until then.
    """

    def __init__(self, message: str, *, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class ContractViolationError(PermanentError):
    """A file misses a column its dataset's contract requires."""


class SchemaConflictError(PermanentError):
    """A file's column type cannot be reconciled with the dataset's table (for example text to integer)."""
