"""``tap jobs --json`` and ``tap datasets --json`` hold to their published schemas (on in-process moto)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from analytics_platform.analytics import commands
from analytics_platform.analytics import job_listing as jobs_query
from analytics_platform.cli import jobs as cli_jobs
from tests.functional.conftest import REGION, Platform
from tests.functional.test_console import BAD, GOOD, TARGET
from tests.schemas import validate


def test_jobs_and_datasets_json_match_their_schemas(
    platform: Platform, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    platform.upload_and_process("raw/orders/good.csv", GOOD)
    platform.upload_and_process("raw/orders/bad.json", BAD)
    monkeypatch.setattr(jobs_query, "job_table", lambda region, config_path, env=None: platform.table)
    monkeypatch.setattr(commands, "resolve_target", lambda region, **kwargs: TARGET)
    capsys.readouterr()
    assert cli_jobs.jobs_command(region=REGION, status=None, since="1h", as_json=True, config_path=None) == 0
    jobs: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    validate(jobs, "tap.jobs")
    assert sorted(job["job_status"] for job in jobs) == ["FAILED", "SUCCEEDED"]
    assert commands.datasets_command(region=REGION, local=False, as_json=True, config_path=None) == 0
    datasets = json.loads(capsys.readouterr().out)
    validate(datasets, "tap.datasets")
    assert [(d["dataset"], d["rows"], d["files"]) for d in datasets] == [("orders", 2, 1)]
