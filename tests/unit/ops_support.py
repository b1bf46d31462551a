"""What the operations unit tests share: plan fixtures, fake regions, a fake Terraform runner and STS."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from analytics_platform.infra.config import PlatformConfig, load_config
from analytics_platform.infra.names import stack_id
from analytics_platform.local.state import LocalPaths, LocalState, config_document, write_state
from analytics_platform.ops import runs
from analytics_platform.ops.drift_compare import Drift
from analytics_platform.ops.runs import RegionRun
from analytics_platform.targeting.deployment import Deployment

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
QUEUE = "aws_sqs_queue.queues_work_queue_0A1B2C3D"
BUCKET = "aws_s3_bucket.data_bucket_5E6F7A8B"
VERSIONING = "aws_s3_bucket_versioning.data_bucket_versioning_9C0D1E2F"
FUNCTION = "aws_lambda_function.etl_function_3A4B5C6D"
LOG_GROUP = "aws_cloudwatch_log_group.etl_logs_7E8F9A0B"
ENDPOINT = "http://127.0.0.1:45999"


def refresh_plan() -> dict[str, Any]:
    """A ``terraform show -json`` of a refresh-only plan of eu-west-1 (tests/fixtures)."""
    document: dict[str, Any] = json.loads((FIXTURES / "drift_refresh_only_plan.json").read_text())
    return document


def by_address(drifts: list[Drift]) -> dict[str, Drift]:
    return {d.address: d for d in drifts}


ACCOUNT = "123456789012"


def regional_state(region: str, index: int, **queue: Any) -> dict[str, dict[str, Any]]:
    """One region's refreshed state with the identifiers AWS generates there."""
    underscored = region.replace("-", "_")
    return {
        "aws_vpc.network_vpc_1A2B": {
            "id": f"vpc-0abc{index}def123456789",
            "cidr_block": f"10.{index}.0.0/16",
            "enable_dns_support": True,
            "tags": {"Region": region, "Name": f"analytics-vpc-{region}-dev"},
        },
        "aws_security_group.lambda_sg_3C4D": {
            "id": f"sg-0{index}23456789abcdef0",
            "vpc_id": f"vpc-0abc{index}def123456789",
            "description": f"ETL function in vpc-0abc{index}def123456789",
            "egress": [{"cidr_blocks": ["0.0.0.0/0"], "prefix_list_ids": [f"pl-{index}3456789"]}],
            "name": f"analytics-sg-{region}-dev",
        },
        "aws_sqs_queue.queues_work_queue_0A1B2C3D": {
            "arn": f"arn:aws:sqs:{region}:{ACCOUNT}:analytics-queue-{region}-dev",
            "url": f"https://sqs.{region}.amazonaws.com/{ACCOUNT}/analytics-queue-{region}-dev",
            "name": f"analytics-queue-{region}-dev",
            "visibility_timeout_seconds": 300,
            "redrive_policy": json.dumps(
                {
                    "deadLetterTargetArn": f"arn:aws:sqs:{region}:{ACCOUNT}:analytics-dlq-{region}-dev",
                    "maxReceiveCount": 3,
                }
            ),
            "tags": {"Region": region},
            **queue,
        },
        "aws_glue_catalog_database.catalog_db_5E6F": {
            "name": f"analytics_{underscored}_dev",
            "catalog_id": ACCOUNT,
            "location_uri": f"s3://analytics-bucket-{region}-dev/{index}1f0c7e2-9a4b-4c1d-8e2f-3a5b6c7d8e9f/",
            "parameters": {"owner": f"{ACCOUNT}", "subnet": f"10.{index}.1.17"},
        },
    }


def three_regions(**overrides: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    regions = ("us-east-1", "eu-west-1", "ap-southeast-1")
    return {region: regional_state(region, i, **overrides.get(region, {})) for i, region in enumerate(regions)}


def change(address: str, *actions: str) -> dict[str, Any]:
    return {"address": address, "type": address.split(".")[0], "change": {"actions": list(actions)}}


def deployment_of(*regions: str, env: str = "dev") -> Deployment:
    return Deployment(env, PlatformConfig(account_id=ACCOUNT), regions, Path("/nonexistent"))


class FakeRunner:
    """Terraform as ``terraform_runs`` sees it: each region's plan document, or the error its init raises."""

    def __init__(self, plans: dict[str, dict[str, Any] | Exception]) -> None:
        self.plans = plans
        self.applied: list[str] = []
        self.settled: list[str] = []
        self.modes: dict[str, str] = {}

    def init(self, stack: Path, log: str, backend: Path | None = None) -> None:
        plan = self.plans[self.region(log)]
        if isinstance(plan, Exception):
            raise plan

    @staticmethod
    def region(log: str) -> str:
        return log.split("-", 1)[1]

    def plan(self, stack: Path, log: str, *, plan_file: str, mode: str = "normal", events: Any = None) -> bool:
        self.modes[self.region(log)] = mode
        plan = self.plans[self.region(log)]
        assert isinstance(plan, dict)
        return bool(plan.get("resource_changes") or plan.get("output_changes"))

    def show_plan(self, stack: Path, plan_file: str) -> dict[str, Any]:
        plan = self.plans[next(r for r in self.plans if stack.name == stack_id(r, "dev"))]
        assert isinstance(plan, dict)
        return plan

    def apply_plan(self, stack: Path, log: str, plan_file: str, events: Any = None) -> None:
        self.applied.append(self.region(log))

    def settle(self, stack: Path, log: str) -> None:
        self.settled.append(self.region(log))


def run_terraform(
    monkeypatch: pytest.MonkeyPatch, command: str, plans: dict[str, dict[str, Any] | Exception]
) -> tuple[list[RegionRun], FakeRunner]:
    runner = FakeRunner(plans)
    monkeypatch.setattr(Deployment, "runner", lambda self: runner)
    monkeypatch.setattr(Deployment, "synthesize", lambda self: None)
    return runs.terraform_runs(deployment_of(*plans), command, out=lambda line: None), runner


class FakeStdin(io.StringIO):
    def __init__(self, text: str, tty: bool) -> None:
        super().__init__(text)
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


class CallerOf:
    """An STS client whose credentials belong to ``account``."""

    def __init__(self, account: str) -> None:
        self.account = account

    def get_caller_identity(self) -> dict[str, str]:
        return {"Account": self.account, "Arn": f"arn:aws:iam::{self.account}:user/ops", "UserId": "AIDA"}


def start_fake_platform(root: Path) -> LocalPaths:
    """The state ``tap local up`` leaves, for the dev environment, with this process as its daemon."""
    paths = LocalPaths(root / "local")
    config = load_config(
        None, environ={}, local_endpoint=ENDPOINT, backend="local", state_dir=str(paths.root / "tfstate")
    )
    regions = [r.region for r in config.regions]
    write_state(paths, LocalState(os.getpid(), 45999, ENDPOINT, regions, config_document(config)))
    return paths
