"""Where the local emulator (moto) answers differently from AWS right after a clean apply, and only there.

``tap plan --local`` and ``tap drift --local`` leave out exactly these differences, each matched by resource
type, attribute and the emulator's own answer (so the same attribute changed any other way is still reported);
on AWS nothing is left out. Each was measured with a refresh-only and a normal plan right after ``tap local up``:

* security group rules (``aws_vpc_security_group_*_rule``): moto drops the rule's ``description`` and answers the
  referenced group as ``<account>/<group id>``;
* ``aws_cloudwatch_metric_alarm``: moto answers ``period = 0`` for metric-math queries that have none;
* ``aws_s3_bucket_server_side_encryption_configuration``: moto answers ``bucket_key_enabled = false`` where the
  stack sets nothing;
* ``aws_glue_catalog_database``: moto keeps no tags on a database (``tags_all`` comes back empty);
* ``aws_lambda_function``: moto answers no ``logging_config`` (AWS answers the default text format and group),
  and keeps no ``kms_key_arn`` (with ``encryption = "kms"``);
* ``aws_s3_bucket_notification``: moto answers ``eventbridge = false`` although it delivers to EventBridge;
* ``aws_sqs_queue``: moto answers ``redrive_policy`` as JSON with other whitespace (the same document).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from analytics_platform.ops.drift_compare import Drift, changed_attributes

_SG_RULE = r"aws_vpc_security_group_(egress|ingress)_rule"


def _same_json(configured: Any, emulated: Any) -> bool:
    try:
        return bool(json.loads(configured) == json.loads(emulated))
    except (TypeError, ValueError):
        return False


@dataclass(frozen=True)
class EmulatorDifference:
    """One known answer of the emulator: resource type and attribute path (regular expressions), and whether the
    emulator's value stands for the configured one."""

    resource_type: str
    attribute: str
    matches: Callable[[Any, Any], bool]  # (configured or recorded value, emulator's value)

    def covers(self, resource_type: str, path: str, configured: Any, emulated: Any) -> bool:
        return bool(
            re.fullmatch(self.resource_type, resource_type)
            and re.fullmatch(self.attribute, path)
            and self.matches(configured, emulated)
        )


KNOWN_DIFFERENCES: tuple[EmulatorDifference, ...] = (
    EmulatorDifference(_SG_RULE, "description", lambda configured, emulated: emulated is None),
    EmulatorDifference(
        _SG_RULE,
        "referenced_security_group_id",
        lambda configured, emulated: isinstance(emulated, str) and emulated.endswith(f"/{configured}"),
    ),
    EmulatorDifference(
        "aws_cloudwatch_metric_alarm", r"metric_query\[\d+\]\.period", lambda c, e: c in (None, 0) and e == 0
    ),
    EmulatorDifference(
        "aws_s3_bucket_server_side_encryption_configuration",
        r"rule\[\d+\]\.bucket_key_enabled",
        lambda configured, emulated: configured is None and emulated is False,
    ),
    EmulatorDifference("aws_glue_catalog_database", r"tags_all(\..+)?", lambda c, e: e in (None, {})),
    EmulatorDifference("aws_lambda_function", r"logging_config", lambda c, e: e in (None, [])),
    EmulatorDifference("aws_lambda_function", r"kms_key_arn", lambda c, e: bool(c) and e in (None, "")),
    EmulatorDifference("aws_s3_bucket_notification", "eventbridge", lambda c, e: c is True and e is False),
    EmulatorDifference("aws_sqs_queue", "redrive_policy", _same_json),
)


def emulator_only(resource_type: str, configured: Any, emulated: Any) -> bool:
    """Whether every difference between the configured (or recorded) values and the emulator's is a known one."""
    differences = list(changed_attributes(configured or {}, emulated or {}))
    return bool(differences) and all(
        any(known.covers(resource_type, path, old, new) for known in KNOWN_DIFFERENCES)
        for path, old, new in differences
    )


def emulator_filter(region: str, drift: Drift) -> Drift | None:
    """A deployed drift without the emulator's known answers (None when nothing else is left)."""
    if not drift.changes:  # a deleted resource, or a cross-region difference: never the emulator's
        return drift
    resource_type = drift.address.split(".")[-2] if "." in drift.address else ""
    kept = [
        (line, (path, old, new))
        for line, (path, old, new) in zip(drift.attributes, drift.changes, strict=True)
        if not any(known.covers(resource_type, path, old, new) for known in KNOWN_DIFFERENCES)
    ]
    if not kept:
        return None
    return Drift(drift.region, drift.address, drift.kind, [line for line, _ in kept], [change for _, change in kept])
