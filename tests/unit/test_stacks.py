"""The synthesized stacks (synthesized once per session), asserted property by property."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from analytics_platform.etl import jobs as etl_jobs
from analytics_platform.infra import iam
from analytics_platform.infra.checkov import checkov_suppressions
from analytics_platform.infra.checks import (
    check_consistency,
    check_iam,
    check_residency,
    run_checks,
)
from analytics_platform.infra.constructs import job_table
from analytics_platform.infra.names import DRIFT_METRIC, DRIFT_NAMESPACE

REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-1")


def one(stack: dict[str, Any], resource_type: str) -> dict[str, Any]:
    instances = list(stack["resource"][resource_type].values())
    assert len(instances) == 1, f"expected one {resource_type}"
    return instances[0]


@pytest.fixture(scope="module")
def stacks(synthesized: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return synthesized["stacks"]


def test_one_stack_per_region_with_its_own_provider_and_state(stacks: dict[str, Any]) -> None:
    assert tuple(stacks) == REGIONS
    for region, stack in stacks.items():
        assert [p["region"] for p in stack["provider"]["aws"]] == [region]
        assert stack["terraform"]["required_providers"]["aws"]["version"] == "5.100.0"
        assert stack["terraform"]["backend"]["local"]["path"].endswith(f"analytics-{region}-unit.tfstate")


def test_identical_shape_across_regions(stacks: dict[str, Any]) -> None:
    shapes = {region: {t: len(i) for t, i in s["resource"].items()} for region, s in stacks.items()}
    assert shapes["us-east-1"] == shapes["eu-west-1"] == shapes["ap-southeast-1"]


@pytest.mark.parametrize(("region", "cidr"), [("us-east-1", "10.0.0.0/16"), ("eu-west-1", "10.1.0.0/16"),
                                              ("ap-southeast-1", "10.2.0.0/16")])  # fmt: skip
def test_isolated_vpc(stacks: dict[str, Any], region: str, cidr: str) -> None:
    stack = stacks[region]
    assert one(stack, "aws_vpc")["cidr_block"] == cidr
    assert "aws_internet_gateway" not in stack["resource"] and "aws_nat_gateway" not in stack["resource"]
    subnets = stack["resource"]["aws_subnet"].values()
    assert len(subnets) >= 2 and all(s["map_public_ip_on_launch"] is False for s in subnets)
    default_sg = one(stack, "aws_default_security_group")
    assert default_sg["ingress"] == [] and default_sg["egress"] == []
    endpoints = {e["service_name"]: e["vpc_endpoint_type"] for e in stack["resource"]["aws_vpc_endpoint"].values()}
    assert endpoints == {f"com.amazonaws.{region}.s3": "Gateway", f"com.amazonaws.{region}.dynamodb": "Gateway",
                         f"com.amazonaws.{region}.xray": "Interface", f"com.amazonaws.{region}.sqs": "Interface",
                         f"com.amazonaws.{region}.glue": "Interface",
                         f"com.amazonaws.{region}.events": "Interface"}  # fmt: skip
    assert one(stack, "aws_flow_log")["traffic_type"] == "ALL"


def test_data_bucket_is_secure_by_default(stacks: dict[str, Any]) -> None:
    stack = stacks["eu-west-1"]
    bucket = one(stack, "aws_s3_bucket")
    assert bucket["bucket"] == "analytics-bucket-111122223333-eu-west-1-unit" and bucket["force_destroy"] is True
    assert one(stack, "aws_s3_bucket_versioning")["versioning_configuration"]["status"] == "Enabled"
    sse = one(stack, "aws_s3_bucket_server_side_encryption_configuration")["rule"][0]
    assert sse["apply_server_side_encryption_by_default"]["sse_algorithm"] == "AES256"
    rules = {r["id"]: r for r in one(stack, "aws_s3_bucket_lifecycle_configuration")["rule"]}
    # Only uploads and rejects go to Glacier: the Parquet under processed/ must stay queryable.
    archived = {r["filter"][0]["prefix"] for r in rules.values() if r.get("transition")}
    assert archived == {"raw/", "quarantine/"}
    assert all(r["transition"][0] == {"days": 90, "storage_class": "GLACIER"} for r in rules.values()
               if r.get("transition"))  # fmt: skip
    abort = rules["abort-incomplete-uploads"]
    assert abort["filter"][0]["prefix"] == "" and "transition" not in abort
    assert abort["abort_incomplete_multipart_upload"][0]["days_after_initiation"] == 7
    block = one(stack, "aws_s3_bucket_public_access_block")
    assert all(block[k] for k in ("block_public_acls", "block_public_policy", "ignore_public_acls",
                                  "restrict_public_buckets"))  # fmt: skip
    assert one(stack, "aws_s3_bucket_ownership_controls")["rule"]["object_ownership"] == "BucketOwnerEnforced"
    policy = json.loads(one(stack, "aws_s3_bucket_policy")["policy"])
    assert policy["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert one(stack, "aws_s3_bucket_notification")["eventbridge"] is True


def test_rule_matches_raw_uploads_of_this_bucket_and_targets_the_queue(stacks: dict[str, Any]) -> None:
    stack = stacks["ap-southeast-1"]
    rules = stack["resource"]["aws_cloudwatch_event_rule"].values()
    pattern = json.loads(next(r["event_pattern"] for r in rules if "event_pattern" in r))
    assert pattern == {"source": ["aws.s3"], "detail-type": ["Object Created", "Object Deleted"],
                       "detail": {"bucket": {"name": ["analytics-bucket-111122223333-ap-southeast-1-unit"]},
                                  "object": {"key": [{"prefix": "raw/"}]}}}  # fmt: skip
    targets = stack["resource"]["aws_cloudwatch_event_target"].values()
    assert any("aws_sqs_queue.queues_queue" in t["arn"] for t in targets)
    policies = stack["resource"]["aws_sqs_queue_policy"].values()
    work_queue_policy = next(p for p in policies if "aws_sqs_queue.queues_queue_" in p["queue_url"])
    statement = json.loads(work_queue_policy["policy"])["Statement"][0]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert "aws_cloudwatch_event_rule" in statement["Condition"]["ArnEquals"]["aws:SourceArn"]


def test_queue_and_dead_letter_queue(stacks: dict[str, Any]) -> None:
    queues = {q["name"]: q for q in stacks["us-east-1"]["resource"]["aws_sqs_queue"].values()}
    queue, dlq = queues["analytics-queue-us-east-1-unit"], queues["analytics-dlq-us-east-1-unit"]
    assert queue["visibility_timeout_seconds"] == 300 and queue["sqs_managed_sse_enabled"] is True
    redrive = json.loads(queue["redrive_policy"])
    assert redrive["maxReceiveCount"] == 5 and "analytics-dlq" not in redrive["deadLetterTargetArn"]
    assert dlq["message_retention_seconds"] == 14 * 24 * 3600 and dlq["sqs_managed_sse_enabled"] is True


def test_worker_function(stacks: dict[str, Any]) -> None:
    stack = stacks["us-east-1"]
    function = one(stack, "aws_lambda_function")
    assert (function["runtime"], function["memory_size"]) == ("python3.11", 1024)
    assert function["timeout"] <= 300 and function["tracing_config"]["mode"] == "Active"
    assert function["reserved_concurrent_executions"] > 0 and function["architectures"] == ["x86_64"]
    assert len(function["vpc_config"]["subnet_ids"]) >= 2
    env = function["environment"]["variables"]
    assert env["DATA_REGION"] == "us-east-1" and env["BUCKET_NAME"] == "analytics-bucket-111122223333-us-east-1-unit"
    assert env["TABLE_NAME"] == "analytics-jobs-us-east-1-unit" and "aws_sqs_queue.queues_dlq" in env["DLQ_URL"]
    assert (env["MAX_OBJECT_MB"], env["MAX_REJECT_RATIO"], env["MAX_RECEIVE_COUNT"]) == ("4096", "0.1", "5")
    assert env["POWERTOOLS_SERVICE_NAME"] == function["function_name"]
    assert "ENVIRONMENT_SUFFIX" not in env and "RAW_PREFIX" not in env
    assert any("aws_cloudwatch_log_group" in d for d in function["depends_on"])
    assert function["filename"].endswith(".zip") and function["source_code_hash"]
    log_groups = {g["name"]: g["retention_in_days"] for g in stack["resource"]["aws_cloudwatch_log_group"].values()}
    assert log_groups["/aws/lambda/analytics-etl-us-east-1-unit"] == 30 and set(log_groups.values()) == {30}
    mapping = one(stack, "aws_lambda_event_source_mapping")
    assert mapping["function_response_types"] == ["ReportBatchItemFailures"]


def test_job_table_matches_the_worker(stacks: dict[str, Any]) -> None:
    table = one(stacks["eu-west-1"], "aws_dynamodb_table")
    assert table["billing_mode"] == "PAY_PER_REQUEST" and table["point_in_time_recovery"]["enabled"] is True
    assert table["server_side_encryption"]["enabled"] is True and table["hash_key"] == "job_id"
    indexes = {i["name"]: (i["hash_key"], i["range_key"]) for i in table["global_secondary_index"]}
    assert indexes == {
        etl_jobs.DAY_INDEX: ("job_day", "created_at"),
        etl_jobs.STATUS_INDEX: ("job_status", "created_at"),
    }
    assert (job_table.DAY_INDEX, job_table.STATUS_INDEX) == (etl_jobs.DAY_INDEX, etl_jobs.STATUS_INDEX)


def test_dashboard_metrics_carry_dimensions_and_alarms_notify_encrypted_topic(stacks: dict[str, Any]) -> None:
    stack = stacks["us-east-1"]
    body = json.loads(one(stack, "aws_cloudwatch_dashboard")["dashboard_body"])
    for widget in body["widgets"]:
        for metric in widget["properties"]["metrics"]:
            if isinstance(metric[0], str):
                assert metric[2] in {"FunctionName", "QueueName", "service"} and metric[3].endswith("us-east-1-unit")
    alarms = {a["alarm_name"]: a for a in stack["resource"]["aws_cloudwatch_metric_alarm"].values()}
    rate = alarms["analytics-etl-error-rate-us-east-1-unit"]
    assert any("100 * errors / invocations" in q.get("expression", "") for q in rate["metric_query"])
    assert {"analytics-dlq-not-empty-us-east-1-unit", "analytics-queue-oldest-message-us-east-1-unit"} < set(alarms)
    # Failed records are not Lambda errors under partial batch responses: FAILED and DEAD_LETTERED jobs alarm.
    failed = alarms["analytics-failed-jobs-us-east-1-unit"]
    metrics = {q["metric"]["metric_name"]: q["metric"] for q in failed["metric_query"] if q.get("metric")}
    assert set(metrics) == {"JobsFailed", "JobsDeadLettered"}
    assert all(m["dimensions"] == {"service": "analytics-etl-us-east-1-unit"} for m in metrics.values())
    assert failed["threshold"] == 0 and failed["comparison_operator"] == "GreaterThanThreshold"
    for alarm in alarms.values():
        assert len(alarm["alarm_actions"]) == 1
        assert re.fullmatch(r"\$\{aws_sns_topic\.monitoring_topic_\w+\.arn\}", alarm["alarm_actions"][0])
    assert "aws_kms_key" in one(stack, "aws_sns_topic")["kms_master_key_id"]


def test_outputs_under_both_names(stacks: dict[str, Any]) -> None:
    outputs = stacks["eu-west-1"]["output"]
    for name in ("bucket_name", "function_arn", "table_name", "queue_url", "dlq_url", "vpc_id", "dashboard_name",
                 "topic_arn", "s3_bucket_name_eu_west_1", "lambda_function_arn_eu_west_1",
                 "dynamodb_table_name_eu_west_1", "sqs_queue_url_eu_west_1"):  # fmt: skip
        assert name in outputs


def test_iam_is_least_privilege(stacks: dict[str, Any]) -> None:
    stack = stacks["us-east-1"]
    policies = {p["name"]: json.loads(p["policy"]) for p in stack["resource"]["aws_iam_role_policy"].values()}
    worker = {s["Sid"]: s for s in policies["etl-worker"]["Statement"]}
    assert re.fullmatch(r"\$\{aws_s3_bucket\.data_bucket_\w+\.arn\}/raw/\*", worker["ReadRawObjects"]["Resource"][0])
    assert worker["WriteJobRecords"]["Action"] == [
        "dynamodb:ConditionCheckItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"
    ]  # fmt: skip
    write = worker["WriteResultObjects"]
    assert write["Action"] == ["s3:AbortMultipartUpload", "s3:PutObject"]
    assert [r.rsplit("/", 2)[-2] for r in write["Resource"]] == ["staging", "processed", "quarantine"]
    # Outputs are staged, then promoted (a copy: read the staged one) and reconciled (a head of the promoted one).
    assert [r.rsplit("/", 2)[-2] for r in worker["ReadOwnOutputs"]["Resource"]] == ["staging", "processed"]
    # Always the current version (CopySource and HeadObject name no versionId): no s3:GetObjectVersion on outputs;
    # only the uploads are read by version.
    assert worker["ReadOwnOutputs"]["Action"] == ["s3:GetObject"]
    assert worker["ReadRawObjects"]["Action"] == ["s3:GetObject", "s3:GetObjectVersion"]
    assert [r.rsplit("/", 2)[-2] for r in worker["RetireSupersededOutputs"]["Resource"]] == ["staging", "processed"]
    # Job state events: only this region's default bus, only the platform's own source.
    events = worker["PutJobStateEvents"]
    assert events["Action"] == ["events:PutEvents"]
    assert events["Resource"] == [
        "arn:${data.aws_partition.partition.partition}:events:us-east-1:${data.aws_caller_identity.account.account_id}"
        ":event-bus/default"
    ]
    assert events["Condition"] == {"StringEquals": {"events:source": ["tap.etl"]}}
    # The reconciliation queries the by-status index (never scans the table).
    assert worker["QueryJobStatusIndex"]["Action"] == ["dynamodb:Query"]
    assert worker["QueryJobStatusIndex"]["Resource"][0].endswith("/index/by-status")
    # ListBucket on exactly this bucket: without it S3 answers 403 for a deleted upload, which looks transient.
    assert worker["ListOwnBucket"]["Action"] == ["s3:ListBucket"]
    assert re.fullmatch(r"\$\{aws_s3_bucket\.data_bucket_\w+\.arn\}", worker["ListOwnBucket"]["Resource"][0])
    versions = worker["ListRawVersions"]
    assert versions["Action"] == ["s3:ListBucketVersions"] and versions["Condition"] == {
        "StringLike": {"s3:prefix": ["raw/*"]}
    }
    retire = worker["RetireSupersededOutputs"]
    assert retire["Action"] == ["s3:DeleteObject"] and retire["Resource"][1].endswith("/processed/*")
    dead = worker["InspectDeadLetters"]
    assert "sqs:DeleteMessage" not in dead["Action"] and "aws_sqs_queue.queues_dlq" in dead["Resource"][0]
    star = [sid for sid, s in worker.items() if "*" in s["Resource"]]
    assert set(star) <= set(iam.WILDCARD_ALLOW_LIST)
    assert "aws_iam_role_policy_attachment" not in stack["resource"]


def test_dead_letter_sweep_schedule_invokes_the_worker_only_from_its_rule(stacks: dict[str, Any]) -> None:
    stack = stacks["eu-west-1"]
    rules = {r["name"]: r for r in stack["resource"]["aws_cloudwatch_event_rule"].values()}
    sweep = rules["analytics-dlq-sweep-eu-west-1-unit"]
    assert sweep["schedule_expression"] == "rate(5 minutes)"
    target = next(t for t in stack["resource"]["aws_cloudwatch_event_target"].values() if "aws_lambda" in t["arn"])
    assert json.loads(target["input"])["detail-type"] == "Scheduled Event"
    permission = one(stack, "aws_lambda_permission")
    assert permission["principal"] == "events.amazonaws.com" and "dead-letter-sweep" in permission["source_arn"]


def test_project_checks_find_nothing_in_the_real_stacks(synthesized: dict[str, Any]) -> None:
    assert run_checks(synthesized["config"], synthesized["outdir"], with_checkov=False) == []


def test_residency_check_catches_a_reference_to_another_region(stacks: dict[str, Any]) -> None:
    tampered = json.loads(json.dumps(stacks["us-east-1"]))
    tampered["output"]["leak"] = {"value": "arn:aws:s3:::analytics-bucket-111122223333-eu-west-1-unit"}
    assert any("eu-west-1" in f for f in check_residency("s", tampered, "us-east-1"))
    tampered["output"]["leak"] = {"value": "analytics_eu_west_1_unit.orders"}  # a Glue name spells it so
    assert any("eu-west-1" in f for f in check_residency("s", tampered, "us-east-1"))


def test_iam_check_catches_wildcards(stacks: dict[str, Any]) -> None:
    tampered = json.loads(json.dumps(stacks["us-east-1"]))
    policy = next(iter(tampered["resource"]["aws_iam_role_policy"].values()))
    document = json.loads(policy["policy"])
    document["Statement"].append({"Sid": "Oops", "Effect": "Allow", "Action": "s3:*", "Resource": "*"})
    document["Statement"].append({"Sid": "Region", "Effect": "Allow", "Action": "sqs:SendMessage",
                                  "Resource": "arn:aws:sqs:*:123456789012:q"})  # fmt: skip
    policy["policy"] = json.dumps(document)
    findings = check_iam("s", tampered)
    assert any("wildcard action" in f for f in findings) and any("wildcard resource" in f for f in findings)
    assert any("region or account wildcard" in f for f in findings)


def _copies(stacks: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    return {f"analytics-{region}-unit": (region, json.loads(json.dumps(stack))) for region, stack in stacks.items()}


def test_consistency_check_finds_the_regions_identical(stacks: dict[str, Any]) -> None:
    assert check_consistency(_copies(stacks)) == []


def test_consistency_check_catches_drift_between_regions(stacks: dict[str, Any]) -> None:
    regional = _copies(stacks)
    drifted = regional["analytics-eu-west-1-unit"][1]
    next(iter(drifted["resource"]["aws_s3_bucket_versioning"].values()))["versioning_configuration"]["status"] = (
        "Suspended"
    )
    del drifted["resource"]["aws_cloudwatch_metric_alarm"][
        next(iter(drifted["resource"]["aws_cloudwatch_metric_alarm"]))
    ]
    findings = check_consistency(regional)
    assert len(findings) >= 2 and all(
        f.startswith("analytics-eu-west-1-unit: differs from us-east-1: ") for f in findings
    )
    assert any('versioning_configuration.status is "Suspended" here, "Enabled" there' in f for f in findings)
    assert any("aws_cloudwatch_metric_alarm" in f and "is absent here" in f for f in findings)


def test_consistency_check_allows_the_per_region_parameters(stacks: dict[str, Any]) -> None:
    """Another VPC CIDR and a third zone (``az_count``) are per-region parameters, not drift."""
    regional = _copies(stacks)
    stack = regional["analytics-ap-southeast-1-unit"][1]
    subnets = stack["resource"]["aws_subnet"]
    name, subnet = next((n, s) for n, s in subnets.items() if "private-1" in n)
    third = json.loads(json.dumps(subnet).replace("private-1", "private-2").replace("names, 1)", "names, 2)"))
    third["cidr_block"] = "10.2.32.0/20"
    subnets[name.replace("private-1", "private-2").rsplit("_", 1)[0] + "_0123ABCD"] = third
    one(stack, "aws_lambda_function")["vpc_config"]["subnet_ids"].append("${aws_subnet.network_private-2_0123ABCD.id}")
    assert check_consistency(regional) == []


def test_no_stack_mentions_another_region(stacks: dict[str, Any]) -> None:
    for region, stack in stacks.items():
        text = json.dumps(stack)
        for other in set(REGIONS) - {region}:
            assert not re.search(re.escape(other), text), f"{region} stack mentions {other}"


def test_cdktf_testing_matchers_agree(stacks: dict[str, Any]) -> None:
    from cdktf import Testing
    from cdktf_cdktf_provider_aws.s3_bucket_versioning import S3BucketVersioningA
    from cdktf_cdktf_provider_aws.sqs_queue import SqsQueue

    received = json.dumps(stacks["eu-west-1"])
    versioning = S3BucketVersioningA.TF_RESOURCE_TYPE
    assert Testing.to_have_resource_with_properties(
        received, versioning, {"versioning_configuration": {"status": "Enabled"}}
    )
    assert not Testing.to_have_resource_with_properties(
        received, versioning, {"versioning_configuration": {"status": "Suspended"}}
    )
    assert Testing.to_have_resource_with_properties(
        received, SqsQueue.TF_RESOURCE_TYPE, {"visibility_timeout_seconds": 300, "sqs_managed_sse_enabled": True}
    )


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "ap-southeast-1"])
def test_catalog_workgroup_and_catalog_iam_in_every_region(stacks: dict[str, Any], region: str) -> None:
    stack = stacks[region]
    database = one(stack, "aws_glue_catalog_database")
    expected_database = f"analytics_{region.replace('-', '_')}_unit"
    assert database["name"] == expected_database
    workgroup = one(stack, "aws_athena_workgroup")
    assert workgroup["name"] == f"analytics-athena-{region}-unit" and workgroup["force_destroy"] is True
    settings = workgroup["configuration"]
    assert settings["enforce_workgroup_configuration"] is True
    assert settings["bytes_scanned_cutoff_per_query"] == 10240 * 1024 * 1024
    results = settings["result_configuration"]
    assert results["output_location"] == f"s3://analytics-bucket-111122223333-{region}-unit/athena-results/"
    assert results["encryption_configuration"]["encryption_option"] == "SSE_S3"
    # the results expire with the bucket's lifecycle
    rules = {r["id"]: r for r in one(stack, "aws_s3_bucket_lifecycle_configuration")["rule"]}
    expire = rules["expire-athena-results"]
    assert expire["filter"][0]["prefix"] == "athena-results/" and expire["expiration"][0]["days"] == 30
    # the worker may write the tables of this region's one database, nothing else
    policies = {p["name"]: json.loads(p["policy"]) for p in stack["resource"]["aws_iam_role_policy"].values()}
    glue = {s["Sid"]: s for s in policies["etl-worker"]["Statement"]}["WriteOwnCatalogTables"]
    assert glue["Action"] == ["glue:CreateTable", "glue:GetTable", "glue:UpdateTable"]
    assert [r.split(":", 5)[-1] for r in glue["Resource"]] == [
        "catalog",
        f"database/{expected_database}",
        f"table/{expected_database}/*",
    ]
    assert all(f":glue:{region}:" in r for r in glue["Resource"])
    environment = one(stack, "aws_lambda_function")["environment"]["variables"]
    assert environment["GLUE_DATABASE"] == expected_database


# --- encryption option (issue 10): encryption = "kms" -----------------------------------------------------------
ACCOUNT_ROOT = "arn:${data.aws_partition.partition.partition}:iam::${data.aws_caller_identity.account.account_id}:root"
ACCOUNT_ID = "${data.aws_caller_identity.account.account_id}"


@pytest.fixture(scope="module")
def kms_stacks(synthesized_kms: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return synthesized_kms["stacks"]


def region_key_arn(stack: dict[str, Any]) -> str:
    (name,) = stack["resource"]["aws_kms_key"]
    return f"${{aws_kms_key.{name}.arn}}"


def key_policy(stack: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in json.loads(one(stack, "aws_kms_key")["policy"])["Statement"]}


def worker_statements(stack: dict[str, Any]) -> dict[str, dict[str, Any]]:
    policies = {p["name"]: json.loads(p["policy"]) for p in stack["resource"]["aws_iam_role_policy"].values()}
    return {s["Sid"]: s for s in policies["etl-worker"]["Statement"]}


@pytest.mark.parametrize("region", REGIONS)
def test_kms_mode_has_one_rotating_key_per_region_with_its_alias(kms_stacks: dict[str, Any], region: str) -> None:
    stack = kms_stacks[region]
    key = one(stack, "aws_kms_key")  # the topic's own alarm key is replaced by the region's key
    # the kms stacks are synthesized with deletion_protection: KMS's longest waiting period
    assert key["enable_key_rotation"] is True and key["deletion_window_in_days"] == 30
    alias = one(stack, "aws_kms_alias")
    assert alias["name"] == f"alias/analytics-key-{region}-unit"
    assert alias["target_key_id"] == region_key_arn(stack).replace(".arn}", ".key_id}")


@pytest.mark.parametrize("region", REGIONS)
def test_kms_key_policy_admits_only_this_account_and_the_services_that_use_the_key(
    kms_stacks: dict[str, Any], region: str
) -> None:
    statements = key_policy(kms_stacks[region])
    principals = [s["Principal"] for s in statements.values()]
    assert all(s["Effect"] == "Allow" and s["Resource"] == "*" for s in statements.values())
    assert {p["AWS"] for p in principals if "AWS" in p} == {ACCOUNT_ROOT}  # no other account, no "*"
    assert {p["Service"] for p in principals if "Service" in p} == {
        f"logs.{region}.amazonaws.com", "cloudwatch.amazonaws.com", "events.amazonaws.com"
    }  # fmt: skip
    # The account administers the key, but encrypts and decrypts only through this region's services.
    admin = statements["AccountAdministersKey"]["Action"]
    assert not {"kms:*", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:CreateGrant"} & set(admin)
    use = statements["AccountUsesKeyThroughRegionServices"]
    assert {"kms:Decrypt", "kms:GenerateDataKey*", "kms:CreateGrant"} <= set(use["Action"])
    assert use["Condition"] == {
        "StringEquals": {
            "kms:CallerAccount": ACCOUNT_ID,
            "kms:ViaService": [f"{s}.{region}.amazonaws.com" for s in ("s3", "dynamodb", "sqs", "sns", "lambda")],
        }
    }
    # CloudWatch Logs: only this account's two log groups of this region.
    logs = statements["CloudWatchLogsEncryptsOwnLogGroups"]["Condition"]["ArnLike"]
    base = f"arn:${{data.aws_partition.partition.partition}}:logs:{region}:{ACCOUNT_ID}:log-group:"
    expected = [f"{base}/aws/lambda/analytics-etl-{region}-unit", f"{base}/aws/vpc/analytics-flowlogs-{region}-unit"]
    assert logs == {"kms:EncryptionContext:aws:logs:arn": expected}
    # CloudWatch alarms: this account's alarms of this region and suffix.
    alarms = statements["CloudWatchAlarmsPublishToEncryptedTopic"]
    assert alarms["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT_ID}
    assert alarms["Condition"]["ArnLike"]["aws:SourceArn"].endswith(
        f":cloudwatch:{region}:{ACCOUNT_ID}:alarm:analytics-*-{region}-unit"
    )
    assert sorted(statements["EventBridgeSendsToEncryptedQueue"]["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]


@pytest.mark.parametrize("region", REGIONS)
def test_kms_mode_encrypts_every_data_resource_with_its_own_regions_key(
    kms_stacks: dict[str, Any], region: str
) -> None:
    stack = kms_stacks[region]
    key = region_key_arn(stack)
    rule = one(stack, "aws_s3_bucket_server_side_encryption_configuration")["rule"][0]
    assert rule["apply_server_side_encryption_by_default"] == {"sse_algorithm": "aws:kms", "kms_master_key_id": key}
    assert rule["bucket_key_enabled"] is True
    assert one(stack, "aws_dynamodb_table")["server_side_encryption"] == {"enabled": True, "kms_key_arn": key}
    log_groups = stack["resource"]["aws_cloudwatch_log_group"].values()
    assert len(log_groups) == 2 and all(g["kms_key_id"] == key for g in log_groups)
    assert one(stack, "aws_sns_topic")["kms_master_key_id"] == key
    queues = stack["resource"]["aws_sqs_queue"].values()
    assert len(queues) == 2 and all(q["kms_master_key_id"] == key and "sqs_managed_sse_enabled" not in q
                                    for q in queues)  # fmt: skip
    assert one(stack, "aws_lambda_function")["kms_key_arn"] == key
    results = one(stack, "aws_athena_workgroup")["configuration"]["result_configuration"]
    assert results["encryption_configuration"] == {"encryption_option": "SSE_KMS", "kms_key_arn": key}


@pytest.mark.parametrize("region", REGIONS)
def test_sse_s3_mode_keeps_the_default_encryption_and_no_region_key(stacks: dict[str, Any], region: str) -> None:
    stack = stacks[region]
    text = json.dumps(stack)
    assert "encryption_key" not in text and "analytics-key-" not in text
    rule = one(stack, "aws_s3_bucket_server_side_encryption_configuration")["rule"][0]
    assert rule["apply_server_side_encryption_by_default"] == {"sse_algorithm": "AES256"}
    assert one(stack, "aws_dynamodb_table")["server_side_encryption"] == {"enabled": True}
    assert all("kms_key_id" not in g for g in stack["resource"]["aws_cloudwatch_log_group"].values())
    assert all(q["sqs_managed_sse_enabled"] is True and "kms_master_key_id" not in q
               for q in stack["resource"]["aws_sqs_queue"].values())  # fmt: skip
    assert "kms_key_arn" not in one(stack, "aws_lambda_function")
    # The topic keeps its own small key, which only CloudWatch alarms may use.
    assert one(stack, "aws_kms_alias")["name"] == f"alias/analytics-alarms-{region}-unit"
    assert one(stack, "aws_sns_topic")["kms_master_key_id"] == region_key_arn(stack)
    assert "UseRegionKey" not in worker_statements(stack)


@pytest.mark.parametrize("region", REGIONS)
def test_kms_mode_worker_may_use_exactly_its_regions_key(kms_stacks: dict[str, Any], region: str) -> None:
    stack = kms_stacks[region]
    statements = worker_statements(stack)
    assert statements["UseRegionKey"]["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert statements["UseRegionKey"]["Resource"] == [region_key_arn(stack)]
    assert [sid for sid, s in statements.items() if any(a.startswith("kms:") for a in s["Action"])] == ["UseRegionKey"]
    assert check_iam(region, stack) == []


def test_kms_stacks_pass_the_project_checks_and_mention_no_other_region(
    synthesized_kms: dict[str, Any], kms_stacks: dict[str, Any]
) -> None:
    assert run_checks(synthesized_kms["config"], synthesized_kms["outdir"], with_checkov=False) == []
    for region, stack in kms_stacks.items():
        text = json.dumps(stack)
        for other in set(REGIONS) - {region}:
            assert not re.search(re.escape(other), text), f"{region} stack mentions {other}"
            assert other.replace("-", "_") not in text


def test_kms_mode_runs_the_checkov_checks_that_sse_s3_mode_skips() -> None:
    sse_s3, kms = checkov_suppressions("sse-s3"), checkov_suppressions("kms")
    fixed_by_the_key = {"CKV_AWS_158", "CKV_AWS_145", "CKV_AWS_119", "CKV_AWS_173"}
    assert fixed_by_the_key <= set(sse_s3) and not fixed_by_the_key & set(kms)
    assert set(kms) < set(sse_s3)


@pytest.mark.parametrize("region", REGIONS)
def test_drift_alarm_watches_its_own_stacks_metric_and_notifies_its_regions_topic(
    stacks: dict[str, Any], region: str
) -> None:
    alarms = stacks[region]["resource"]["aws_cloudwatch_metric_alarm"].values()
    alarm = next(a for a in alarms if a.get("metric_name") == DRIFT_METRIC)
    assert alarm["namespace"] == DRIFT_NAMESPACE and alarm["dimensions"] == {"Stack": f"analytics-{region}-unit"}
    assert alarm["alarm_name"] == f"analytics-config-drift-{region}-unit"
    assert alarm["comparison_operator"] == "GreaterThanThreshold" and alarm["threshold"] == 0
    assert alarm["treat_missing_data"] == "ignore"  # between daily datapoints the drift alarm keeps its state
    assert re.fullmatch(r"\$\{aws_sns_topic\.monitoring_topic_\w+\.arn\}", alarm["alarm_actions"][0])
    assert alarm["alarm_actions"] == alarm["ok_actions"]


@pytest.mark.parametrize("region", REGIONS)
def test_s3_backend_keeps_each_regions_state_and_lock_in_that_region(kms_stacks: dict[str, Any], region: str) -> None:
    backend = kms_stacks[region]["terraform"]["backend"]["s3"]
    assert backend == {
        "bucket": f"analytics-tfstate-111122223333-{region}-unit",
        "key": f"analytics-{region}-unit/terraform.tfstate",
        "region": region,
        "dynamodb_table": f"analytics-tflock-{region}-unit",
        "encrypt": True,
        "use_lockfile": True,
    }


@pytest.mark.parametrize("mode", ["sse-s3", "kms"])
def test_each_provider_acts_in_the_environments_account_only(
    synthesized: dict[str, Any], synthesized_kms: dict[str, Any], mode: str
) -> None:
    # Bucket names carry the account (S3's namespace is global); credentials of another account must fail
    # before any change, so the provider is pinned to that account.
    chosen = synthesized if mode == "sse-s3" else synthesized_kms
    for region, stack in chosen["stacks"].items():
        (provider,) = stack["provider"]["aws"]
        assert provider["allowed_account_ids"] == ["111122223333"] and provider["region"] == region
        assert one(stack, "aws_s3_bucket")["bucket"] == f"analytics-bucket-111122223333-{region}-unit"
