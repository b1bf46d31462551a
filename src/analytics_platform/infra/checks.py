"""``tap check``: static checks on the synthesized stacks (no cdktf import: it reads the JSON).

Findings: a reference from one region's stack to another region, an IAM wildcard outside the allow-list,
a managed policy, a missing required tag, a name off the ``{type}-{region}-{suffix}`` convention, a service
the worker calls from its VPC without a route to it (no usable VPC endpoint, no NAT), a
setting in which one region's stack differs from the others' (configuration drift between regions), and
every checkov failure that is not suppressed with its reason (:mod:`.checkov`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analytics_platform.etl.settings import (
    ATHENA_RESULTS_PREFIX,
    PROCESSED_PREFIX,
    QUARANTINE_PREFIX,
    RAW_PREFIX,
    STAGING_PREFIX,
)
from analytics_platform.infra.checkov import run_checkov
from analytics_platform.infra.config import KNOWN_REGIONS, REQUIRED_TAGS, PlatformConfig
from analytics_platform.infra.iam import WILDCARD_ALLOW_LIST
from analytics_platform.infra.metric_math import check_metric_math
from analytics_platform.infra.names import stack_id
from analytics_platform.infra.reachability import stack_findings as reachability_findings

NAMED_ATTRIBUTES = ("bucket", "name", "function_name", "dashboard_name", "alarm_name")
UNNAMED_TYPES = {"aws_iam_role_policy"}  # inline policies are named within their role
#: Key prefixes a grant may end in ``*`` under: the bucket's own layout.
ALLOWED_KEY_PREFIXES = (RAW_PREFIX, PROCESSED_PREFIX, QUARANTINE_PREFIX, STAGING_PREFIX, ATHENA_RESULTS_PREFIX)


def _stack_files(outdir: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    for stack_json in sorted((outdir / "stacks").glob("*/cdk.tf.json")):
        yield stack_json.parent.name, json.loads(stack_json.read_text())


def _resources(stack: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for resource_type, instances in stack.get("resource", {}).items():
        for name, body in instances.items():
            yield resource_type, name, body


def check_residency(stack_name: str, stack: dict[str, Any], region: str) -> list[str]:
    """No mention of any other region anywhere in the stack; the provider is pinned to this region."""
    text = json.dumps(stack)
    findings = [
        f"{stack_name}: refers to another region {other!r}"
        for other in sorted(KNOWN_REGIONS - {region})
        # also spelled with underscores, as in Glue database names
        if re.search(rf"(?<![a-z0-9]){'[-_]'.join(map(re.escape, other.split('-')))}(?![0-9])", text)
    ]
    for provider in stack.get("provider", {}).get("aws", []):
        if provider.get("region") != region:
            findings.append(f"{stack_name}: aws provider region {provider.get('region')!r} is not {region}")
    return findings


def _statement_findings(where: str, statement: dict[str, Any]) -> list[str]:
    if statement.get("Effect") != "Allow":
        return []
    sid = statement.get("Sid", "")
    actions = statement.get("Action", [])
    resources = statement.get("Resource", [])
    actions = [actions] if isinstance(actions, str) else actions
    resources = [resources] if isinstance(resources, str) else resources
    findings = [f"{where}: wildcard action {a!r}" for a in actions if "*" in a]
    for resource in resources:
        if "*" not in resource:
            continue
        if re.match(r"^arn:[^:]*:[^:]*:\*:|^arn:[^:]*:[^:]*:[^:]*:\*:", resource):
            findings.append(f"{where}: region or account wildcard in {resource!r}")
        elif sid in WILDCARD_ALLOW_LIST or any(resource.endswith(f"/{prefix}*") for prefix in ALLOWED_KEY_PREFIXES):
            continue
        else:
            findings.append(f"{where}: wildcard resource {resource!r} (statement {sid or 'without Sid'})")
    return findings


def check_iam(stack_name: str, stack: dict[str, Any]) -> list[str]:
    """Role policies: no wildcard beyond the allow-list; no managed policies at all."""
    findings: list[str] = []
    for resource_type, name, body in _resources(stack):
        if resource_type in {"aws_iam_role_policy_attachment", "aws_iam_policy_attachment"}:
            findings.append(f"{stack_name}/{name}: managed policy attachment")
        if resource_type == "aws_iam_role" and body.get("managed_policy_arns"):
            findings.append(f"{stack_name}/{name}: managed policy ARNs")
        if resource_type == "aws_iam_role_policy":
            document = json.loads(body["policy"])
            for statement in document.get("Statement", []):
                findings += _statement_findings(f"{stack_name}/{name}", statement)
    return findings


def check_tags(stack_name: str, stack: dict[str, Any], region: str) -> list[str]:
    """Required tags through the provider's default tags, with this region's value."""
    findings: list[str] = []
    for provider in stack.get("provider", {}).get("aws", []):
        tags: dict[str, str] = {}
        for block in provider.get("default_tags", []):
            tags.update(block.get("tags", {}))
        missing = [tag for tag in REQUIRED_TAGS if not tags.get(tag)]
        if missing:
            findings.append(f"{stack_name}: provider default tags lack {', '.join(missing)}")
        if tags.get("Region") not in (None, region):
            findings.append(f"{stack_name}: Region tag {tags.get('Region')!r} is not {region}")
    return findings


def check_names(stack_name: str, stack: dict[str, Any], region: str, suffix: str) -> list[str]:
    """Every literal physical name carries the region and the environment suffix."""
    findings: list[str] = []
    for resource_type, name, body in _resources(stack):
        if resource_type in UNNAMED_TYPES:
            continue
        for attribute in NAMED_ATTRIBUTES:
            value = body.get(attribute)
            if not isinstance(value, str) or "${" in value:
                continue
            # Glue database names cannot hold hyphens: theirs is the same name with underscores.
            if f"{region}-{suffix}" not in value and f"{region}_{suffix}".replace("-", "_") not in value:
                findings.append(f"{stack_name}/{name}: {attribute} {value!r} lacks '{region}-{suffix}'")
    return findings


#: What may differ between regional stacks, by design: the per-region parameters of ``RegionConfig``. The
#: region code itself is replaced separately. Everything else must be equal in every region.
REGION_PARAMETERS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}/\d{1,2}\b"), "<cidr>"),  # vpc_cidr and the subnets carved from it
    (re.compile(r"private-\d+"), "private-<n>"),  # one subnet per zone: az_count
    (re.compile(r"\b[a-z]{2,6}\d-az\d+\b"), "<zone-id>"),  # az_ids: each region's own zone ids (use1-az1)
    (re.compile(r"_[0-9A-F]{8}\b"), ""),  # logical-id hashes (of the construct path, which holds the index)
)


#: Numbers inside Terraform expressions (``${...}``): the per-zone index, however a construct spells the lookup.
INTERPOLATION = re.compile(r"\$\{[^}]*\}")


def _without_numbers(match: re.Match[str]) -> str:
    return re.sub(r"\b\d+\b", "<n>", match.group(0))


def _flatten(value: Any, path: str, region: str, into: dict[str, set[str]]) -> None:
    """``path -> set of values`` with the region and the per-region parameters replaced by placeholders.

    List positions are dropped (``path[]``) so that two or three subnets of the same shape flatten alike.
    """

    def normal(text: str) -> str:
        text = text.replace(region, "<region>").replace(region.replace("-", "_"), "<region>")
        for pattern, placeholder in REGION_PARAMETERS:
            text = pattern.sub(placeholder, text)
        return INTERPOLATION.sub(_without_numbers, text)

    if isinstance(value, dict):
        for key, item in value.items():
            if key != "//":  # cdktf metadata
                _flatten(item, f"{path}.{normal(key)}" if path else normal(key), region, into)
    elif isinstance(value, list):
        for item in value:
            _flatten(item, f"{path}[]", region, into)
    else:
        into.setdefault(path, set()).add(normal(json.dumps(value)))


def check_consistency(stacks: Mapping[str, tuple[str, dict[str, Any]]]) -> list[str]:
    """Settings in which a regional stack differs from the first region's (``{stack name: (region, stack)}``).

    The stacks must be identical in shape and settings except for the region and its ``RegionConfig``
    parameters (VPC CIDR, number of zones), so a difference is configuration drift between regions.
    """
    flattened: list[tuple[str, str, dict[str, set[str]]]] = []
    for name, (region, stack) in stacks.items():
        into: dict[str, set[str]] = {}
        _flatten(stack, "", region, into)
        flattened.append((name, region, into))
    if not flattened:
        return []
    _, reference_region, reference = flattened[0]
    findings = []
    for name, _region, settings in flattened[1:]:
        for path in sorted(reference.keys() | settings.keys()):
            ours, theirs = settings.get(path), reference.get(path)
            if ours == theirs:
                continue
            here = ", ".join(sorted(ours)) if ours else "absent"
            there = ", ".join(sorted(theirs)) if theirs else "absent"
            findings.append(f"{name}: differs from {reference_region}: {path} is {here} here, {there} there")
    return findings


def _regional_stacks(config: PlatformConfig, outdir: Path) -> tuple[list[str], dict[str, tuple[str, dict[str, Any]]]]:
    expected = {stack_id(r.region, config.environment_suffix): r.region for r in config.regions}
    stacks = dict(_stack_files(outdir))
    missing = [f"{name}: stack missing from {outdir}" for name in expected if name not in stacks]
    return missing, {name: (expected[name], stacks[name]) for name in expected if name in stacks}


def consistency_findings(config: PlatformConfig, outdir: Path) -> list[str]:
    """Where the synthesized regional stacks differ from each other (``tap drift`` reports these too)."""
    missing, regional = _regional_stacks(config, outdir)
    return missing + check_consistency(regional)


@dataclass(frozen=True)
class Finding:
    """One finding of ``tap check``: the rule that found it (a checkov id such as ``CKV_AWS_18`` for checkov's),
    the stack it is in (None when it is about no single stack) and the message."""

    rule: str
    stack: str | None
    message: str


#: What each rule of the project's own checks looks for (``tap check --format sarif`` lists them).
RULES = {
    "stack-missing": "every region of the configuration has its synthesized stack",
    "consistency": "the regional stacks are identical in shape apart from their region",
    "residency": "nothing in a region's stack names another region",
    "iam": "IAM policies name their resources: no wildcard resource, no managed policy",
    "tags": "every resource carries the provider's default tags with its own Region",
    "names": "every name carries its region and environment suffix",
    "metric-math": "every CloudWatch metric-math expression uses functions CloudWatch has",
    "reachability": "every AWS API the worker calls is reachable from its private subnets",
    "checkov": "checkov's Terraform checks, less the documented suppressions",
    "terraform-validate": "terraform validate accepts the stack against the provider's schema",
    "isolation": "environments share no state, lock or resource names",
}


def checked(config: PlatformConfig, outdir: Path, *, with_checkov: bool = True) -> list[Finding]:
    """All findings over the synthesized stacks of ``config`` in ``outdir``, each with its rule and stack."""
    missing, regional = _regional_stacks(config, outdir)
    findings = [Finding("stack-missing", None, text) for text in missing]
    findings += [Finding("consistency", _stack_of(text), text) for text in check_consistency(regional)]
    for name, (region, stack) in regional.items():
        for rule, texts in (
            ("residency", check_residency(name, stack, region)),
            ("iam", check_iam(name, stack)),
            ("tags", check_tags(name, stack, region)),
            ("names", check_names(name, stack, region, config.environment_suffix)),
            ("metric-math", check_metric_math(name, stack)),
            ("reachability", reachability_findings(name, stack)),
        ):
            findings += [Finding(rule, name, text) for text in texts]
        if with_checkov:
            for text in run_checkov(outdir / "stacks" / name, config.encryption):
                checkov_id = re.search(r": checkov (CKV\w+) ", text)
                findings.append(Finding(checkov_id.group(1) if checkov_id else "checkov", name, text))
    return findings


def _stack_of(text: str) -> str | None:
    found = re.match(r"([A-Za-z0-9-]+)[:/]", text)
    return found.group(1) if found else None


def run_checks(config: PlatformConfig, outdir: Path, *, with_checkov: bool = True) -> list[str]:
    """All findings over the synthesized stacks of ``config`` in ``outdir``, as text."""
    return [finding.message for finding in checked(config, outdir, with_checkov=with_checkov)]
