"""Shared fixtures: the stacks are synthesized once per test session (synth is slow)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The account the unit stacks are synthesized for (names carry it).
UNIT_ACCOUNT = "111122223333"


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``{"outdir": Path, "config": PlatformConfig, "stacks": {region: cdk.tf.json as dict}}``."""
    return _synthesize(tmp_path_factory, "synth")


#: The production-like settings of ``synthesized_kms`` (the defaults leave them off): zones pinned by id, alarm
#: e-mails, deletion protection, a queue concurrency cap below the reserved concurrency, old versions kept past
#: their Glacier transition, principals the query roles trust.
PROTECTED_SETTINGS: dict[str, Any] = {
    "regions": [
        {"region": "us-east-1", "vpc_cidr": "10.0.0.0/16", "az_ids": ["use1-az4", "use1-az6"]},
        {"region": "eu-west-1", "vpc_cidr": "10.1.0.0/16", "az_ids": ["euw1-az1", "euw1-az2"]},
        {"region": "ap-southeast-1", "vpc_cidr": "10.2.0.0/16", "az_ids": ["apse1-az1", "apse1-az3"]},
    ],
    "alarm_emails": ["oncall@example.com", "data-team@example.org"],
    "deletion_protection": True,
    "queue_maximum_concurrency": 4,
    "noncurrent_version_expiration_days": 365,
    "query_principals": ["arn:aws:iam::111122223333:role/analysts", "arn:aws:iam::111122223333:user/auditors/ana"],
}


@pytest.fixture(scope="session")
def synthesized_kms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Like ``synthesized``, with ``encryption = "kms"`` (one customer-managed key per region), the S3 backend and
    :data:`PROTECTED_SETTINGS`."""
    return _synthesize(tmp_path_factory, "synth-kms", encryption="kms", backend="s3", **PROTECTED_SETTINGS)


def _synthesize(tmp_path_factory: pytest.TempPathFactory, folder: str, **overrides: Any) -> dict[str, Any]:
    from analytics_platform.infra.app import synth
    from analytics_platform.infra.config import load_config
    from analytics_platform.infra.names import stack_id

    config = load_config(None, environ={"ENVIRONMENT_SUFFIX": "unit"}, **{"account_id": UNIT_ACCOUNT, **overrides})
    outdir = tmp_path_factory.mktemp(folder)
    synth(config, outdir=outdir, build_dir=ROOT / ".tap" / "build")
    stacks = {
        r.region: json.loads((outdir / "stacks" / stack_id(r.region, "unit") / "cdk.tf.json").read_text())
        for r in config.regions
    }
    return {"outdir": outdir, "config": config, "stacks": stacks}
