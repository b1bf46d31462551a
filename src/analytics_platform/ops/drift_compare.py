"""What ``tap drift`` reports, found in plain data: a refresh-only plan's drifted resources with their changed
attributes, and the attributes in which a region's refreshed state differs from the others' (the region's own name
and generated identifiers taken out). No Terraform run here: :mod:`.drift` runs the plans, and :mod:`.emulator`
narrows the differences with the local emulator's known answers."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

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
