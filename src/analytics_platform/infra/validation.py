"""Validation of the platform configuration: every rule in one place, each error naming its field."""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING

from analytics_platform.etl.contracts import DatasetContract, contracts_to_json
from analytics_platform.etl.settings import DISK_FACTOR, LEASE_MARGIN_SECONDS, Tunables, tunable_fields
from analytics_platform.infra.names import NAME_LIMITS, ResourceNames
from analytics_platform.infra.query_access import principal_problems

if TYPE_CHECKING:
    from analytics_platform.infra.config import PlatformConfig, RegionConfig

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

SUFFIX_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
TAG_VALUE_PATTERN = re.compile(r"^[\w .:/=+\-@]{1,256}$")
ARCHITECTURES = ("x86_64", "arm64")
BACKENDS = ("local", "s3")
ENCRYPTION_MODES = ("sse-s3", "kms")
#: The only values CloudWatch Logs accepts for a log group's retention (PutRetentionPolicy).
LOG_RETENTION_DAYS: tuple[int, ...] = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip
#: AWS account ids are 12 digits.
ACCOUNT_ID_PATTERN = re.compile(r"^[0-9]{12}$")
#: An availability zone id (``use1-az1``, ``euw1-az3``, ``apse1-az2``); Local Zone ids (``use1-bos1-az1``) do not match.
AZ_ID_PATTERN = re.compile(r"^[a-z]{2,5}[0-9]-az[0-9]{1,2}$")
#: How zone ids abbreviate a region's direction word (``ap-southeast-1`` zones are ``apse1-az1``, ...).
_ZONE_ID_WORDS = {"southeast": "se", "northeast": "ne", "central": "c", "east": "e", "west": "w", "north": "n",
                  "south": "s"}  # fmt: skip


def zone_id_prefix(region: str) -> str:
    """The prefix of ``region``'s zone ids: ``us-east-1`` -> ``use1``, ``ap-southeast-1`` -> ``apse1``."""
    country, word, number = region.split("-")
    return f"{country}{_ZONE_ID_WORDS.get(word, word)}{number}"


#: A plain e-mail address as SNS's email protocol takes it.
EMAIL_PATTERN = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
#: AWS's advice for a queue that triggers a function: visibility timeout at least 6x the function timeout.
VISIBILITY_TIMEOUT_FACTOR = 6
#: Length of an account id, used to check name lengths before the account is known.
ACCOUNT_ID_LENGTH = 12
#: Room for ``DATASET_CONTRACTS`` in the function's 4 KB environment (the other variables take about 1 KB).
MAX_CONTRACTS_BYTES = 2800


class ConfigError(ValueError):
    """A configuration value is invalid; ``field`` names the offending setting, ``source`` the file it came from
    (None: a default, the command line or the environment)."""

    def __init__(self, field_name: str, message: str, source: str | None = None) -> None:
        self.field, self.message, self.source = field_name, message, source
        where = f" in {source}" if source else ""
        super().__init__(f"invalid configuration{where}: {field_name}: {message}")

    @property
    def errors(self) -> list[ConfigError]:
        return [self]

    def located(self, sources: Mapping[str, str]) -> ConfigError:
        """This error with the file its top-level setting came from (``sources``: setting -> file)."""
        if self.source is not None:
            return self
        top = re.split(r"[.\[]", self.field, maxsplit=1)[0]
        return ConfigError(self.field, self.message, sources.get(top)) if top in sources else self


class ConfigErrors(ConfigError):
    """More than one configuration error, all reported at once; ``field`` is the first one's."""

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        first = errors[0]
        super().__init__(first.field, first.message, first.source)
        self._errors = list(errors)
        lines = "\n".join(f"  - {e.source + ': ' if e.source else ''}{e.field}: {e.message}" for e in self._errors)
        self.args = (f"invalid configuration, {len(self._errors)} errors:\n{lines}",)

    @property
    def errors(self) -> list[ConfigError]:
        return self._errors

    def __str__(self) -> str:
        return str(self.args[0])


def raise_all(errors: Sequence[ConfigError]) -> None:
    """Raise nothing, the one error, or :class:`ConfigErrors` (each listed once, in order)."""
    unique = list({str(e): e for error in errors for e in error.errors}.values())
    if len(unique) == 1:
        raise unique[0]
    if unique:
        raise ConfigErrors(unique)


#: The errors :func:`validate` collects while it runs (None outside: each rule raises at once).
_collected: ContextVar[list[ConfigError] | None] = ContextVar("config_errors", default=None)


def _require(condition: bool, field_name: str, message: str) -> None:
    if condition:
        return
    error = ConfigError(field_name, message)
    collected = _collected.get()
    if collected is None:
        raise error
    collected.append(error)


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """``; did you mean 'lambda_memory_mb'?`` when ``known`` has a close spelling of ``word``, else ``""``."""
    close = difflib.get_close_matches(word, sorted(known), n=1, cutoff=0.7)
    return f"; did you mean {close[0]!r}?" if close else ""


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
            _require(False, f"{where}.vpc_cidr", f"not a valid IPv4 CIDR block: {error}")
            continue
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
        if region.az_ids:
            for az_id in region.az_ids:
                _require(
                    isinstance(az_id, str) and bool(AZ_ID_PATTERN.fullmatch(az_id)),
                    f"{where}.az_ids",
                    f"{az_id!r} is not an availability zone id such as 'use1-az1' (Local Zones cannot host this stack)",
                )
            _require(len(set(region.az_ids)) == len(region.az_ids), f"{where}.az_ids", "lists a zone twice")
            prefix = zone_id_prefix(region.region)
            for az_id in region.az_ids:
                _require(
                    az_id.startswith(f"{prefix}-az"),
                    f"{where}.az_ids",
                    f"{az_id!r} is not a zone of {region.region} (its zone ids start with {prefix}-az)",
                )
            _require(
                len(region.az_ids) == region.az_count,
                f"{where}.az_ids",
                f"names {len(region.az_ids)} zone(s) but az_count is {region.az_count}",
            )
        for other_region, other in networks:
            _require(
                not network.overlaps(other),
                f"{where}.vpc_cidr",
                f"{network} overlaps {other} of {other_region}",
            )
        networks.append((region.region, network))


def _validate_worker(worker: Tunables) -> None:
    for definition in tunable_fields():
        value = getattr(worker, definition.name)
        low, high = definition.metadata["minimum"], definition.metadata["maximum"]
        kind = type(definition.default)
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        _require(
            numeric and (kind is float or isinstance(value, int)) and low <= value <= high,
            definition.name,
            f"must be {'an integer' if kind is int else 'a number'} from {low} to {high}, got {value!r}",
        )


def _validate_contracts(config: PlatformConfig) -> None:
    """Contracts were parsed on loading; here: they fit the function's environment (Lambda's 4 KB limit)."""
    for name, contract in dict(config.datasets).items():
        _require(isinstance(contract, DatasetContract), f"datasets.{name}", "must be a dataset contract table")
    size = len(contracts_to_json(config.datasets))
    _require(
        size <= MAX_CONTRACTS_BYTES,
        "datasets",
        f"the contracts take {size} bytes as JSON; the function's environment (4 KB for all variables) leaves "
        f"{MAX_CONTRACTS_BYTES} for them",
    )


def validate(config: PlatformConfig) -> PlatformConfig:
    """Check every field; raise :class:`ConfigError` naming the offending one, or :class:`ConfigErrors` naming
    every offending one."""
    errors: list[ConfigError] = []
    token = _collected.set(errors)
    try:
        _validate(config)
    except ConfigError as error:  # a rule that cannot go on (an unparsable CIDR block)
        errors.append(error)
    except (TypeError, ValueError):  # a rule comparing a value of the wrong type, already reported above
        if not errors:
            raise
    finally:
        _collected.reset(token)
    raise_all(errors)
    return config


def _validate(config: PlatformConfig) -> None:
    _validate_regions(config.regions)
    suffix = config.environment_suffix
    _require(
        isinstance(suffix, str) and bool(SUFFIX_PATTERN.fullmatch(suffix)),
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
    account = config.account_id
    _require(
        account is None or (isinstance(account, str) and bool(ACCOUNT_ID_PATTERN.fullmatch(account))),
        "account_id",
        f"must be a 12-digit AWS account id (as a string), got {account!r}",
    )
    for region in config.regions:
        # Before the account is known, lengths are checked with a 12-digit stand-in (every account id has 12).
        names = ResourceNames.build(region.region, suffix, account or "0" * ACCOUNT_ID_LENGTH)
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
    _validate_int(config, "lambda_timeout_seconds", 1, 900)
    # Two at least: the queue trigger's maximum concurrency (2 to 1000) must fit inside the reservation.
    _validate_int(config, "lambda_reserved_concurrency", 2, 1000)
    if config.queue_maximum_concurrency is not None:
        _validate_int(config, "queue_maximum_concurrency", 2, 1000)
        _require(
            config.queue_maximum_concurrency <= config.lambda_reserved_concurrency,
            "queue_maximum_concurrency",
            f"{config.queue_maximum_concurrency} is above lambda_reserved_concurrency "
            f"{config.lambda_reserved_concurrency}: the trigger would invoke more copies than the reservation allows "
            "and the throttled messages would count towards the dead-letter queue",
        )
    _validate_int(config, "lambda_batch_size", 1, 10)
    _validate_int(config, "ephemeral_storage_mb", 512, 10240)
    _validate_int(config, "queue_visibility_timeout_seconds", 10, 43200)
    _validate_int(config, "dead_letter_sweep_minutes", 1, 60)
    _validate_worker(config.worker)
    _validate_int(config, "dlq_retention_seconds", 60, 1209600)
    _validate_int(config, "glacier_transition_days", 1, 3650)
    _validate_int(config, "noncurrent_version_expiration_days", 1, 3650)
    retention = config.log_retention_days
    _require(
        isinstance(retention, int) and not isinstance(retention, bool) and retention in LOG_RETENTION_DAYS,
        "log_retention_days",
        f"must be one of the values CloudWatch Logs accepts ({', '.join(map(str, LOG_RETENTION_DAYS))}), "
        f"got {config.log_retention_days!r}",
    )
    _require(isinstance(config.deletion_protection, bool), "deletion_protection", "must be true or false")
    _require(isinstance(config.alarm_emails, tuple), "alarm_emails", "must be a list of e-mail addresses")
    for index, email in enumerate(config.alarm_emails):
        _require(
            isinstance(email, str) and bool(EMAIL_PATTERN.fullmatch(email)),
            f"alarm_emails[{index}]",
            f"{email!r} is not an e-mail address",
        )
    _require(len(set(config.alarm_emails)) == len(config.alarm_emails), "alarm_emails", "lists an address twice")
    _require(isinstance(config.query_principals, tuple), "query_principals", "must be a list of IAM role or user ARNs")
    regions = [region.region for region in config.regions]
    for field_name, message in principal_problems(
        config.query_principals, account_id=config.account_id, regions=regions, known_regions=KNOWN_REGIONS
    ):
        _require(False, field_name, message)
    _validate_int(config, "oldest_message_alarm_seconds", 60, 1209600)
    # Athena's per-query data limit starts at 10 MB.
    _validate_int(config, "athena_bytes_scanned_cutoff_mb", 10, 1024 * 1024 * 1024)
    _validate_int(config, "athena_result_retention_days", 1, 3650)
    _validate_contracts(config)
    # AWS advises a visibility timeout of at least 6x the function timeout for a queue that triggers a function
    # (retries of a throttled batch, the lease below). It also covers the job lease: a lease lasts until the
    # invocation's deadline plus a margin and must have run out when SQS makes the message visible again.
    minimum_visibility = max(
        VISIBILITY_TIMEOUT_FACTOR * config.lambda_timeout_seconds, config.lambda_timeout_seconds + LEASE_MARGIN_SECONDS
    )
    _require(
        config.queue_visibility_timeout_seconds >= minimum_visibility,
        "queue_visibility_timeout_seconds",
        f"must be at least {VISIBILITY_TIMEOUT_FACTOR} x lambda_timeout_seconds ({config.lambda_timeout_seconds} s) = "
        f"{minimum_visibility}, got {config.queue_visibility_timeout_seconds}: AWS advises 6x the function timeout "
        f"for a queue that triggers a function, and a job's lease (timeout + {LEASE_MARGIN_SECONDS} s) must have "
        "run out when SQS shows its message again",
    )
    # The worker keeps the input, the Parquet output and DuckDB's spill files on /tmp at once.
    max_object_mb = config.worker.max_object_mb
    _require(
        max_object_mb * DISK_FACTOR <= config.ephemeral_storage_mb,
        "max_object_mb",
        f"needs {DISK_FACTOR}x its size on /tmp; ephemeral_storage_mb {config.ephemeral_storage_mb} allows at most "
        f"{int(config.ephemeral_storage_mb / DISK_FACTOR)}",
    )
    _require(
        isinstance(config.error_rate_threshold_percent, int | float)
        and not isinstance(config.error_rate_threshold_percent, bool)
        and 0 < config.error_rate_threshold_percent <= 100,
        "error_rate_threshold_percent",
        "must be above 0 and at most 100",
    )
    _require(config.backend in BACKENDS, "backend", f"must be one of {', '.join(BACKENDS)}")
    _require(
        config.encryption in ENCRYPTION_MODES,
        "encryption",
        f"must be one of {', '.join(ENCRYPTION_MODES)}, got {config.encryption!r}",
    )
    _require(bool(config.state_dir), "state_dir", "must not be empty")
    if config.local_endpoint is not None:
        _require(
            bool(re.match(r"^https?://(127\.0\.0\.1|localhost)(:\d+)?$", config.local_endpoint)),
            "local_endpoint",
            "must be http://127.0.0.1:PORT or http://localhost:PORT",
        )
