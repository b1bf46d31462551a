"""The synthesized stacks against the real tools: Terraform (offline mirror), checkov, and the plain import.

Uses the session's single synth (``tests/conftest.py``); each check here runs an external program.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from analytics_platform.infra.checkov import checkov_suppressions, run_checkov
from analytics_platform.local.terraform import TerraformRunner
from analytics_platform.local.terraform_runs import run_per_region

ROOT = Path(__file__).resolve().parents[2]
SYNTH_SCRIPT = """
import json, sys
from analytics_platform.infra.app import synth
from analytics_platform.infra.config import load_config
from analytics_platform.infra.constructs import BINDING_IMPORT_MODE
config = load_config(None, environ={"ENVIRONMENT_SUFFIX": "unit"}, account_id="111122223333")
from pathlib import Path
synth(config, outdir=sys.argv[1], build_dir=Path(sys.argv[2]))
loaded = [m for m in sys.modules if m.startswith("cdktf_cdktf_provider_aws.")]
print(json.dumps({"mode": BINDING_IMPORT_MODE, "submodules": len(loaded)}))
"""


def stack_dirs(synthesized: dict[str, Any]) -> list[Path]:
    return sorted(p for p in (synthesized["outdir"] / "stacks").iterdir() if p.is_dir())


def test_every_stack_passes_terraform_validate_through_the_offline_mirror(
    synthesized: dict[str, Any], tmp_path: Path
) -> None:
    runner = TerraformRunner.create(tmp_path)  # fresh stack folders, as on a fresh machine
    names = [stack_dir.name for stack_dir in stack_dirs(synthesized)]
    for stack_dir in stack_dirs(synthesized):
        # A copy, so the session's synth output stays free of .terraform folders.
        shutil.copytree(stack_dir, tmp_path / stack_dir.name)
    # In parallel, like `tap local up`: one stack's init must never pull the provider from under another's run.
    run_per_region(lambda name: runner.validate(tmp_path / name, log_name=name), names, progress=lambda _: None)
    for name in names:
        link = tmp_path / name / ".terraform/providers/registry.terraform.io/hashicorp/aws/5.100.0"
        assert link.is_dir(), "each stack holds its own provider entry, not a shared cache's"
        assert "Success! The configuration is valid." in (tmp_path / "logs" / f"{name}.log").read_text()


def test_terraform_validate_rejects_a_broken_stack(synthesized: dict[str, Any], tmp_path: Path) -> None:
    from analytics_platform.local.terraform import TerraformError

    work = tmp_path / "broken"
    shutil.copytree(stack_dirs(synthesized)[0], work)
    stack = json.loads((work / "cdk.tf.json").read_text())
    queue = next(iter(stack["resource"]["aws_sqs_queue"].values()))
    queue["visibility_timeout_seconds_typo"] = 300
    (work / "cdk.tf.json").write_text(json.dumps(stack))
    with pytest.raises(TerraformError, match="visibility_timeout_seconds_typo"):
        TerraformRunner.create(tmp_path).validate(work, log_name="broken")


def test_checkov_has_no_unsuppressed_failure(synthesized: dict[str, Any]) -> None:
    for stack_dir in stack_dirs(synthesized):
        assert run_checkov(stack_dir) == []


def test_checkov_has_no_unsuppressed_failure_in_kms_mode(synthesized_kms: dict[str, Any]) -> None:
    """The KMS checks sse-s3 mode skips (S3, DynamoDB, log groups, Lambda environment) run here, and pass."""
    for stack_dir in stack_dirs(synthesized_kms):
        assert run_checkov(stack_dir, "kms") == []


def test_checkov_reports_a_weakened_stack(synthesized: dict[str, Any], tmp_path: Path) -> None:
    work = tmp_path / "weak"
    shutil.copytree(stack_dirs(synthesized)[0], work, ignore=shutil.ignore_patterns("assets"))
    stack = json.loads((work / "cdk.tf.json").read_text())
    del stack["resource"]["aws_s3_bucket_public_access_block"]
    for queue in stack["resource"]["aws_sqs_queue"].values():
        queue["sqs_managed_sse_enabled"] = False
    (work / "cdk.tf.json").write_text(json.dumps(stack))
    findings = run_checkov(work)
    assert findings, "checkov must flag an unencrypted queue and a bucket without a public access block"
    assert any("CKV_AWS_27" in f for f in findings), findings


def test_every_checkov_suppression_names_its_reason() -> None:
    for check_id, reason in checkov_suppressions("sse-s3").items():  # every suppression of either mode
        assert check_id.startswith("CKV_AWS_") and len(reason) > 30, check_id


@pytest.mark.parametrize("plain", [False, True], ids=["fast-import", "plain-import"])
def test_binding_import_paths_synthesize_byte_identical_stacks(
    synthesized: dict[str, Any], tmp_path: Path, plain: bool
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TAP_PLAIN_PROVIDER_IMPORT"}
    if plain:
        env["TAP_PLAIN_PROVIDER_IMPORT"] = "1"
    outdir = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-c", SYNTH_SCRIPT, str(outdir), str(ROOT / ".tap" / "build")],
        env=env, capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["mode"] == ("plain" if plain else "fast")
    if plain:
        assert report["submodules"] > 2000  # the package's __init__ ran
    else:
        assert report["submodules"] < 100  # only what the constructs use
    reference = synthesized["outdir"] / "stacks"
    for stack_json in sorted(reference.glob("*/cdk.tf.json")):
        other = outdir / "stacks" / stack_json.parent.name / "cdk.tf.json"
        assert other.read_bytes() == stack_json.read_bytes(), stack_json.parent.name


def test_tap_check_runs_terraform_validate_on_an_edited_synth_output(
    synthesized: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from analytics_platform.cli import main

    # GIVEN the real synth output with one value CloudWatch Logs refuses (a retention of 17 days), which only
    # terraform validate catches (the configuration validation would refuse it before synth)
    out = tmp_path / "out"
    shutil.copytree(synthesized["outdir"], out)
    edited = sorted((out / "stacks").iterdir())[0]
    stack = json.loads((edited / "cdk.tf.json").read_text())
    next(iter(stack["resource"]["aws_cloudwatch_log_group"].values()))["retention_in_days"] = 17
    (edited / "cdk.tf.json").write_text(json.dumps(stack))
    config = tmp_path / "account.toml"
    config.write_text('account_id = "111122223333"\n')
    monkeypatch.setenv("ENVIRONMENT_SUFFIX", "unit")
    # WHEN tap check runs on it without synthesizing
    code = main(["check", "--no-synth", "--out", str(out), "--config", str(config), "--skip-checkov"])
    # THEN exactly that stack has a validate finding naming the attribute and the value, and the command fails
    printed = capsys.readouterr().out
    findings = [line for line in printed.splitlines() if "terraform validate" in line]
    assert code == 1 and len(findings) == 1, printed
    assert findings[0].startswith(f"FINDING {edited.name}: terraform validate: expected retention_in_days")
    assert "got 17" in findings[0]
    assert not (edited / ".terraform").exists(), "validate runs on a copy"


def test_validate_reports_a_missing_stack_and_still_validates_the_others(
    synthesized: dict[str, Any], tmp_path: Path
) -> None:
    from analytics_platform.local.terraform import validate_stacks

    # GIVEN a synth output in which one region's stack folder is gone
    out = tmp_path / "out"
    shutil.copytree(synthesized["outdir"] / "stacks", out)
    names = sorted(p.name for p in out.iterdir())
    shutil.rmtree(out / names[0])
    # WHEN every stack is validated THEN the missing one is a finding (not a crash) and the others are clean
    findings = validate_stacks(out, names, tmp_path / "work")
    assert len(findings) == 1 and findings[0].startswith(f"{names[0]}: terraform validate: no synthesized stack")
