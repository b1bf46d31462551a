"""Machine-readable reports: ``--json`` documents and ``tap check --format sarif``; their schemas are in the README
("Machine-readable output") and tested in ``tests/unit/test_cli_reports.py``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from analytics_platform.machine_output import emit, machine_readable

if TYPE_CHECKING:
    from analytics_platform.infra.checks import Finding

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
#: ``schema`` of each JSON document: a consumer can tell what it reads, and a change of shape gets a new number.
CHECK_SCHEMA = "tap.check/1"


@dataclass(frozen=True)
class CheckedEnvironment:
    """One environment's ``tap check``: its name (None: the defaults), stacks checked, synth folder, findings."""

    environment: str | None
    stacks: int
    out: Path
    findings: Sequence[Finding]


def check_document(
    environments: Sequence[CheckedEnvironment], shared: Sequence[Finding] = (), *, error: str | None = None
) -> dict[str, Any]:
    """``tap check --format json``: ``{schema, ok, findings, environments: [{environment, stacks, findings:
    [{rule, stack, message}]}], shared: [...]}``, and ``error`` when the check could not run (a configuration
    error, say): then ``ok`` is false whatever was found."""

    def rows(findings: Sequence[Finding]) -> list[dict[str, Any]]:
        return [{"rule": f.rule, "stack": f.stack, "message": f.message} for f in findings]

    total = len(shared) + sum(len(e.findings) for e in environments)
    document = {
        "schema": CHECK_SCHEMA,
        "ok": total == 0 and error is None,
        "findings": total,
        "environments": [
            {"environment": e.environment, "stacks": e.stacks, "findings": rows(e.findings)} for e in environments
        ],
        "shared": rows(shared),
    }
    return document if error is None else {**document, "error": error}


def _location(environment: CheckedEnvironment, finding: Finding) -> list[dict[str, Any]]:
    if finding.stack is None:
        return []
    stack_file = environment.out / "stacks" / finding.stack / "cdk.tf.json"
    try:
        uri = quote(stack_file.resolve().relative_to(Path.cwd().resolve()).as_posix())  # a URI reference
    except ValueError:
        uri = stack_file.resolve().as_uri()
    return [{"physicalLocation": {"artifactLocation": {"uri": uri}}}]


def sarif_document(
    environments: Sequence[CheckedEnvironment], shared: Sequence[Finding] = (), *, version: str,
    error: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """SARIF 2.1.0 (what checkov and tfsec give code-scanning tools): one run, one rule per check family or
    checkov id, one ``error`` result per finding, located in its stack's ``cdk.tf.json`` when it has one; the
    run's invocation says whether the check ran (``error``: why not, as a tool execution notification)."""
    from analytics_platform.infra.checks import RULES

    findings = [(e, f) for e in environments for f in e.findings]
    findings += [(CheckedEnvironment(None, 0, Path("."), ()), f) for f in shared]
    rule_ids = sorted({f.rule for _, f in findings} | set(RULES))
    rules = [
        {"id": rule, "shortDescription": {"text": RULES.get(rule, f"checkov check {rule}")},
         **({"helpUri": f"https://www.checkov.io/5.Policy%20Index/all.html#{rule}"} if rule not in RULES else {})}
        for rule in rule_ids
    ]  # fmt: skip
    index = {rule: i for i, rule in enumerate(rule_ids)}
    results = []
    for environment, finding in findings:
        where = f" (environment {environment.environment})" if environment.environment else ""
        results.append({
            "ruleId": finding.rule, "ruleIndex": index[finding.rule], "level": "error",
            "message": {"text": finding.message + where}, "locations": _location(environment, finding),
        })  # fmt: skip
    driver = {"name": "tap check", "version": version, "rules": rules}
    invocation: dict[str, Any] = {"executionSuccessful": error is None}
    if error is not None:
        invocation["toolExecutionNotifications"] = [{"level": "error", "message": {"text": error}}]
    run = {"tool": {"driver": driver}, "invocations": [invocation], "results": results}
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}


__all__ = [
    "CHECK_SCHEMA", "CheckedEnvironment", "check_document", "emit", "machine_readable", "sarif_document",
]  # fmt: skip
