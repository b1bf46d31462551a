"""A reduced soak (about 60 uploads, faults, one killed runtime): every upload ends exactly once, truthfully."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmarks import soak

pytestmark = pytest.mark.e2e


def test_every_upload_ends_in_exactly_one_truthful_terminal_state(tmp_path: Path) -> None:
    # GIVEN the local platform with 5% of the worker's requests failing, and a runtime killed mid-job
    # WHEN 60 uploads of every kind go in
    report = soak.run_soak(objects=60, fault_rate=0.05, kills=1, root=tmp_path, progress=print)
    print("\n".join(report.lines()))
    # THEN nothing is left unfinished, duplicated, miscounted, or dead-lettered without a trace
    assert report.objects >= 60  # with the re-uploads
    assert report.not_terminal == 0 and report.zero_or_many_records == 0
    assert report.wrong_row_counts == 0 and report.dlq_not_dead_lettered == 0
    assert sum(report.by_status.values()) == report.objects
    assert report.by_status["SUCCEEDED"] >= 40 and report.by_status["FAILED"] >= 10
    assert report.kills == 1
    # AND in every region the query returns exactly the current versions' rows, as the SUCCEEDED jobs count them
    assert len(report.truths) == 3 and all(truth.agrees for truth in report.truths), report.lines()
    assert all(truth.query_rows > 0 for truth in report.truths)
