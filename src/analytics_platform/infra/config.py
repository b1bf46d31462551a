"""Typed platform configuration, validated in one place before anything is synthesized.

The configuration flows one way: :func:`load_config` reads defaults, an optional JSON or TOML file and the
``ENVIRONMENT_SUFFIX`` environment variable, validates everything, and returns a frozen
:class:`PlatformConfig`. Stacks and constructs only ever receive these frozen objects.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

#: Commercial AWS regions the platform may be deployed to.
KNOWN_REGIONS: frozenset[str] = frozenset(
    {
        "us-east-1", "us-east-2", "us-west-1", "us-west-2",
        "ca-central-1", "ca-west-1", "mx-central-1", "sa-east-1",
        "eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "eu-central-2",
        "eu-north-1", "eu-south-1", "eu-south-2",
        "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4", "ap-southeast-5",
        "ap-southeast-7", "ap-south-1", "ap-south-2", "ap-northeast-1", "ap-northeast-2",
        "ap-northeast-3", "ap-east-1", "me-south-1", "me-central-1", "il-central-1", "af-south-1",
    }
)  # fmt: skip

#: The three regions and CIDR blocks of the primary specification.
DEFAULT_REGIONS: tuple[tuple[str, str], ...] = (
    ("us-east-1", "10.0.0.0/16"),
    ("eu-west-1", "10.1.0.0/16"),
    ("ap-southeast-1", "10.2.0.0/16"),
)

#: AWS name-length limits the generated names are checked against.
NAME_LIMITS: Mapping[str, int] = {
    "bucket": 63,
    "state_bucket": 63,
    "function": 64,
    "role": 64,
    "flow_log_role": 64,
    "queue": 80,
    "dlq": 80,
    "table": 255,
    "lock_table": 255,
    "log_group": 512,
    "flow_log_group": 512,
    "rule": 64,
    "topic": 256,
    "dashboard": 255,
    "alarm_error_rate": 255,
}

SUFFIX_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
TAG_VALUE_PATTERN = re.compile(r"^[\w .:/=+\-@]{1,256}$")
ARCHITECTURES = ("x86_64", "arm64")
BACKENDS = ("local", "s3")


class ConfigError(ValueError):
    """A configuration value is invalid; ``field`` names the offending setting."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"invalid configuration: {field_name}: {message}")
        self.field = field_name


@dataclass(frozen=True)
class RegionConfig:
    """One region of the platform.

    ``region`` is the AWS region code; ``vpc_cidr`` the VPC's IPv4 block (must not overlap any other
    region's); ``az_count`` the number of private subnets / availability zones (by default 2).
    """

    region: str
    vpc_cidr: str
    az_count: int = 2


@dataclass(frozen=True)
class ResourceNames:
    """Every physical resource name of one region, following ``{resource-type}-{region}-{suffix}``."""

    bucket: str
    function: str
    role: str
    flow_log_role: str
    table: str
    queue: str
    dlq: str
    rule: str
    topic: str
    dashboard: str
    log_group: str
    flow_log_group: str
    vpc: str
    alarm_error_rate: str
    alarm_dlq: str
    alarm_age: str
    kms_alias: str
    state_bucket: str
    lock_table: str

    @classmethod
    def build(cls, region: str, suffix: str) -> ResourceNames:
        """Derive all names for ``region`` and environment ``suffix``."""

        def name(kind: str) -> str:
            return f"analytics-{kind}-{region}-{suffix}"

        function = name("etl")
        return cls(
            bucket=name("bucket"),
            function=function,
            role=name("etl-role"),
            flow_log_role=name("flowlogs-role"),
            table=name("jobs"),
            queue=name("queue"),
            dlq=name("dlq"),
            rule=name("upload-rule"),
            topic=name("alarms"),
            dashboard=name("monitoring"),
            log_group=f"/aws/lambda/{function}",
            flow_log_group=f"/aws/vpc/{name('flowlogs')}",
            vpc=name("vpc"),
            alarm_error_rate=name("etl-error-rate"),
            alarm_dlq=name("dlq-not-empty"),
            alarm_age=name("queue-oldest-message"),
            kms_alias=f"alias/{name('alarms')}",
            state_bucket=name("tfstate"),
            lock_table=name("tflock"),
        )


@dataclass(frozen=True)
class PlatformConfig:
    """The whole platform: every region plus the settings shared by all of them.

    Every field has a default matching the specification; see ``docs/configuration.md``.
    """

    regions: tuple[RegionConfig, ...] = tuple(RegionConfig(r, c) for r, c in DEFAULT_REGIONS)
    environment_suffix: str = "dev"
    environment: str = "dev"
    cost_center: str = "analytics"
    extra_tags: Mapping[str, str] = field(default_factory=dict)
    lambda_architecture: str = "x86_64"
    lambda_memory_mb: int = 1024
    lambda_timeout_seconds: int = 240
    lambda_reserved_concurrency: int = 10
    lambda_batch_size: int = 5
    ephemeral_storage_mb: int = 10240
    max_object_mb: int = 4096
    max_reject_ratio: float = 0.1
    queue_visibility_timeout_seconds: int = 300
    max_receive_count: int = 3
    dlq_retention_seconds: int = 14 * 24 * 3600
    glacier_transition_days: int = 90
    log_retention_days: int = 30
    error_rate_threshold_percent: float = 5.0
    oldest_message_alarm_seconds: int = 900
    backend: str = "local"
    state_dir: str = "terraform-state"
    local_endpoint: str | None = None

    def names(self, region: str) -> ResourceNames:
        """All resource names of ``region``."""
        return ResourceNames.build(region, self.environment_suffix)

    def tags(self, region: str) -> dict[str, str]:
        """The required tags (Environment, Region, CostCenter, ManagedBy) plus ``extra_tags``."""
        return {
            **dict(self.extra_tags),
            "Environment": self.environment,
            "Region": region,
            "CostCenter": self.cost_center,
            "ManagedBy": "cdktf",
            "EnvironmentSuffix": self.environment_suffix,
        }

    def region(self, name: str) -> RegionConfig:
        """The :class:`RegionConfig` called ``name``."""
        for region in self.regions:
            if region.region == name:
                return region
        raise ConfigError("regions", f"region {name!r} is not configured")


REQUIRED_TAGS: tuple[str, ...] = ("Environment", "Region", "CostCenter", "ManagedBy")


def _require(condition: bool, field_name: str, message: str) -> None:
    if not condition:
        raise ConfigError(field_name, message)


def _validate_int(config: PlatformConfig, name: str, low: int, high: int) -> None:
    value = getattr(config, name)
    _require(
        isinstance(value, int) and not isinstance(value, bool) and low <= value <= high,
        name,
        f"must be an integer from {low} to {high}, got {value!r}",
    )


def _validate_regions(regions: tuple[RegionConfig, ...]) -> None:
    _require(len(regions) > 0, "regions", "at least one region is required")
    seen: dict[str, int] = {}
    networks: list[tuple[str, ipaddress.IPv4Network]] = []
    for index, region in enumerate(regions):
        where = f"regions[{index}]"
        _require(
            region.region in KNOWN_REGIONS,
            f"{where}.region",
            f"unknown AWS region {region.region!r}",
        )
        _require(
            region.region not in seen,
            f"{where}.region",
            f"duplicate region {region.region!r} (also regions[{seen.get(region.region)}])",
        )
        seen[region.region] = index
        try:
            network = ipaddress.IPv4Network(region.vpc_cidr, strict=True)
        except (ValueError, TypeError) as error:
            raise ConfigError(f"{where}.vpc_cidr", f"not a valid IPv4 CIDR block: {error}") from error
        _require(
            16 <= network.prefixlen <= 24,
            f"{where}.vpc_cidr",
            f"prefix length must be /16 to /24 (VPC limits), got /{network.prefixlen}",
        )
        _require(network.is_private, f"{where}.vpc_cidr", f"{network} is not a private range (RFC 1918)")
        _require(
            isinstance(region.az_count, int) and 2 <= region.az_count <= 4,
            f"{where}.az_count",
            "must be 2 to 4",
        )
        for other_region, other in networks:
            _require(
                not network.overlaps(other),
                f"{where}.vpc_cidr",
                f"{network} overlaps {other} of {other_region}",
            )
        networks.append((region.region, network))


def validate(config: PlatformConfig) -> PlatformConfig:
    """Check every field; raise :class:`ConfigError` naming the first offending one."""
    _validate_regions(config.regions)
    suffix = config.environment_suffix
    _require(
        isinstance(suffix, str) and bool(SUFFIX_PATTERN.match(suffix)),
        "environment_suffix",
        f"must match [a-z0-9-] (lowercase letters, digits, inner hyphens), got {suffix!r}",
    )
    for tag_field in ("environment", "cost_center"):
        value = getattr(config, tag_field)
        _require(
            isinstance(value, str) and bool(TAG_VALUE_PATTERN.match(value)),
            tag_field,
            f"must be a non-empty tag value, got {value!r}",
        )
    for key, value in dict(config.extra_tags).items():
        _require(
            bool(TAG_VALUE_PATTERN.match(str(key))) and bool(TAG_VALUE_PATTERN.match(str(value))),
            "extra_tags",
            f"invalid tag {key!r}={value!r}",
        )
    for region in config.regions:
        names = config.names(region.region)
        for kind, limit in NAME_LIMITS.items():
            value = getattr(names, kind)
            _require(
                len(value) <= limit,
                "environment_suffix",
                f"makes the {kind} name {value!r} {len(value)} characters long (AWS limit {limit})",
            )
    _require(
        config.lambda_architecture in ARCHITECTURES,
        "lambda_architecture",
        f"must be one of {', '.join(ARCHITECTURES)}",
    )
    _validate_int(config, "lambda_memory_mb", 128, 10240)
    _validate_int(config, "lambda_timeout_seconds", 10, 900)
    _validate_int(config, "lambda_reserved_concurrency", 1, 1000)
    _validate_int(config, "lambda_batch_size", 1, 10)
    _validate_int(config, "ephemeral_storage_mb", 512, 10240)
    _validate_int(config, "max_object_mb", 1, 10240)
    _validate_int(config, "queue_visibility_timeout_seconds", 10, 43200)
    _validate_int(config, "max_receive_count", 1, 1000)
    _validate_int(config, "dlq_retention_seconds", 60, 1209600)
    _validate_int(config, "glacier_transition_days", 1, 3650)
    _validate_int(config, "log_retention_days", 1, 3653)
    _validate_int(config, "oldest_message_alarm_seconds", 60, 1209600)
    _require(
        config.lambda_timeout_seconds <= config.queue_visibility_timeout_seconds,
        "lambda_timeout_seconds",
        "must not exceed queue_visibility_timeout_seconds, or messages are redelivered mid-run",
    )
    # The worker keeps the input, the Parquet output and DuckDB's spill files on /tmp at once.
    _require(
        config.max_object_mb * 2.5 <= config.ephemeral_storage_mb,
        "max_object_mb",
        f"needs 2.5x its size on /tmp; ephemeral_storage_mb {config.ephemeral_storage_mb} allows at most "
        f"{int(config.ephemeral_storage_mb / 2.5)}",
    )
    _require(
        isinstance(config.max_reject_ratio, int | float) and 0 <= config.max_reject_ratio < 1,
        "max_reject_ratio",
        "must be a number from 0 (no rejects allowed) to below 1",
    )
    _require(
        isinstance(config.error_rate_threshold_percent, int | float) and 0 < config.error_rate_threshold_percent <= 100,
        "error_rate_threshold_percent",
        "must be above 0 and at most 100",
    )
    _require(config.backend in BACKENDS, "backend", f"must be one of {', '.join(BACKENDS)}")
    _require(bool(config.state_dir), "state_dir", "must not be empty")
    if config.local_endpoint is not None:
        _require(
            bool(re.match(r"^https?://(127\.0\.0\.1|localhost)(:\d+)?$", config.local_endpoint)),
            "local_endpoint",
            "must be http://127.0.0.1:PORT or http://localhost:PORT",
        )
    return config


def _region_from_mapping(index: int, raw: Any) -> RegionConfig:
    if isinstance(raw, str):
        defaults = dict(DEFAULT_REGIONS)
        if raw not in defaults:
            raise ConfigError(f"regions[{index}].vpc_cidr", f"region {raw!r} has no default CIDR; give one")
        return RegionConfig(raw, defaults[raw])
    if not isinstance(raw, Mapping):
        raise ConfigError(f"regions[{index}]", "must be a region name or a table with region and vpc_cidr")
    unknown = set(raw) - {"region", "vpc_cidr", "az_count"}
    if unknown:
        raise ConfigError(f"regions[{index}].{sorted(unknown)[0]}", "unknown setting")
    for key in ("region", "vpc_cidr"):
        if key not in raw:
            raise ConfigError(f"regions[{index}].{key}", "is required")
    return RegionConfig(str(raw["region"]), str(raw["vpc_cidr"]), raw.get("az_count", 2))


def config_from_mapping(raw: Mapping[str, Any], base: PlatformConfig | None = None) -> PlatformConfig:
    """Build a config from a plain mapping (a parsed file); unknown keys are errors."""
    config = base or PlatformConfig()
    known = {f.name for f in fields(PlatformConfig)}
    changes: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            raise ConfigError(key, "unknown setting")
        if key == "regions":
            if not isinstance(value, list):
                raise ConfigError("regions", "must be a list")
            value = tuple(_region_from_mapping(i, item) for i, item in enumerate(value))
        elif key == "extra_tags":
            if not isinstance(value, Mapping):
                raise ConfigError("extra_tags", "must be a table of strings")
            value = dict(value)
        changes[key] = value
    return replace(config, **changes)


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a ``.json`` or ``.toml`` configuration file."""
    if not path.is_file():
        raise ConfigError("config", f"file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        data: Any = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        raise ConfigError("config", f"{path} is not valid {path.suffix.lstrip('.') or 'JSON'}: {error}") from error
    if not isinstance(data, dict):
        raise ConfigError("config", f"{path} must contain a table/object at the top level")
    return data


def load_config(
    path: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> PlatformConfig:
    """Defaults, then the file at ``path``, then ``ENVIRONMENT_SUFFIX``, then ``overrides``; validated."""
    env = os.environ if environ is None else environ
    config = PlatformConfig()
    if path is not None:
        config = config_from_mapping(read_config_file(Path(path)), config)
    if env.get("ENVIRONMENT_SUFFIX"):
        config = replace(config, environment_suffix=env["ENVIRONMENT_SUFFIX"])
    if overrides:
        config = config_from_mapping(overrides, config)
    return validate(config)
