"""Fixtures of the unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.ops_support import ACCOUNT, CallerOf


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with its own environments: dev, staging (s3 backend), qa (local backend) and clash
    (dev's suffix)."""
    environments = tmp_path / "environments"
    environments.mkdir()
    (environments / "dev.toml").write_text("log_retention_days = 14\n")
    (environments / "staging.toml").write_text('backend = "s3"\nlog_retention_days = 30\n')
    (environments / "qa.toml").write_text('backend = "local"\n')
    (environments / "clash.toml").write_text('environment_suffix = "dev"\n')
    monkeypatch.setenv("TAP_ENVIRONMENTS_DIR", str(environments))
    monkeypatch.delenv("ENVIRONMENT_SUFFIX", raising=False)
    monkeypatch.delenv("TAP_LOCAL_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    # The caller's account, as STS would answer for these tests' credentials.
    monkeypatch.setattr("analytics_platform.infra.account._default_sts", lambda _region: CallerOf(ACCOUNT))
    return tmp_path
