"""Drift as pure logic: changed attributes, deployed and cross-region drift, the emulator's known answers, publishing
(no Terraform, no network)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from analytics_platform.ops.drift_compare import Drift, changed_attributes, cross_region_drift, deployed_drift
from analytics_platform.ops.emulator import emulator_filter, emulator_only
from analytics_platform.ops.runs import RegionRun
from tests.unit.ops_support import (
    ACCOUNT,
    BUCKET,
    FUNCTION,
    LOG_GROUP,
    QUEUE,
    VERSIONING,
    by_address,
    deployment_of,
    refresh_plan,
    regional_state,
    three_regions,
)


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
