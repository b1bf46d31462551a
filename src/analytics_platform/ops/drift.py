"""``tap drift``: what changed in the deployed regions outside Terraform, and where regions differ.

Per region a refresh-only plan (``-detailed-exitcode``) compares the deployed resources with the state Terraform
left; each drifted resource is reported with its changed attributes. Across regions, the refreshed states are
compared resource by resource after the region's own name is taken out of every value, so an attribute that
differs between regions (a queue's timeout, a bucket's versioning) is named with the region(s) that differ
from the others. With ``publish`` the number of drifted resources of each region goes to that region's
CloudWatch as ``ConfigurationDrift``, which each stack's drift alarm watches.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from analytics_platform.infra.names import DRIFT_METRIC, DRIFT_NAMESPACE, stack_id
from analytics_platform.ops.deployment import Deployment
from analytics_platform.ops.runs import RegionRun, run_regions

DRIFT_PLAN = "tap-drift.tfplan"
#: Attributes that differ between regions by nature (identifiers, ARNs, addresses, timestamps, the CIDR plan of
#: each region): the cross-region comparison skips them, never the per-region one.
_UNIQUE_ATTRIBUTE = re.compile(
    r"(^|_)(id|ids|arn|arns|url|etag|owner|cidr_block|cidr_blocks|ipv6_cidr_block|stream_label|version|"
    r"last_modified|creation_date|create_date|created_time|source_code_size|hosted_zone_id|"
    r"qualified_arn|qualified_invoke_arn|invoke_arn|key_id|dns_name|association_id|network_acl_id)$"
)
#: Values AWS generates (resource ids, UUIDs, IP addresses and CIDR blocks of the region's own address plan).
_GENERATED = re.compile(
    r"\b(?:[a-z]{2,6}-[0-9a-f]{8,17}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|"
    r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?:/\d{1,2})?)\b"
)
#: Terraform meta keys inside values that say nothing about the resource.
_META_KEYS = {"timeouts"}
_MAX_VALUE = 80


@dataclass
class Drift:
    """One drifted resource: where, what, and each changed attribute (``path: before -> after``)."""

    region: str
    address: str
    kind: str  # "deployed" (changed outside Terraform) or "cross-region" (differs from the other regions)
    attributes: list[str] = field(default_factory=list)
    #: ``(path, recorded, deployed)`` behind each of ``attributes`` (deployed drift only).
    changes: list[tuple[str, Any, Any]] = field(default_factory=list)

    def describe(self) -> str:
        return f"[{self.region}] {self.address} ({self.kind}): " + "; ".join(self.attributes)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 3] + "..."


def _describe_change(old: Any, new: Any) -> str:
    """``old -> new``; for two lists, what was added and removed (a rule added to twenty is the news)."""
    if isinstance(old, list) and isinstance(new, list) and old and new:
        added = [item for item in new if item not in old]
        removed = [item for item in old if item not in new]
        parts = [f"added {_short(item)}" for item in added] + [f"removed {_short(item)}" for item in removed]
        if parts:
            return "; ".join(parts)
    return f"{_short(old)} -> {_short(new)}"


def changed_attributes(before: Any, after: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """``(path, before, after)`` of every leaf that differs; lists of equal length are compared element-wise."""
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        for key in sorted(set(before) | set(after)):
            if key in _META_KEYS:
                continue
            yield from changed_attributes(before.get(key), after.get(key), f"{path}.{key}" if path else str(key))
    elif isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        for index, (old, new) in enumerate(zip(before, after, strict=True)):
            yield from changed_attributes(old, new, f"{path}[{index}]")
    elif before != after and not (_empty(before) and _empty(after)):
        yield path, before, after


def _empty(value: Any) -> bool:
    return value is None or value == [] or value == {} or value == ""


#: Attributes a resource reports that a companion resource also manages: a change made through the companion (the
#: bucket's versioning suspended) shows on both, and is reported once, on the companion. Anything the companion does
#: not show (a security group rule or an inline policy added outside Terraform, which has no companion in the state)
#: stays on the parent. ``tap deploy`` and ``tap local up`` record the settled state right after applying
#: (``apply -refresh-only``), so a parent's recorded value already holds what its companions set.
COMPANIONS: Mapping[str, Mapping[str, str]] = {
    "aws_s3_bucket": {
        "versioning": "aws_s3_bucket_versioning",
        "server_side_encryption_configuration": "aws_s3_bucket_server_side_encryption_configuration",
        "lifecycle_rule": "aws_s3_bucket_lifecycle_configuration",
        "policy": "aws_s3_bucket_policy",
        "logging": "aws_s3_bucket_logging",
        "object_lock_configuration": "aws_s3_bucket_object_lock_configuration",
        "replication_configuration": "aws_s3_bucket_replication_configuration",
    },
    "aws_iam_role": {"inline_policy": "aws_iam_role_policy", "managed_policy_arns": "aws_iam_role_policy_attachment"},
    "aws_security_group": {
        "ingress": "aws_vpc_security_group_ingress_rule",
        "egress": "aws_vpc_security_group_egress_rule",
    },
    "aws_sqs_queue": {"policy": "aws_sqs_queue_policy", "redrive_allow_policy": "aws_sqs_queue_redrive_allow_policy"},
}


def _resource_type(address: str) -> str:
    parts = address.split(".")
    return parts[-2] if len(parts) >= 2 else ""


def fold_companions(drifts: list[Drift]) -> list[Drift]:
    """Each parent attribute whose companion resource drifted too (same region, same kind) is left to the companion;
    a parent left with nothing is dropped."""
    drifted = {(d.region, d.kind, _resource_type(d.address)) for d in drifts}
    folded = []
    for drift in drifts:
        companions = COMPANIONS.get(_resource_type(drift.address), {})

        def told_by_companion(line: str, drift: Drift = drift, companions: Mapping[str, str] = companions) -> bool:
            attribute = re.split(r"[.\[:]", line, maxsplit=1)[0]
            companion = companions.get(attribute)
            return companion is not None and (drift.region, drift.kind, companion) in drifted

        keep = [i for i, line in enumerate(drift.attributes) if not told_by_companion(line)]
        if not keep:
            continue
        changes = [drift.changes[i] for i in keep] if drift.changes else []
        folded.append(Drift(drift.region, drift.address, drift.kind, [drift.attributes[i] for i in keep], changes))
    return folded


def deployed_drift(region: str, plan: Mapping[str, Any]) -> list[Drift]:
    """The drifted resources of a refresh-only plan (``resource_drift``), each with its changed attributes."""
    found = []
    for entry in plan.get("resource_drift", []):
        if entry.get("mode") != "managed":
            continue
        change = entry.get("change", {})
        if change.get("after") is None:
            found.append(Drift(region, entry["address"], "deployed", ["deleted outside Terraform"]))
            continue
        changes = list(changed_attributes(change.get("before") or {}, change.get("after") or {}))
        if changes:
            lines = [f"{path}: {_describe_change(old, new)}" for path, old, new in changes]
            found.append(Drift(region, entry["address"], "deployed", lines, changes))
    return fold_companions(found)


def _state_types(plan: Mapping[str, Any]) -> set[str]:
    """Resource types the stack manages: the refreshed state's, and those of drifted resources (a companion deleted
    outside Terraform is gone from the refreshed state, yet it still owns its attribute: it is reported itself)."""
    module = plan.get("prior_state", {}).get("values", {}).get("root_module", {})
    drifted = {e["type"] for e in plan.get("resource_drift", []) if e.get("mode") == "managed"}
    return {r["type"] for r in module.get("resources", [])} | drifted


def _state_resources(plan: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Managed resources of the refreshed state in a plan: ``{address: values}``."""
    module = plan.get("prior_state", {}).get("values", {}).get("root_module", {})
    return {r["address"]: r.get("values") or {} for r in module.get("resources", []) if r.get("mode") == "managed"}


def _comparable(values: Any, region: str, account: str | None) -> Any:
    """``values`` with identifiers left out and the region (and account) replaced by placeholders."""
    if isinstance(values, Mapping):
        return {k: _comparable(v, region, account) for k, v in values.items() if not _UNIQUE_ATTRIBUTE.search(k)
                and k not in _META_KEYS}  # fmt: skip
    if isinstance(values, list):
        return [_comparable(v, region, account) for v in values]
    if isinstance(values, str):
        text = values.replace(region, "<region>").replace(region.replace("-", "_"), "<region>")
        text = text.replace(account, "<account>") if account else text
        return _GENERATED.sub("<generated>", text)
    return values


#: Resources whose number follows a region's ``az_count`` (which may differ between regions by design).
AZ_DEPENDENT_TYPES = frozenset({"aws_subnet", "aws_route_table_association"})


def cross_region_drift(
    states: Mapping[str, Mapping[str, dict[str, Any]]], account: str | None = None, *, az_counts_differ: bool = False
) -> list[Drift]:
    """Resources and attributes in which a region differs from the others (the majority; both, with two).

    With ``az_counts_differ`` (the configuration gives regions different ``az_count``), subnets, their route table
    associations and every attribute listing subnets are left out, as ``tap check`` allows them to differ.
    """
    if len(states) < 2:
        return []
    found: list[Drift] = []
    addresses = set().union(*(set(resources) for resources in states.values()))
    if az_counts_differ:
        addresses = {a for a in addresses if _resource_type(a) not in AZ_DEPENDENT_TYPES}
    for address in sorted(addresses):
        holders = [region for region, resources in states.items() if address in resources]
        for region in states:
            if region not in holders:
                found.append(Drift(region, address, "cross-region", [f"missing here, present in {', '.join(holders)}"]))
        if len(holders) < 2:
            continue
        leaves: dict[str, dict[str, Any]] = {}
        for region in holders:
            normalised = _comparable(states[region][address], region, account)
            leaves[region] = {path: new for path, _, new in changed_attributes({}, normalised)}
        per_region: dict[str, list[str]] = {}
        for path in sorted(set().union(*(set(v) for v in leaves.values()))):
            if az_counts_differ and "subnet" in path:
                continue
            values = {region: leaves[region].get(path) for region in holders}
            counts = Counter(repr(v) for v in values.values())
            if len(counts) == 1:
                continue
            common, frequency = counts.most_common(1)[0]
            unanimous_majority = frequency > len(holders) / 2
            for region, value in values.items():
                if unanimous_majority and repr(value) == common:
                    continue
                others = {r: v for r, v in values.items() if r != region}
                described = ", ".join(f"{r}={_short(v)}" for r, v in others.items())
                per_region.setdefault(region, []).append(f"{path}: {_short(value)} here, {described}")
        found += [Drift(region, address, "cross-region", lines) for region, lines in per_region.items()]
    return fold_companions(found)


@dataclass
class DriftReport:
    """Everything ``tap drift`` found."""

    runs: list[RegionRun]
    drifts: list[Drift]

    @property
    def failed(self) -> bool:
        return any(run.failed for run in self.runs)

    def resources(self, region: str) -> set[str]:
        """The distinct drifted resources of ``region`` (deployed and cross-region)."""
        return {d.address for d in self.drifts if d.region == region}


def detect_drift(
    deployment: Deployment,
    out: Callable[[str], None] = print,
    accepted: Callable[[str, Drift], Drift | None] | None = None,
) -> DriftReport:
    """Refresh-only plans of every region in parallel, then the cross-region comparison of their states.

    ``accepted(region, drift)`` may narrow a deployed drift (the local emulator's own normalisations, see
    :mod:`analytics_platform.ops.emulator`); it returns None when nothing real is left.
    """
    runner = deployment.runner()
    plans: dict[str, dict[str, Any]] = {}

    def action(region: str, run: RegionRun) -> None:
        stack = deployment.stack_dir(region)
        log = f"drift-{region}"
        runner.init(stack, log, deployment.backend_file(region))
        runner.plan(stack, log, plan_file=DRIFT_PLAN, mode="refresh-only")
        plan = runner.show_plan(stack, DRIFT_PLAN)
        if not _state_resources(plan) and not plan.get("resource_drift"):
            raise RuntimeError("the state holds no resources: this region is not deployed (or its state is lost)")
        plans[region] = plan
        run.result = "refreshed"

    runs = run_regions(deployment, action, verb="refreshing", out=out)
    drifts: list[Drift] = []
    for region in deployment.regions:
        if region not in plans:
            continue
        for drift in deployed_drift(region, plans[region]):
            kept = accepted(region, drift) if accepted else drift
            if kept is not None:
                drifts.append(kept)
    states = {region: _state_resources(plan) for region, plan in plans.items()}
    az_counts = {deployment.config.region(region).az_count for region in states}
    drifts += cross_region_drift(states, az_counts_differ=len(az_counts) > 1)
    for run in runs:
        run.changed = len({d.address for d in drifts if d.region == run.region})
        if not run.failed:
            run.result = "drifted" if run.changed else "in sync"
    return DriftReport(runs, drifts)


def publish_drift(deployment: Deployment, report: DriftReport) -> list[str]:
    """Write each region's drifted-resource count to that region's CloudWatch (its drift alarm's metric); returns
    the regions that could not be written, each with why (the others are written all the same)."""
    failures = []
    for run in report.runs:
        if run.failed:
            continue
        stack = stack_id(run.region, deployment.config.environment_suffix)
        try:
            deployment.client("cloudwatch", run.region).put_metric_data(
                Namespace=DRIFT_NAMESPACE,
                MetricData=[{"MetricName": DRIFT_METRIC, "Dimensions": [{"Name": "Stack", "Value": stack}],
                             "Value": float(len(report.resources(run.region))), "Unit": "Count"}],
            )  # fmt: skip
        except Exception as error:  # one region's CloudWatch failing never stops the next region's
            failures.append(f"[{run.region}] ConfigurationDrift not published: {type(error).__name__}: {error}")
    return failures
