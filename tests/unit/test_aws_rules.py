"""The synthesized stacks read against AWS's rules: what each service documents, accepts and refuses.

Both encryption modes: ``synthesized`` keeps every default; ``synthesized_kms`` also sets the production-like
settings of ``PROTECTED_SETTINGS`` (zones by id, alarm e-mails, deletion protection, a concurrency cap).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from analytics_platform.infra.metric_math import check_expression, stack_expressions

from ..conftest import PROTECTED_SETTINGS, ROOT

REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-1")
MODES = ("synthesized", "synthesized_kms")


@pytest.fixture(params=MODES)
def synth(request: pytest.FixtureRequest) -> dict[str, Any]:
    return dict(request.getfixturevalue(request.param))


def resources(stack: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    return list(stack["resource"].get(resource_type, {}).values())


def one(stack: dict[str, Any], resource_type: str) -> dict[str, Any]:
    (found,) = resources(stack, resource_type)
    return found


def ref(stack: dict[str, Any], resource_type: str, attribute: str) -> str:
    (name,) = stack["resource"][resource_type]
    return f"${{{resource_type}.{name}.{attribute}}}"


# --- 1. SQS -> Lambda ------------------------------------------------------------------------------------------
def test_the_queue_trigger_caps_its_concurrency_at_the_configured_maximum(synth: dict[str, Any]) -> None:
    config = synth["config"]
    # default: the reservation less the one left for the scheduled dead-letter sweep
    expected = 4 if config.encryption == "kms" else config.lambda_reserved_concurrency - 1
    for stack in synth["stacks"].values():
        mapping = one(stack, "aws_lambda_event_source_mapping")
        assert mapping["scaling_config"] == {"maximum_concurrency": expected}
        assert 2 <= expected <= one(stack, "aws_lambda_function")["reserved_concurrent_executions"]


# --- 2. alarms reach someone, in a form CloudWatch accepts ------------------------------------------------------
def test_each_alarm_email_is_subscribed_to_its_own_regions_topic(synth: dict[str, Any]) -> None:
    emails = synth["config"].alarm_emails
    assert emails == (tuple(PROTECTED_SETTINGS["alarm_emails"]) if synth["config"].encryption == "kms" else ())
    for stack in synth["stacks"].values():
        subscriptions = resources(stack, "aws_sns_topic_subscription")
        assert sorted(s["endpoint"] for s in subscriptions) == sorted(emails)
        assert all(s["protocol"] == "email" and s["topic_arn"] == ref(stack, "aws_sns_topic", "arn")
                   for s in subscriptions)  # fmt: skip


def test_every_metric_math_expression_parses_against_cloudwatchs_function_table(synth: dict[str, Any]) -> None:
    for stack in synth["stacks"].values():
        found = list(stack_expressions(stack))
        # the error-rate alarm, the failed-jobs alarm and the dashboard's error-rate widget
        assert [(where.split(".")[0], alarm) for where, _, _, alarm in found] == [
            ("aws_cloudwatch_metric_alarm", True), ("aws_cloudwatch_metric_alarm", True),
            ("aws_cloudwatch_dashboard", False),
        ]  # fmt: skip
        for _where, expression, ids, alarm in found:
            assert check_expression(expression, ids, alarm=alarm).type == "TS"
        rates = {expression for _, expression, _, _ in found if "invocations" in expression}
        assert rates == {"IF(invocations > 0, 100 * errors / invocations, 0)"}


IDS = ("errors", "invocations", "m1")


@pytest.mark.parametrize(
    ("expression", "alarm", "problem"),
    [
        ("100 * errors / MAX([invocations, 1])", False, "an array holds time series only"),
        ("100 * errors / MAX([invocations, 1])", True, "an array holds time series only"),
        ("if(invocations > 0, errors, 0)", False, "written in uppercase"),
        ("Errors * 2", False, "ids start with a lowercase letter"),
        ("IF(invocations > 0)", False, "matches none of"),
        ("IF(1, 2, 3)", False, "matches none of"),
        ("FILL(errors)", False, "matches none of"),
        ("FILL(errors, m1)", False, "matches none of"),  # a TS filler only for an array
        ("SUM([errors, invocations])", True, "should not be used in an alarm"),
        ("SUM(errors)", False, "the result is S"),
        ("METRICS()", True, "an alarm watches one time series"),
        ('SEARCH("{AWS/Lambda} Errors")', True, "an alarm watches one time series"),
        ("AVERAGE(errors)", False, "is not a metric math function"),
        ("throttles / invocations", False, "names no query"),
        ("errors +", False, "expected more"),
        ("(errors", False, "expected )"),
        ("errors invocations", False, "after a complete expression"),
        ("METRICS() * METRICS()", False, "is not a valid operation"),
        ("errors > METRICS()", False, "is not a valid operation"),
        ("errors % 2", False, "unexpected character"),
    ],
)
def test_the_checker_refuses_what_cloudwatch_refuses(expression: str, alarm: bool, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        check_expression(expression, IDS, alarm=alarm)


@pytest.mark.parametrize(
    ("expression", "alarm", "result"),
    [
        ("IF(invocations > 0, 100 * errors / invocations, 0)", True, "TS"),
        ("FILL(errors, 0) + FILL(invocations, 0)", True, "TS"),
        ("FILL(METRICS(), LINEAR)", False, "TS[]"),
        ("m1 - AVG(m1)", False, "TS"),
        ("SUM(100 / [errors, invocations])", False, "TS"),
        ("AVG([errors, invocations] / m1)", False, "TS"),
        ("SLICE(SORT(METRICS(), SUM, DESC), 0, 10)", False, "TS[]"),
        ('SORT(METRICS("errors"), MAX, ASC, 5)', False, "TS[]"),
        ("IF(errors > 15 AND m1 > 15, 1, 0)", True, "TS"),
        ("-m1 * 2 ^ 3", True, "TS"),
        ("TIME_SERIES(5 * AVG(m1))", False, "TS"),
        ("LAST(ANOMALY_DETECTION_BAND(m1, 4))", True, "TS"),
    ],
)
def test_the_checker_accepts_the_guides_own_examples(expression: str, alarm: bool, result: str) -> None:
    assert check_expression(expression, IDS, alarm=alarm).type == result


# --- 3. zones ---------------------------------------------------------------------------------------------------
def test_zones_never_include_local_zones_and_az_ids_pin_subnets_by_zone_id(synth: dict[str, Any]) -> None:
    config = synth["config"]
    for region, stack in synth["stacks"].items():
        (zones,) = stack["data"]["aws_availability_zones"].values()
        assert zones["state"] == "available"
        assert zones["filter"] == [{"name": "opt-in-status", "values": ["opt-in-not-required"]}]
        subnets = sorted(resources(stack, "aws_subnet"), key=lambda s: s["cidr_block"])
        az_ids = config.region(region).az_ids
        if az_ids:
            assert [s["availability_zone_id"] for s in subnets] == list(az_ids)
            assert all("availability_zone" not in s for s in subnets)
        else:
            assert all("availability_zone_id" not in s for s in subnets)
            assert all("aws_availability_zones" in s["availability_zone"] for s in subnets)


# --- 4. lifecycle -----------------------------------------------------------------------------------------------
def test_lifecycle_expires_old_versions_and_delete_markers_but_never_a_current_upload(synth: dict[str, Any]) -> None:
    config = synth["config"]
    glacier, noncurrent = config.glacier_transition_days, config.noncurrent_version_expiration_days
    for stack in synth["stacks"].values():
        rules = {r["id"]: r for r in one(stack, "aws_s3_bucket_lifecycle_configuration")["rule"]}
        for prefix in ("raw", "quarantine"):
            archive = rules[f"archive-{prefix}"]
            assert "expiration" not in archive  # the archive is the retention: current uploads never expire
            assert archive["noncurrent_version_expiration"] == [{"noncurrent_days": noncurrent}]
            # archived first only when the version lives past the transition (S3 wants expiration > transition)
            expected = [{"noncurrent_days": glacier, "storage_class": "GLACIER"}] if noncurrent > glacier else None
            assert archive.get("noncurrent_version_transition") == expected
        markers = rules["expire-noncurrent-versions"]
        assert markers["filter"] == [{"prefix": ""}]
        # S3 refuses ExpiredObjectDeleteMarker with Days or Date in one Expiration
        assert markers["expiration"] == [{"expired_object_delete_marker": True}]
        assert markers["noncurrent_version_expiration"] == [{"noncurrent_days": noncurrent}]
        for rule in rules.values():
            for expiration in rule.get("expiration", []):
                assert not ({"days", "date"} & set(expiration) and "expired_object_delete_marker" in expiration)
                if "days" in expiration:  # only Athena's query results and staged Parquet expire while current
                    assert rule["filter"] in ([{"prefix": "athena-results/"}], [{"prefix": "staging/"}])


# --- 5. smaller ones --------------------------------------------------------------------------------------------
def test_the_s3_backend_locks_with_a_lock_file_and_the_table(synthesized_kms: dict[str, Any]) -> None:
    for region, stack in synthesized_kms["stacks"].items():
        backend = stack["terraform"]["backend"]["s3"]
        assert backend["use_lockfile"] is True and backend["dynamodb_table"] == f"analytics-tflock-{region}-unit"


def test_no_synthesized_stack_and_no_source_file_names_the_aws_partition(synth: dict[str, Any]) -> None:
    for stack in synth["stacks"].values():
        assert "arn:aws:" not in json.dumps(stack)
        assert "${data.aws_partition.partition.partition}" in json.dumps(stack)
    sources = sorted((ROOT / "src").rglob("*.py"))
    assert len(sources) > 50
    assert [str(p.relative_to(ROOT)) for p in sources if "arn:aws:" in Path(p).read_text(encoding="utf-8")] == []


def test_the_flow_log_role_trusts_the_service_for_this_account_only(synth: dict[str, Any]) -> None:
    for stack in synth["stacks"].values():
        roles = [r for r in resources(stack, "aws_iam_role") if "vpc-flow-logs" in r["assume_role_policy"]]
        (statement,) = json.loads(roles[0]["assume_role_policy"])["Statement"]
        assert statement["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
        assert statement["Condition"] == {
            "StringEquals": {"aws:SourceAccount": "${data.aws_caller_identity.account.account_id}"}
        }


def test_new_catalog_tables_stay_under_iam_access_control(synth: dict[str, Any]) -> None:
    for stack in synth["stacks"].values():
        database = one(stack, "aws_glue_catalog_database")
        assert database["create_table_default_permission"] == [
            {"permissions": ["ALL"], "principal": {"data_lake_principal_identifier": "IAM_ALLOWED_PRINCIPALS"}}
        ]


def test_undeliverable_upload_events_go_to_the_dlq_which_admits_only_the_upload_rule(synth: dict[str, Any]) -> None:
    for stack in synth["stacks"].values():
        queues = {q["name"]: name for name, q in stack["resource"]["aws_sqs_queue"].items()}
        dlq = next(name for queue, name in queues.items() if queue.startswith("analytics-dlq-"))
        target = next(t for t in resources(stack, "aws_cloudwatch_event_target") if t["target_id"] == "etl-queue")
        assert target["dead_letter_config"] == {"arn": f"${{aws_sqs_queue.{dlq}.arn}}"}
        assert target["retry_policy"] == {"maximum_event_age_in_seconds": 3600, "maximum_retry_attempts": 185}
        upload_rule = next(n for n, r in stack["resource"]["aws_cloudwatch_event_rule"].items() if "event_pattern" in r)
        policies = {p["queue_url"]: json.loads(p["policy"]) for p in resources(stack, "aws_sqs_queue_policy")}
        (statement,) = policies[f"${{aws_sqs_queue.{dlq}.url}}"]["Statement"]
        assert (
            statement["Principal"] == {"Service": "events.amazonaws.com"} and statement["Action"] == "sqs:SendMessage"
        )
        assert statement["Resource"] == f"${{aws_sqs_queue.{dlq}.arn}}"
        assert statement["Condition"] == {
            "ArnEquals": {"aws:SourceArn": f"${{aws_cloudwatch_event_rule.{upload_rule}.arn}}"}
        }


def test_deletion_protection_guards_table_bucket_and_keys_and_is_off_by_default(synth: dict[str, Any]) -> None:
    protected = synth["config"].deletion_protection
    assert protected is (synth["config"].encryption == "kms")  # the kms fixture is the production-like one
    for stack in synth["stacks"].values():
        assert one(stack, "aws_dynamodb_table")["deletion_protection_enabled"] is protected
        bucket = one(stack, "aws_s3_bucket")
        assert ("force_destroy" not in bucket) if protected else bucket["force_destroy"] is True
        assert one(stack, "aws_athena_workgroup")["force_destroy"] is not protected
        windows = {k["deletion_window_in_days"] for k in resources(stack, "aws_kms_key")}
        assert windows == ({30} if protected else {7})
