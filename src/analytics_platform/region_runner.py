"""The one per-region runner: an action per region, in parallel by default, every region attempted whatever the
others do, each region's time and error kept, each region's progress on a :class:`~.progress.RegionBoard`.

``tap local up`` / ``down`` (:func:`analytics_platform.local.terraform_runs.run_per_region`) and the operations
commands (:func:`analytics_platform.ops.runs.run_regions`) both run on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from analytics_platform.progress import RegionBoard


@dataclass(frozen=True)
class RegionOutcome:
    """How one region's action ended: its time, and its error (None: it succeeded)."""

    region: str
    seconds: float
    error: BaseException | None = None


def run_each(
    regions: Sequence[str],
    action: Callable[[str], None],
    *,
    board: RegionBoard,
    verb: str,
    parallel: bool = True,
    finished: Callable[[RegionOutcome], str] | None = None,
) -> list[RegionOutcome]:
    """``action(region)`` for every region; the outcomes in the regions' order. ``finished`` words a region's end
    line on the board (by default ``done in 12.3s`` / ``FAILED after 4.5s``)."""

    def ended(outcome: RegionOutcome) -> str:
        if finished is not None:
            return finished(outcome)
        return f"FAILED after {outcome.seconds:.1f}s" if outcome.error else f"done in {outcome.seconds:.1f}s"

    def one(region: str) -> RegionOutcome:
        started = time.monotonic()
        board.start(region, verb)
        try:
            action(region)
            outcome = RegionOutcome(region, time.monotonic() - started)
        except BaseException as error:  # one region's failure is its own; the others go on
            outcome = RegionOutcome(region, time.monotonic() - started, error)
        board.finish(region, ended(outcome))
        return outcome

    if not parallel:
        return [one(region) for region in regions]
    with ThreadPoolExecutor(max_workers=len(regions) or 1) as pool:
        return list(pool.map(one, regions))


__all__ = ["RegionOutcome", "run_each"]
