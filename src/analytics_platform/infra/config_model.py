"""The typed configuration (:class:`PlatformConfig`, :class:`RegionConfig`) and how a configuration file or any
plain mapping maps onto it; :mod:`analytics_platform.infra.config` loads and validates it."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from analytics_platform.etl.contracts import ContractError, DatasetContract, parse_contracts
from analytics_platform.etl.settings import Tunables, tunable_fields
from analytics_platform.infra.config_errors import ConfigError, did_you_mean, raise_all
from analytics_platform.infra.names import ResourceNames

#: Tags every taggable resource carries (``tap check`` enforces them).
REQUIRED_TAGS: tuple[str, ...] = ("Environment", "Region", "CostCenter", "ManagedBy")

#: The three regions and CIDR blocks of the primary specification.
DEFAULT_REGIONS: tuple[tuple[str, str], ...] = (
    ("us-east-1", "10.0.0.0/16"),
    ("eu-west-1", "10.1.0.0/16"),
    ("ap-southeast-1", "10.2.0.0/16"),
)


@dataclass(frozen=True)
class RegionConfig:
    """One region of the platform.

    ``region`` is the AWS region code; ``vpc_cidr`` the VPC's IPv4 block (must not overlap any other
    region's); ``az_count`` the number of private subnets / availability zones (by default 2); ``az_ids`` pins
    the zones by zone id (``use1-az1``; ids name the same physical zone in every account, names do not): by
    default none, and the first ``az_count`` zones that need no opt-in (no Local or Wavelength Zones) are used.
    """

    region: str
    vpc_cidr: str
    az_count: int = 2
    az_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlatformConfig:
    """The whole platform: every region plus the settings shared by all of them.

    Every field has a default matching the specification (the README's configuration section). The worker's
    settings live in ``worker`` (:class:`~analytics_platform.etl.settings.Tunables`); in a configuration file they
    are top-level keys like every other setting.
    """

    regions: tuple[RegionConfig, ...] = tuple(RegionConfig(r, c) for r, c in DEFAULT_REGIONS)
    environment_suffix: str = "dev"
    environment: str = "dev"
    cost_center: str = "analytics"
    extra_tags: Mapping[str, str] = field(default_factory=dict)
    lambda_architecture: str = "x86_64"
    lambda_memory_mb: int = 1024
    #: 300 s / 6: AWS advises a queue visibility timeout of at least six times the function timeout.
    lambda_timeout_seconds: int = 50
    lambda_reserved_concurrency: int = 10
    #: The queue trigger's ``scaling_config.maximum_concurrency``; by default (``None``) the reserved concurrency
    #: less one (at least 2), the one left for the scheduled dead-letter sweep, so a burst waits in the queue
    #: instead of being throttled (and counted towards the DLQ).
    queue_maximum_concurrency: int | None = None
    lambda_batch_size: int = 5
    ephemeral_storage_mb: int = 10240
    queue_visibility_timeout_seconds: int = 300
    dead_letter_sweep_minutes: int = 5
    dlq_retention_seconds: int = 14 * 24 * 3600
    glacier_transition_days: int = 90
    #: Days a version stays once it is no longer current (replaced or deleted), after which it expires; expired
    #: delete markers are removed too.
    noncurrent_version_expiration_days: int = 90
    log_retention_days: int = 30
    #: The AWS account the environment belongs to (12 digits). By default (``None``) the caller's account: the
    #: commands read it from STS. When set, the provider refuses credentials of any other account
    #: (``allowed_account_ids``) and the commands check it before touching anything.
    account_id: str | None = None
    #: Addresses subscribed (by e-mail; each must confirm) to every region's alarm topic. By default none.
    alarm_emails: tuple[str, ...] = ()
    #: IAM roles and users (ARNs, of ``account_id``) each region's query role trusts outright, besides the account
    #: (whose administrators grant ``sts:AssumeRole`` on it). By default none.
    query_principals: tuple[str, ...] = ()
    #: Production protection: DynamoDB deletion protection on, no ``force_destroy`` on the data bucket, KMS keys
    #: wait 30 days before deletion (7 otherwise). Off by default (the specification wants everything destroyable).
    deletion_protection: bool = False
    #: ``"sse-s3"`` (the default: S3-managed keys for the bucket, AWS-owned keys elsewhere) or ``"kms"``: one
    #: customer-managed key per region for the bucket, the job table, the log groups, the topic and the queues.
    encryption: str = "sse-s3"
    error_rate_threshold_percent: float = 5.0
    oldest_message_alarm_seconds: int = 900
    athena_bytes_scanned_cutoff_mb: int = 10240
    athena_result_retention_days: int = 30
    datasets: Mapping[str, DatasetContract] = field(default_factory=dict)
    backend: str = "local"
    state_dir: str = "terraform-state"
    local_endpoint: str | None = None
    worker: Tunables = field(default_factory=Tunables)

    def names(self, region: str) -> ResourceNames:
        """All resource names of ``region``; globally unique ones (buckets) carry the account id, so
        :attr:`account_id` must be known (:func:`with_account`)."""
        if self.account_id is None:
            raise ConfigError(
                "account_id",
                "is not known: bucket names carry the account id (S3's namespace is global); set account_id in the "
                "environment's file or provide AWS credentials to read it",
            )
        return ResourceNames.build(region, self.environment_suffix, self.account_id)

    @property
    def maximum_concurrency(self) -> int:
        """The queue trigger's maximum concurrency (by default the reserved concurrency less the sweep's one)."""
        return self.queue_maximum_concurrency or max(2, self.lambda_reserved_concurrency - 1)

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


def _region_from_mapping(index: int, raw: Any) -> RegionConfig:
    if isinstance(raw, str):
        defaults = dict(DEFAULT_REGIONS)
        if raw not in defaults:
            raise ConfigError(f"regions[{index}].vpc_cidr", f"region {raw!r} has no default CIDR; give one")
        return RegionConfig(raw, defaults[raw])
    if not isinstance(raw, Mapping):
        raise ConfigError(f"regions[{index}]", "must be a region name or a table with region and vpc_cidr")
    unknown = set(raw) - {"region", "vpc_cidr", "az_count", "az_ids"}
    if unknown:
        raise ConfigError(f"regions[{index}].{sorted(unknown)[0]}", "unknown setting")
    for key in ("region", "vpc_cidr"):
        if key not in raw:
            raise ConfigError(f"regions[{index}].{key}", "is required")
    az_ids = raw.get("az_ids", [])
    if not isinstance(az_ids, list | tuple) or not all(isinstance(a, str) for a in az_ids):
        raise ConfigError(f"regions[{index}].az_ids", 'must be a list of zone ids such as "use1-az1"')
    az_count = raw.get("az_count", len(az_ids) if az_ids else 2)
    return RegionConfig(str(raw["region"]), str(raw["vpc_cidr"]), az_count, tuple(az_ids))


#: Settings holding a list, and what each lists.
LIST_FIELDS = {"alarm_emails": "e-mail addresses", "query_principals": "IAM role or user ARNs"}


def config_from_mapping(
    raw: Mapping[str, Any], base: PlatformConfig | None = None, *, source: str | None = None,
    collect: list[ConfigError] | None = None,
) -> PlatformConfig:  # fmt: skip
    """Build a config from a plain mapping (a parsed file, ``source``); unknown keys are errors. Every key is
    looked at: the errors of all of them are raised together (:func:`raise_all`), or with ``collect`` appended to
    it and the config built from the other keys."""
    config = base or PlatformConfig()
    known = {f.name for f in fields(PlatformConfig)} - {"worker"}
    worker_keys = {f.name for f in tunable_fields()}
    changes: dict[str, Any] = {}
    worker_changes: dict[str, Any] = {}
    errors: list[ConfigError] = []
    for key, value in raw.items():
        if key in worker_keys:
            worker_changes[key] = value
        elif key not in known:
            errors.append(ConfigError(key, f"unknown setting{did_you_mean(key, known | worker_keys)}", source))
        else:
            try:
                changes[key] = _setting(key, value)
            except ConfigError as error:
                errors.append(ConfigError(error.field, error.message, source))
    if collect is None:
        raise_all(errors)
    else:
        collect.extend(errors)
    if worker_changes:
        changes["worker"] = replace(config.worker, **worker_changes)
    return replace(config, **changes)


def _setting(key: str, value: Any) -> Any:
    """The typed value of one top-level setting as written in a file."""
    if key == "regions":
        if not isinstance(value, list):
            raise ConfigError("regions", "must be a list")
        return tuple(_region_from_mapping(i, item) for i, item in enumerate(value))
    if key == "datasets":
        try:
            return parse_contracts(value)
        except ContractError as error:
            raise ConfigError(error.field, error.message) from error
    if key in LIST_FIELDS:
        if not isinstance(value, list | tuple):
            raise ConfigError(key, f"must be a list of {LIST_FIELDS[key]}")
        return tuple(value)
    if key == "extra_tags":
        if not isinstance(value, Mapping):
            raise ConfigError("extra_tags", "must be a table of strings")
        return dict(value)
    return value


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a ``.json`` or ``.toml`` configuration file (YAML is refused by name)."""
    if not path.is_file():
        raise ConfigError("config", f"file {path} does not exist")
    if path.suffix.lower() in {".yaml", ".yml"}:
        raise ConfigError(
            "config", f"{path} is YAML, which tap does not read: write it as TOML (.toml) or JSON (.json)"
        )
    text = path.read_text(encoding="utf-8")
    try:
        data: Any = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        raise ConfigError("config", f"{path} is not valid {path.suffix.lstrip('.') or 'JSON'}: {error}") from error
    if not isinstance(data, dict):
        raise ConfigError("config", f"{path} must contain a table/object at the top level")
    return data
