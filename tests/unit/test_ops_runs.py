"""Per-region runs as pure logic: plan counts, the summary table, one failing region, plan / deploy / destroy with a
fake Terraform, destroy confirmation, data-loss refusal, one command per environment at a time."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from analytics_platform.infra.config import PlatformConfig
from analytics_platform.ops import runs
from analytics_platform.ops.runs import RegionRun, confirm_destroy, plan_counts, run_regions, summary_table
from analytics_platform.targeting.deployment import Deployment, OperationError
from tests.unit.ops_support import (
    ACCOUNT,
    ENDPOINT,
    FakeRunner,
    FakeStdin,
    change,
    deployment_of,
    run_terraform,
)


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

    deployment = Deployment("dev", PlatformConfig(account_id=ACCOUNT), ("us-east-1",), tmp_path / "ops" / "dev")
    other = Deployment("staging", PlatformConfig(account_id=ACCOUNT), ("us-east-1",), tmp_path / "ops" / "staging")
    with deployment.exclusive():
        with pytest.raises(OperationError, match="another tap command"), deployment.exclusive():
            pass
        with other.exclusive():  # another environment is not held up
            pass
    with deployment.exclusive():  # released afterwards
        pass
