"""Issue 10's operations as pure logic: drift parsing and comparison, the emulator's known answers, per-region runs,
deployment resolution and the command line. No Terraform, no network, no daemon."""

from __future__ import annotations

import io
import json
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from analytics_platform import cli
from analytics_platform.cli import jobs, operations
from analytics_platform.infra.config import ConfigError, PlatformConfig, load_config
from analytics_platform.infra.names import stack_id
from analytics_platform.local.state import LocalPaths, LocalState, config_document, write_state
from analytics_platform.ops import runs
from analytics_platform.ops.deployment import Deployment, OperationError, resolve_deployment
from analytics_platform.ops.drift_compare import Drift, changed_attributes, cross_region_drift, deployed_drift
from analytics_platform.ops.emulator import emulator_filter, emulator_only
from analytics_platform.ops.runs import RegionRun, confirm_destroy, plan_counts, run_regions, summary_table

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


# --- drift: changed attributes -----------------------------------------------------------------------------------
def test_changed_attributes_names_nested_paths_and_skips_meta_keys() -> None:
    # GIVEN a nested value changed in a list of maps, and terraform's timeouts block changed
    before = {"a": [{"b": {"c": 1, "d": 2}}], "timeouts": None, "same": "x", "empty": None}
    after = {"a": [{"b": {"c": 1, "d": 3}}], "timeouts": {"create": "5m"}, "same": "x", "empty": []}
    # WHEN / THEN only the leaf is reported, with its path; None and [] count as the same emptiness
    assert list(changed_attributes(before, after)) == [("a[0].b.d", 2, 3)]


def test_changed_attributes_reports_a_whole_list_whose_length_changed() -> None:
    assert list(changed_attributes({"l": [1]}, {"l": [1, 2]})) == [("l", [1], [1, 2])]


# --- drift: deployed --------------------------------------------------------------------------------------------
def test_deployed_drift_reports_changed_nested_attributes_with_their_paths() -> None:
    # GIVEN a refresh-only plan: queue timeout, versioning suspended, a Lambda variable changed, a log group deleted
    # WHEN
    found = by_address(deployed_drift("eu-west-1", refresh_plan()))
    # THEN
    assert found[QUEUE].attributes == ["visibility_timeout_seconds: 300 -> 45"]
    assert found[QUEUE].changes == [("visibility_timeout_seconds", 300, 45)]
    assert found[VERSIONING].attributes == ["versioning_configuration[0].status: 'Enabled' -> 'Suspended'"]
    assert found[FUNCTION].changes == [("environment[0].variables.MAX_OBJECT_MB", "50", "500")]
    assert all(d.region == "eu-west-1" and d.kind == "deployed" for d in found.values())


def test_deployed_drift_reports_a_resource_deleted_outside_terraform() -> None:
    found = by_address(deployed_drift("eu-west-1", refresh_plan()))
    assert found[LOG_GROUP].attributes == ["deleted outside Terraform"]
    assert found[LOG_GROUP].changes == []


def test_deployed_drift_leaves_out_an_attribute_its_companion_resource_reports() -> None:
    # GIVEN aws_s3_bucket_versioning is in the state: the bucket's own versioning attribute is its echo
    found = by_address(deployed_drift("eu-west-1", refresh_plan()))
    # THEN the bucket is not named (its only change is the companion's), the versioning resource is
    assert BUCKET not in found
    assert VERSIONING in found


def test_deployed_drift_reports_the_attribute_when_no_companion_resource_exists() -> None:
    # GIVEN a stack without aws_s3_bucket_versioning (neither in the state nor drifted)
    plan = refresh_plan()
    plan["resource_drift"] = [e for e in plan["resource_drift"] if e["type"] != "aws_s3_bucket_versioning"]
    module = plan["prior_state"]["values"]["root_module"]
    module["resources"] = [r for r in module["resources"] if r["type"] != "aws_s3_bucket_versioning"]
    # WHEN
    found = by_address(deployed_drift("eu-west-1", plan))
    # THEN the bucket's versioning is reported, with its path
    assert found[BUCKET].attributes == ["versioning[0].enabled: True -> False"]


def test_deployed_drift_names_a_companion_deleted_outside_terraform_once() -> None:
    # GIVEN the bucket policy was deleted outside Terraform: the refreshed state no longer holds it, and the
    # bucket's own (computed) policy attribute went empty with it
    policy = '{"Version":"2012-10-17","Statement":[]}'
    plan = {
        "resource_drift": [
            {"address": BUCKET, "mode": "managed", "type": "aws_s3_bucket", "name": "b",
             "change": {"actions": ["update"], "before": {"policy": policy}, "after": {"policy": ""}}},
            {"address": "aws_s3_bucket_policy.p", "mode": "managed", "type": "aws_s3_bucket_policy", "name": "p",
             "change": {"actions": ["delete"], "before": {"policy": policy}, "after": None}},
        ],
        "prior_state": {"values": {"root_module": {"resources": [
            {"address": BUCKET, "mode": "managed", "type": "aws_s3_bucket", "name": "b", "values": {}},
        ]}}},
    }  # fmt: skip
    # WHEN
    found = by_address(deployed_drift("us-east-1", plan))
    # THEN the policy resource is named (deleted), the bucket is not named a second time for it
    assert list(found) == ["aws_s3_bucket_policy.p"]


def test_deployed_drift_ignores_data_sources() -> None:
    found = by_address(deployed_drift("eu-west-1", refresh_plan()))
    assert not any(address.startswith("data.") for address in found)
    assert set(found) == {QUEUE, VERSIONING, FUNCTION, LOG_GROUP}


def test_deployed_drift_of_a_plan_without_drift_is_empty() -> None:
    plan = refresh_plan()
    plan.pop("resource_drift")
    assert deployed_drift("eu-west-1", plan) == []


# --- drift: cross-region ----------------------------------------------------------------------------------------
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


def test_cross_region_drift_of_identical_regions_is_empty() -> None:
    # GIVEN three regions that differ only in region names, generated ids, UUIDs, addresses and the account
    # WHEN / THEN nothing differs
    assert cross_region_drift(three_regions(), ACCOUNT) == []


def test_cross_region_drift_names_only_the_region_that_differs_with_both_values() -> None:
    # GIVEN eu-west-1's queue timeout changed
    states = three_regions(**{"eu-west-1": {"visibility_timeout_seconds": 45}})
    # WHEN
    found = cross_region_drift(states, ACCOUNT)
    # THEN exactly eu-west-1's queue is named, with its value and the others'
    assert [(d.region, d.address, d.kind) for d in found] == [("eu-west-1", QUEUE, "cross-region")]
    (line,) = found[0].attributes
    assert line.startswith("visibility_timeout_seconds: 45 here")
    assert "us-east-1=300" in line and "ap-southeast-1=300" in line


def test_cross_region_drift_names_the_region_a_resource_is_missing_in() -> None:
    states = three_regions()
    del states["ap-southeast-1"]["aws_glue_catalog_database.catalog_db_5E6F"]
    found = cross_region_drift(states, ACCOUNT)
    assert [(d.region, d.address) for d in found] == [("ap-southeast-1", "aws_glue_catalog_database.catalog_db_5E6F")]
    assert "missing here" in found[0].attributes[0]
    assert "us-east-1" in found[0].attributes[0] and "eu-west-1" in found[0].attributes[0]


def test_cross_region_drift_of_two_differing_regions_names_both() -> None:
    states = three_regions(**{"eu-west-1": {"visibility_timeout_seconds": 45}})
    del states["ap-southeast-1"]
    found = cross_region_drift(states, ACCOUNT)
    assert sorted((d.region, d.address) for d in found) == [("eu-west-1", QUEUE), ("us-east-1", QUEUE)]
    lines = {d.region: d.attributes for d in found}
    assert lines["us-east-1"] == ["visibility_timeout_seconds: 300 here, eu-west-1=45"]
    assert lines["eu-west-1"] == ["visibility_timeout_seconds: 45 here, us-east-1=300"]


def test_cross_region_drift_of_a_redrive_policy_with_another_receive_count() -> None:
    states = three_regions()
    queue = states["us-east-1"][QUEUE]
    queue["redrive_policy"] = queue["redrive_policy"].replace('"maxReceiveCount": 3', '"maxReceiveCount": 9')
    found = cross_region_drift(states, ACCOUNT)
    assert [(d.region, d.address) for d in found] == [("us-east-1", QUEUE)]
    assert found[0].attributes[0].startswith("redrive_policy: ")


def test_cross_region_drift_a_value_naming_another_region_is_not_hidden() -> None:
    # GIVEN eu-west-1's queue dead-letters into us-east-1's DLQ (a real difference: only us-east-1's name in it)
    wrong = json.dumps(
        {"deadLetterTargetArn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:analytics-dlq-us-east-1-dev", "maxReceiveCount": 3}
    )
    states = three_regions(**{"eu-west-1": {"redrive_policy": wrong}})
    # WHEN
    found = cross_region_drift(states, ACCOUNT)
    # THEN eu-west-1 is named for it, and only eu-west-1
    assert [(d.region, d.address) for d in found] == [("eu-west-1", QUEUE)]
    assert found[0].attributes[0].startswith("redrive_policy: ")


def test_cross_region_drift_a_tag_holding_another_regions_name_is_not_hidden() -> None:
    # GIVEN the eu-west-1 VPC's Region tag says us-east-1
    states = three_regions()
    states["eu-west-1"]["aws_vpc.network_vpc_1A2B"]["tags"]["Region"] = "us-east-1"
    found = cross_region_drift(states, ACCOUNT)
    assert [(d.region, d.address) for d in found] == [("eu-west-1", "aws_vpc.network_vpc_1A2B")]


def test_cross_region_drift_of_one_region_is_empty() -> None:
    assert cross_region_drift({"us-east-1": regional_state("us-east-1", 0)}) == []


# --- emulator: known answers, each in its exact shape -----------------------------------------------------------
SG_EGRESS = "aws_vpc_security_group_egress_rule"
SSE = "aws_s3_bucket_server_side_encryption_configuration"
SG_REF = "referenced_security_group_id"
POLICY = '{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:dlq","maxReceiveCount":3}'


@pytest.mark.parametrize(
    ("resource_type", "configured", "emulated"),
    [
        (SG_EGRESS, {"description": "to the endpoints"}, {"description": None}),
        (SG_EGRESS, {SG_REF: "sg-0abc"}, {SG_REF: f"{ACCOUNT}/sg-0abc"}),
        ("aws_cloudwatch_metric_alarm", {"metric_query": [{"id": "e1", "period": None}]},
         {"metric_query": [{"id": "e1", "period": 0}]}),
        (SSE, {"rule": [{"bucket_key_enabled": None}]}, {"rule": [{"bucket_key_enabled": False}]}),
        ("aws_glue_catalog_database", {"tags_all": {"Environment": "dev"}}, {"tags_all": {}}),
        ("aws_lambda_function", {"logging_config": [{"log_format": "Text"}]}, {"logging_config": []}),
        ("aws_lambda_function", {"kms_key_arn": "arn:aws:kms:us-east-1:1:key/k"}, {"kms_key_arn": ""}),
        ("aws_s3_bucket_notification", {"eventbridge": True}, {"eventbridge": False}),
        ("aws_sqs_queue", {"redrive_policy": POLICY}, {"redrive_policy": json.dumps(json.loads(POLICY), indent=2)}),
    ],
)  # fmt: skip
def test_emulator_only_covers_each_known_answer(resource_type: str, configured: Any, emulated: Any) -> None:
    assert emulator_only(resource_type, configured, emulated)


@pytest.mark.parametrize(
    ("resource_type", "configured", "emulated"),
    [
        (SG_EGRESS, {"description": "to the endpoints"}, {"description": "changed by hand"}),
        (SG_EGRESS, {SG_REF: "sg-0abc"}, {SG_REF: "sg-0def"}),
        (SG_EGRESS, {SG_REF: "sg-0abc"}, {SG_REF: f"{ACCOUNT}/sg-0def"}),
        ("aws_cloudwatch_metric_alarm", {"metric_query": [{"period": 60}]}, {"metric_query": [{"period": 0}]}),
        (SSE, {"rule": [{"bucket_key_enabled": True}]}, {"rule": [{"bucket_key_enabled": False}]}),
        ("aws_glue_catalog_database", {"tags_all": {"Environment": "dev"}}, {"tags_all": {"Environment": "prod"}}),
        ("aws_lambda_function", {"logging_config": [{"log_format": "Text"}]},
         {"logging_config": [{"log_format": "JSON"}]}),
        ("aws_lambda_function", {"kms_key_arn": "arn:aws:kms:us-east-1:1:key/k"},
         {"kms_key_arn": "arn:aws:kms:us-east-1:1:key/other"}),
        ("aws_s3_bucket_notification", {"eventbridge": False}, {"eventbridge": True}),
        ("aws_sqs_queue", {"redrive_policy": POLICY}, {"redrive_policy": POLICY.replace(":3}", ":5}")}),
        # a known attribute of one type is not known on another
        ("aws_sqs_queue", {"description": "x"}, {"description": None}),
        (SSE, {"eventbridge": True}, {"eventbridge": False}),
        # nothing differs: nothing to leave out
        ("aws_sqs_queue", {"redrive_policy": POLICY}, {"redrive_policy": POLICY}),
    ],
)  # fmt: skip
def test_emulator_only_does_not_cover_another_shape(resource_type: str, configured: Any, emulated: Any) -> None:
    assert not emulator_only(resource_type, configured, emulated)


def test_emulator_only_is_false_when_a_real_difference_comes_with_a_known_one() -> None:
    configured = {"description": "to the endpoints", "from_port": 443}
    emulated = {"description": None, "from_port": 80}
    assert not emulator_only(SG_EGRESS, configured, emulated)


def test_emulator_filter_keeps_only_the_real_difference() -> None:
    # GIVEN a queue drift that is partly moto's whitespace in redrive_policy, partly a real timeout change
    before = {"redrive_policy": POLICY, "visibility_timeout_seconds": 300}
    after = {"redrive_policy": json.dumps(json.loads(POLICY), indent=1), "visibility_timeout_seconds": 45}
    plan = {"resource_drift": [{"address": QUEUE, "mode": "managed", "type": "aws_sqs_queue",
                                "change": {"before": before, "after": after}}]}  # fmt: skip
    (drift,) = deployed_drift("us-east-1", plan)
    # WHEN
    kept = emulator_filter("us-east-1", drift)
    # THEN
    assert kept is not None
    assert kept.attributes == ["visibility_timeout_seconds: 300 -> 45"]
    assert kept.changes == [("visibility_timeout_seconds", 300, 45)]


def test_emulator_filter_drops_a_drift_made_only_of_known_answers() -> None:
    before = {"description": "to the endpoints", "referenced_security_group_id": "sg-0abc"}
    after = {"description": None, "referenced_security_group_id": f"{ACCOUNT}/sg-0abc"}
    address = f"{SG_EGRESS}.lambda_egress_0A1B"
    plan = {"resource_drift": [{"address": address, "mode": "managed", "type": SG_EGRESS,
                                "change": {"before": before, "after": after}}]}  # fmt: skip
    (drift,) = deployed_drift("us-east-1", plan)
    assert emulator_filter("us-east-1", drift) is None


def test_emulator_filter_keeps_deleted_resources_and_cross_region_drift() -> None:
    deleted = Drift("us-east-1", f"{SG_EGRESS}.r", "deployed", ["deleted outside Terraform"])
    across = Drift("us-east-1", f"{SG_EGRESS}.r", "cross-region", ["description: None here, eu-west-1='x'"])
    assert emulator_filter("us-east-1", deleted) is deleted
    assert emulator_filter("us-east-1", across) is across


# --- runs -------------------------------------------------------------------------------------------------------
def change(address: str, *actions: str) -> dict[str, Any]:
    return {"address": address, "type": address.split(".")[0], "change": {"actions": list(actions)}}


def test_plan_counts_each_kind_of_change() -> None:
    plan = {
        "resource_changes": [
            change("aws_sqs_queue.a", "create"),
            change("aws_sqs_queue.b", "update"),
            change("aws_sqs_queue.c", "delete"),
            change("aws_sqs_queue.d", "delete", "create"),
            change("aws_sqs_queue.e", "create", "delete"),
            change("aws_sqs_queue.f", "no-op"),
            change("aws_sqs_queue.g", "read"),
        ]
    }
    assert plan_counts(plan) == (3, 1, 3)


def test_plan_counts_leaves_out_ignored_addresses() -> None:
    plan = {"resource_changes": [change("a.x", "update"), change("a.y", "update"), change("a.z", "create")]}
    assert plan_counts(plan, ignore=["a.x", "a.z"]) == (0, 1, 0)
    assert plan_counts({}) == (0, 0, 0)


def test_emulator_only_updates_names_only_plans_of_known_answers() -> None:
    plan = {
        "resource_changes": [
            {"address": "aws_s3_bucket_notification.n", "type": "aws_s3_bucket_notification",
             "change": {"actions": ["update"], "before": {"eventbridge": False}, "after": {"eventbridge": True}}},
            {"address": "aws_sqs_queue.q", "type": "aws_sqs_queue",
             "change": {"actions": ["update"], "before": {"visibility_timeout_seconds": 45},
                        "after": {"visibility_timeout_seconds": 300}}},
        ]
    }  # fmt: skip
    assert runs.emulator_only_updates(plan) == ["aws_s3_bucket_notification.n"]


def test_summary_table_has_a_row_per_region_and_each_failure_with_its_reason() -> None:
    results = [
        RegionRun("us-east-1", "applied", 3, 1, 0, 12.34),
        RegionRun("eu-west-1", "FAILED", seconds=2.0, error="TerraformError: apply failed\nmore detail"),
        RegionRun("ap-southeast-1", "no changes", seconds=1.0),
    ]
    lines = summary_table(results).splitlines()
    assert lines[0].split() == ["region", "result", "added", "changed", "destroyed", "duration"]
    assert set(lines[1]) <= {"-", " "}
    assert lines[2].split() == ["us-east-1", "applied", "3", "1", "0", "12.3s"]
    assert lines[3].split() == ["eu-west-1", "FAILED", "0", "0", "0", "2.0s"]
    assert lines[4].split() == ["ap-southeast-1", "no", "changes", "0", "0", "0", "1.0s"]
    assert "eu-west-1: TerraformError: apply failed" in lines[5:]
    assert not any(line.startswith(("us-east-1:", "ap-southeast-1:")) for line in lines)
    # the columns line up
    assert lines[2].index("3") == lines[0].index("added")


def deployment_of(*regions: str, env: str = "dev") -> Deployment:
    return Deployment(env, PlatformConfig(account_id=ACCOUNT), regions, Path("/nonexistent"))


def test_run_regions_one_failing_region_does_not_stop_the_others() -> None:
    # GIVEN three regions; eu-west-1 raises, the others wait until it has failed (so they truly run alongside)
    failed = threading.Event()

    def action(region: str, run: RegionRun) -> None:
        if region == "eu-west-1":
            failed.set()
            raise RuntimeError("state locked\nby someone else")
        assert failed.wait(5), "regions do not run in parallel"
        run.result, run.added = "applied", 2

    printed: list[str] = []
    # WHEN
    results = run_regions(
        deployment_of("us-east-1", "eu-west-1", "ap-southeast-1"), action, verb="deploying", out=printed.append
    )
    # THEN
    by_region = {r.region: r for r in results}
    assert [r.region for r in results] == ["us-east-1", "eu-west-1", "ap-southeast-1"]
    assert by_region["eu-west-1"].failed and by_region["eu-west-1"].result == "FAILED"
    assert by_region["eu-west-1"].error == "RuntimeError: state locked\nby someone else"
    for region in ("us-east-1", "ap-southeast-1"):
        assert not by_region[region].failed
        assert (by_region[region].result, by_region[region].added) == ("applied", 2)
    assert "  [eu-west-1] FAILED after" in "\n".join(printed)
    assert any(line.startswith("  [us-east-1] applied: +2 ~0 -0") for line in printed)


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


def test_deploy_applies_each_region_with_changes_and_reports_its_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN us-east-1 has changes, eu-west-1 none, ap-southeast-1 cannot even init
    plans: dict[str, dict[str, Any] | Exception] = {
        "us-east-1": {"resource_changes": [change("a.x", "create"), change("a.y", "delete", "create")]},
        "eu-west-1": {"resource_changes": [change("a.x", "no-op")]},
        "ap-southeast-1": RuntimeError("backend bucket missing"),
    }
    # WHEN
    results, runner = run_terraform(monkeypatch, "deploy", plans)
    # THEN
    by_region = {r.region: r for r in results}
    assert (by_region["us-east-1"].result, by_region["us-east-1"].added, by_region["us-east-1"].destroyed) == (
        "applied", 2, 1,
    )  # fmt: skip
    assert by_region["eu-west-1"].result == "no changes"
    assert by_region["ap-southeast-1"].error == "RuntimeError: backend bucket missing"
    assert runner.applied == ["us-east-1"]


def test_plan_never_applies_and_destroy_plans_a_destroy(monkeypatch: pytest.MonkeyPatch) -> None:
    plans: dict[str, dict[str, Any] | Exception] = {"us-east-1": {"resource_changes": [change("a.x", "update")]}}
    results, runner = run_terraform(monkeypatch, "plan", plans)
    assert (results[0].result, results[0].changed, runner.applied) == ("changes planned", 1, [])
    plans = {"us-east-1": {"resource_changes": [change("a.x", "delete")]}}
    results, runner = run_terraform(monkeypatch, "destroy", plans)
    assert (results[0].result, results[0].destroyed, runner.applied) == ("destroyed", 1, ["us-east-1"])
    assert runner.modes == {"us-east-1": "destroy"}


def test_deploy_applies_a_plan_of_new_outputs_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a plan in which no resource changes, but the stack gained an output
    plans: dict[str, dict[str, Any] | Exception] = {
        "us-east-1": {"resource_changes": [], "output_changes": {"queue_url": {"actions": ["create"]}}}
    }
    # WHEN
    results, runner = run_terraform(monkeypatch, "deploy", plans)
    # THEN the output is applied (else it stays missing until a resource changes)
    assert runner.applied == ["us-east-1"]
    assert results[0].result == "applied"


def test_local_plan_of_emulator_answers_only_is_no_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN on the local platform, an update that is only moto's eventbridge answer, and an output it makes unknown
    notification = {
        "address": "aws_s3_bucket_notification.n",
        "type": "aws_s3_bucket_notification",
        "change": {"actions": ["update"], "before": {"eventbridge": False}, "after": {"eventbridge": True}},
    }
    plan = {"resource_changes": [notification], "output_changes": {"n": {"actions": ["update"], "after_unknown": True}}}
    runner = FakeRunner({"us-east-1": plan})
    monkeypatch.setattr(Deployment, "runner", lambda self: runner)
    monkeypatch.setattr(Deployment, "synthesize", lambda self: None)
    local = Deployment("dev", PlatformConfig(account_id=ACCOUNT), ("us-east-1",), Path("/nonexistent"), ENDPOINT)
    # WHEN
    (result,) = runs.terraform_runs(local, "deploy", out=lambda line: None)
    # THEN nothing is applied and the difference is named as the emulator's
    assert (result.result, result.changed, runner.applied) == ("no changes", 0, [])
    assert result.details["emulator_only"] == ["aws_s3_bucket_notification.n"]


class FakeStdin(io.StringIO):
    def __init__(self, text: str, tty: bool) -> None:
        super().__init__(text)
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_confirm_destroy_refuses_without_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", FakeStdin("dev\n", tty=False))
    assert confirm_destroy(deployment_of("us-east-1"), assume_yes=False) is False
    assert confirm_destroy(deployment_of("us-east-1"), assume_yes=True) is True


def test_confirm_destroy_wants_the_environment_name(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter(["staging", "y", ""])
    monkeypatch.setattr(sys, "stdin", FakeStdin("", tty=True))
    monkeypatch.setattr("builtins.input", lambda prompt: next(answers))
    deployment = deployment_of("us-east-1", env="staging")
    assert confirm_destroy(deployment, assume_yes=False) is True
    assert confirm_destroy(deployment, assume_yes=False) is False
    assert confirm_destroy(deployment, assume_yes=False) is False


def test_confirm_destroy_end_of_input_is_a_no(monkeypatch: pytest.MonkeyPatch) -> None:
    def eof(prompt: str) -> str:
        raise EOFError

    monkeypatch.setattr(sys, "stdin", FakeStdin("", tty=True))
    monkeypatch.setattr("builtins.input", eof)
    assert confirm_destroy(deployment_of("us-east-1"), assume_yes=False) is False


# --- deployment -------------------------------------------------------------------------------------------------
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


def test_resolve_an_unknown_region_is_a_config_error_naming_it(workspace: Path) -> None:
    with pytest.raises(ConfigError, match="mars-north-1"):
        resolve_deployment(env="dev", regions=["us-east-1", "mars-north-1"])


def test_resolve_some_regions_keeps_the_configured_order(workspace: Path) -> None:
    deployment = resolve_deployment(env="dev", regions=["ap-southeast-1", "us-east-1", "us-east-1"])
    assert deployment.regions == ("us-east-1", "ap-southeast-1")
    assert deployment.config.log_retention_days == 14


def test_resolve_local_with_nothing_up_is_an_operation_error(workspace: Path) -> None:
    with pytest.raises(OperationError, match="tap local up"):
        resolve_deployment(env=None, local=True, paths=LocalPaths(workspace / "nothing"))


def test_resolve_local_with_a_dead_daemon_is_an_operation_error(workspace: Path) -> None:
    paths = start_fake_platform(workspace)
    document = json.loads(paths.state.read_text())
    document["pid"] = 2**22 + 12345  # above pid_max: no such process
    paths.state.write_text(json.dumps(document))
    with pytest.raises(OperationError):
        resolve_deployment(env=None, local=True, paths=paths)


def test_resolve_local_running_environment(workspace: Path) -> None:
    paths = start_fake_platform(workspace)
    deployment = resolve_deployment(env=None, local=True, paths=paths)
    assert (deployment.env, deployment.running, deployment.endpoint) == ("dev", True, ENDPOINT)
    assert deployment.local
    assert deployment.workdir == paths.root / "ops" / "dev"
    assert Path(deployment.config.state_dir) == paths.root / "tfstate"
    assert deployment.backend_file("us-east-1") is None  # the running platform keeps its local state


def test_resolve_local_running_environment_by_name_keeps_its_state(workspace: Path) -> None:
    paths = start_fake_platform(workspace)
    deployment = resolve_deployment(env="dev", local=True, paths=paths)
    assert deployment.running and deployment.config.backend == "local"
    assert deployment.config.state_dir == str(paths.root / "tfstate")
    assert deployment.config.log_retention_days == 14  # dev's file applies


def test_resolve_local_other_environment_with_s3_backend_points_at_the_endpoint(workspace: Path) -> None:
    # GIVEN the platform runs dev; staging's file says backend = "s3"
    paths = start_fake_platform(workspace)
    # WHEN
    deployment = resolve_deployment(env="staging", regions=["eu-west-1"], local=True, paths=paths)
    backend = deployment.backend_file("eu-west-1")
    # THEN staging is deployed next to dev, its S3 backend on the local endpoint
    assert (deployment.env, deployment.running, deployment.regions) == ("staging", False, ("eu-west-1",))
    assert deployment.config.environment_suffix == "staging"
    assert deployment.config.local_endpoint == ENDPOINT
    assert deployment.workdir == paths.root / "ops" / "staging"
    assert deployment.stack_dir("eu-west-1").name.endswith("staging")
    assert backend is not None and backend.is_file()
    text = backend.read_text()
    assert f's3       = "{ENDPOINT}"' in text and f'dynamodb = "{ENDPOINT}"' in text
    assert "use_path_style              = true" in text


def test_resolve_on_aws_writes_no_backend_file(workspace: Path) -> None:
    deployment = resolve_deployment(env="staging")
    assert not deployment.local and deployment.endpoint is None
    assert deployment.config.local_endpoint is None
    assert deployment.backend_file("us-east-1") is None
    assert not (deployment.workdir / "backend").exists()


def test_resolve_local_environment_with_the_running_suffix_is_refused(workspace: Path) -> None:
    paths = start_fake_platform(workspace)
    with pytest.raises(ConfigError, match="suffix"):
        resolve_deployment(env="clash", local=True, paths=paths)


def test_resolve_local_backend_state_dirs_are_absolute(workspace: Path) -> None:
    paths = start_fake_platform(workspace)
    # on AWS, the default relative state_dir is made absolute (Terraform runs inside each stack folder)
    on_aws = resolve_deployment(env="dev")
    assert Path(on_aws.config.state_dir).is_absolute()
    assert Path(on_aws.config.state_dir) == workspace / "terraform-state"
    # locally, another environment with a local backend gets its own state folder, absolute
    qa = resolve_deployment(env="qa", local=True, paths=paths)
    assert Path(qa.config.state_dir).is_absolute()
    assert Path(qa.config.state_dir) == paths.root / "ops" / "qa" / "tfstate"
    assert qa.backend_file("us-east-1") is None


def test_resolve_local_with_a_relative_home_is_still_absolute(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAP_LOCAL_HOME", "rel/local")
    start_fake_platform(workspace / "rel")
    deployment = resolve_deployment(env="qa", local=True)
    assert deployment.workdir.is_absolute()
    assert Path(deployment.config.state_dir).is_absolute()


# --- command line -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["bootstrap", "plan", "deploy", "destroy", "drift", "redrive", "jobs"])
def test_operation_commands_have_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.build_parser().parse_args([command, "--help"])
    assert exited.value.code == 0
    assert f"usage: tap {command}" in capsys.readouterr().out


def test_operation_commands_parse_their_options() -> None:
    parser = cli.build_parser()
    args = parser.parse_args(
        ["deploy", "--env", "staging", "--region", "us-east-1", "--region", "eu-west-1", "--local"]
    )
    assert (args.env, args.region, args.local, args.handler) == (
        "staging", ["us-east-1", "eu-west-1"], True, operations._cmd_terraform,
    )  # fmt: skip
    assert parser.parse_args(["destroy", "--yes"]).yes is True
    assert parser.parse_args(["drift", "--publish"]).publish is True
    retry = parser.parse_args(["jobs", "retry", "job-1", "job-2", "--region", "eu-west-1"])
    assert (retry.handler, retry.job_ids, retry.region) == (jobs._cmd_retry, ["job-1", "job-2"], "eu-west-1")
    with pytest.raises(SystemExit):
        parser.parse_args(["plan", "--yes"])  # only destroy asks


def test_jobs_without_region_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["jobs"]) == 2
    assert "--region" in capsys.readouterr().err


def test_destroy_without_yes_and_without_a_terminal_exits_2_and_destroys_nothing(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN no terminal, and a Terraform run that fails the test if it is ever reached
    monkeypatch.setattr(sys, "stdin", FakeStdin("dev\n", tty=False))
    called: list[Callable[..., Any]] = []

    def forbidden(*args: Any, **kwargs: Any) -> list[RegionRun]:
        called.append(forbidden)
        pytest.fail("destroy ran Terraform without confirmation")

    monkeypatch.setattr(runs, "terraform_runs", forbidden)
    # WHEN
    code = cli.main(["destroy", "--env", "dev"])
    # THEN
    assert code == 2
    assert not called
    assert "--yes" in capsys.readouterr().err


def test_an_unknown_region_on_the_command_line_exits_2(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["plan", "--env", "dev", "--region", "mars-north-1"]) == 2
    assert "mars-north-1" in capsys.readouterr().err


def test_local_with_nothing_up_exits_2(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["deploy", "--local"]) == 2
    assert "tap local up" in capsys.readouterr().err


def test_deployed_drift_reports_a_rule_or_inline_policy_added_outside_terraform_on_its_parent() -> None:
    # GIVEN the stack manages its rules and role policy as companion resources, which did not change; someone added
    # an SSH rule to the security group and a second inline policy to the role, outside Terraform
    rule = {"from_port": 443, "to_port": 443, "protocol": "tcp", "cidr_blocks": []}
    ssh = {"from_port": 22, "to_port": 22, "protocol": "tcp", "cidr_blocks": ["0.0.0.0/0"]}
    kept = {"name": "etl-worker", "policy": "{}"}
    plan = {
        "resource_drift": [
            {"address": "aws_security_group.sg", "mode": "managed", "type": "aws_security_group", "name": "sg",
             "change": {"actions": ["update"], "before": {"ingress": [rule]}, "after": {"ingress": [rule, ssh]}}},
            {"address": "aws_iam_role.r", "mode": "managed", "type": "aws_iam_role", "name": "r",
             "change": {"actions": ["update"], "before": {"inline_policy": [kept]},
                        "after": {"inline_policy": [kept, {"name": "backdoor", "policy": "{}"}]}}},
        ],
        "prior_state": {"values": {"root_module": {"resources": [
            {"address": "aws_vpc_security_group_ingress_rule.x", "mode": "managed",
             "type": "aws_vpc_security_group_ingress_rule", "name": "x", "values": {}},
            {"address": "aws_iam_role_policy.p", "mode": "managed", "type": "aws_iam_role_policy", "name": "p",
             "values": {}},
        ]}}},
    }  # fmt: skip
    # WHEN
    found = by_address(deployed_drift("us-east-1", plan))
    # THEN both parents are named with what was added
    assert set(found) == {"aws_security_group.sg", "aws_iam_role.r"}
    assert "22" in found["aws_security_group.sg"].attributes[0]
    assert "backdoor" in found["aws_iam_role.r"].attributes[0]


def test_cross_region_drift_allows_a_configured_difference_in_zone_count() -> None:
    subnet = {"cidr_block": "10.0.1.0/24", "map_public_ip_on_launch": False}
    states = {
        "us-east-1": {"aws_subnet.p1": subnet, "aws_subnet.p2": subnet, "aws_subnet.p3": subnet,
                      "aws_vpc_endpoint.s3": {"subnet_ids": ["subnet-0aaa1111", "subnet-0bbb2222", "subnet-0ccc3333"]}},
        "eu-west-1": {"aws_subnet.p1": subnet, "aws_subnet.p2": subnet,
                      "aws_vpc_endpoint.s3": {"subnet_ids": ["subnet-0ddd4444", "subnet-0eee5555"]}},
    }  # fmt: skip
    assert cross_region_drift(states, az_counts_differ=True) == []
    assert cross_region_drift(states)  # without the configured difference, the missing subnet is drift


def test_options_given_before_jobs_retry_are_kept() -> None:
    from analytics_platform.cli import build_parser

    args = build_parser().parse_args(["jobs", "--env", "prod", "retry", "--region", "eu-west-1", "--status", "FAILED"])
    assert (args.env, args.region, args.status) == ("prod", "eu-west-1", "FAILED")
    args = build_parser().parse_args(["jobs", "retry", "--env", "staging", "--region", "eu-west-1", "abc"])
    assert (args.env, args.job_ids) == ("staging", ["abc"])


def test_an_operation_on_aws_must_name_its_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from analytics_platform.infra.config import ConfigError
    from analytics_platform.ops.deployment import resolve_deployment

    (tmp_path / "dev.toml").write_text("lambda_reserved_concurrency = 5\n")
    monkeypatch.setenv("TAP_ENVIRONMENTS_DIR", str(tmp_path))
    monkeypatch.setattr("analytics_platform.infra.account._default_sts", lambda _region: CallerOf(ACCOUNT))
    with pytest.raises(ConfigError) as refused:
        resolve_deployment(env=None)
    assert refused.value.field == "env" and "--env dev" in str(refused.value)
    assert resolve_deployment(env="dev").config.lambda_reserved_concurrency == 5


def test_a_deploy_that_would_replace_a_data_bucket_or_table_stops_in_that_region_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN us-east-1's plan replaces its data bucket and deletes its job table; eu-west-1's only updates a queue
    plans: dict[str, dict[str, Any] | Exception] = {
        "us-east-1": {"resource_changes": [change("aws_s3_bucket.data", "delete", "create"),
                                           change("aws_dynamodb_table.jobs", "delete")]},
        "eu-west-1": {"resource_changes": [change("aws_sqs_queue.q", "update")]},
    }  # fmt: skip
    # WHEN deployed THEN us-east-1 applies nothing and says why, eu-west-1 applies
    results, runner = run_terraform(monkeypatch, "deploy", plans)
    by_region = {r.region: r for r in results}
    assert runner.applied == ["eu-west-1"] and by_region["us-east-1"].result == "FAILED"
    assert "aws_s3_bucket.data, aws_dynamodb_table.jobs" in str(by_region["us-east-1"].error)
    assert "--allow-data-loss" in str(by_region["us-east-1"].error)
    # AND with --allow-data-loss it applies
    runner = FakeRunner(plans)
    monkeypatch.setattr(Deployment, "runner", lambda self: runner)
    runs.terraform_runs(deployment_of(*plans), "deploy", out=lambda line: None, allow_data_loss=True)
    assert sorted(runner.applied) == ["eu-west-1", "us-east-1"]


def test_two_commands_on_one_environment_do_not_run_at_once(tmp_path: Path) -> None:
    from analytics_platform.ops.deployment import OperationError

    deployment = Deployment("dev", PlatformConfig(account_id=ACCOUNT), ("us-east-1",), tmp_path / "ops" / "dev")
    other = Deployment("staging", PlatformConfig(account_id=ACCOUNT), ("us-east-1",), tmp_path / "ops" / "staging")
    with deployment.exclusive():
        with pytest.raises(OperationError, match="another tap command"), deployment.exclusive():
            pass
        with other.exclusive():  # another environment is not held up
            pass
    with deployment.exclusive():  # released afterwards
        pass


def test_publishing_goes_on_in_the_other_regions_when_one_fails() -> None:
    from analytics_platform.ops.drift import DriftReport, publish_drift

    written: list[str] = []

    class Cloudwatch:
        def __init__(self, region: str) -> None:
            self.region = region

        def put_metric_data(self, **kwargs: Any) -> None:
            if self.region == "eu-west-1":
                raise RuntimeError("throttled")
            written.append(self.region)

    deployment = deployment_of("us-east-1", "eu-west-1", "ap-southeast-1")
    object.__setattr__(deployment, "client", lambda service, region: Cloudwatch(region))
    report = DriftReport([RegionRun(r) for r in deployment.regions], [])
    failures = publish_drift(deployment, report)
    assert written == ["us-east-1", "ap-southeast-1"] and len(failures) == 1 and "eu-west-1" in failures[0]


def test_tap_jobs_reads_the_local_platform_only_for_the_environment_it_runs(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from analytics_platform.analytics import job_listing as jobs_query
    from analytics_platform.local.state import LocalOutputs, RegionOutputs, write_outputs

    paths = start_fake_platform(workspace)
    monkeypatch.setenv("TAP_LOCAL_HOME", str(paths.root))
    names = RegionOutputs("b", "local-jobs-table", "q", "d", "f", "g", "w")
    write_outputs(paths, LocalOutputs(ENDPOINT, {"us-east-1": names}))
    # no --env, or the running one: the local platform's table
    assert jobs_query.job_table("us-east-1", None).name == "local-jobs-table"
    assert jobs_query.job_table("us-east-1", None, env="dev").name == "local-jobs-table"
    # another environment: its table on AWS, never the local one
    (workspace / "environments" / "prod.toml").write_text("")
    assert jobs_query.job_table("us-east-1", None, env="prod").name == "analytics-jobs-us-east-1-prod"
