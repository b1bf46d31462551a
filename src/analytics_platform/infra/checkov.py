"""checkov on the synthesized stacks (``tap check``): the checks the specification rules out, each with its reason,
and one finding per failed check."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

#: checkov checks that contradict the specification, each with the requirement that rules it out.
CHECKOV_SUPPRESSIONS: Mapping[str, str] = {
    "CKV_AWS_338": "spec: CloudWatch Logs retention must be exactly 30 days, not one year",
    "CKV_AWS_144": "data-residency rule: no data crosses a region boundary, so no cross-region replication",
    "CKV_AWS_116": "the function is SQS-triggered: failed messages go to the queue's redrive DLQ (spec 6); a "
    "function DLQ applies only to asynchronous invocations",
    "CKV_AWS_272": "the package is built reproducibly by the project and pinned by source_code_hash; code signing "
    "needs an AWS Signer profile that is not part of the spec",
    "CKV_AWS_18": "every object is tracked by a job record; server access logs would need an extra log bucket per "
    "region that the spec does not ask for",
    "CKV_AWS_394": "subnets are spread over the region's available zones by index; zone ids differ per account, "
    "so pinning them would break deployment into another account",
}
#: Suppressed only with ``encryption = "sse-s3"`` (the default), which chooses exactly what these checks flag.
#: With ``encryption = "kms"`` the region's customer-managed key fixes them, and they run like every other check.
SSE_S3_CHECKOV_SUPPRESSIONS: Mapping[str, str] = {
    "CKV_AWS_158": "encryption = 'sse-s3': log groups keep 30-day operational logs (no data rows) with CloudWatch "
    "Logs' own encryption; encryption = 'kms' encrypts them with the region's key",
    "CKV_AWS_145": "encryption = 'sse-s3' (spec 3: data buckets use SSE-S3, AES256); encryption = 'kms' uses "
    "SSE-KMS with the region's key",
    "CKV_AWS_119": "encryption = 'sse-s3': the job table is encrypted at rest with DynamoDB's AWS-owned key and "
    "holds metadata only; encryption = 'kms' uses the region's key",
    "CKV_AWS_173": "encryption = 'sse-s3': the function's environment holds only resource names, prefixes and limits "
    "(spec 4), no secrets, under Lambda's own key; encryption = 'kms' uses the region's key",
}


def checkov_suppressions(encryption: str = "sse-s3") -> Mapping[str, str]:
    """The checkov checks skipped for a stack synthesized with ``encryption``, each with its reason."""
    return {**CHECKOV_SUPPRESSIONS, **(SSE_S3_CHECKOV_SUPPRESSIONS if encryption == "sse-s3" else {})}


def checkov_binary() -> str | None:
    """``$TAP_CHECKOV``, the project's ``.venv-checkov``, or ``checkov`` on PATH."""
    for candidate in (os.environ.get("TAP_CHECKOV"), ".venv-checkov/bin/checkov", shutil.which("checkov")):
        if candidate and Path(candidate).exists():
            return str(candidate)
    return None


def run_checkov(stack_dir: Path, encryption: str = "sse-s3") -> list[str]:
    """checkov on one stack synthesized with ``encryption``; failures not in its
    :func:`checkov_suppressions` are findings."""
    binary = checkov_binary()
    if binary is None:
        return [f"{stack_dir.name}: checkov is not installed (make install-checkov, or set TAP_CHECKOV)"]
    result = subprocess.run(
        [binary, "-d", str(stack_dir), "--framework", "terraform_json", "--skip-download", "--quiet",
         "--compact", "-o", "json", "--skip-check", ",".join(checkov_suppressions(encryption))],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    try:
        reports = json.loads(result.stdout)
    except json.JSONDecodeError:
        return [f"{stack_dir.name}: checkov did not produce a report: {result.stderr.strip()[-400:]}"]
    reports = reports if isinstance(reports, list) else [reports]
    findings = []
    for report in reports:
        for failed in report.get("results", {}).get("failed_checks", []):
            findings.append(
                f"{stack_dir.name}: checkov {failed['check_id']} {failed['resource']}: {failed['check_name']}"
            )
        if report.get("summary", {}).get("parsing_errors"):
            findings.append(f"{stack_dir.name}: checkov could not parse the stack")
    return findings
