"""How one record ended in an invocation, and the invocation's time budget."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from analytics_platform.etl.exceptions import TimeBudgetExceededError
from analytics_platform.etl.job_values import JobResult

#: Share of the function's time kept back after the transform for the uploads and the record write.
RESERVE_SHARE, MIN_RESERVE_SECONDS = 0.1, 3.0


class OutcomeStatus(StrEnum):
    """How one record ended in this invocation (transient failures raise instead)."""

    SUCCEEDED = "succeeded"
    SUPERSEDED = "superseded"
    #: An ``Object Deleted`` event applied (the key's rows left the results), or a job that lost to one.
    DELETED = "deleted"
    FAILED = "failed"
    DUPLICATE = "duplicate"
    #: Nothing to do and no job recorded: a folder marker (key ending in ``/``).
    IGNORED = "ignored"


@dataclass(frozen=True)
class Outcome:
    """What happened to one record."""

    status: OutcomeStatus
    job_id: str
    result: JobResult | None = None
    error: str | None = None
    #: Jobs this one's success retired (their state events are published too).
    retired: tuple[str, ...] = ()


@dataclass(frozen=True)
class Budget:
    """The invocation's time: its deadline on the monotonic clock and how long the function may run."""

    deadline: float
    function_seconds: float

    @classmethod
    def from_remaining(cls, remaining_ms: int, function_seconds: float | None = None) -> Budget:
        """From the Lambda context's remaining time (``function_seconds`` defaults to all of it)."""
        remaining = remaining_ms / 1000
        return cls(time.monotonic() + remaining, function_seconds or remaining)

    def left(self) -> float:
        """Seconds until the deadline."""
        return self.deadline - time.monotonic()

    def work_deadline(self) -> float:
        """When the transform must stop, keeping time back for the uploads and the record write."""
        return self.deadline - max(MIN_RESERVE_SECONDS, self.function_seconds * RESERVE_SHARE)

    def wall_deadline(self, now: datetime) -> datetime:
        """The deadline on the wall clock (for the lease)."""
        return now + timedelta(seconds=max(0.0, self.left()))


def budget_message(error: TimeBudgetExceededError, function_seconds: float) -> str:
    """The reason a job is handed back when it cannot finish in the function's time."""
    needed = f"about {error.estimated_total_seconds:.0f} s" if error.estimated_total_seconds else "more time"
    return (
        f"{error}; the file needs {needed} at the measured rate, the function has {function_seconds:.0f} s: "
        "raise lambda_timeout_seconds / lambda_memory_mb"
    )
