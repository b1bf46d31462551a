"""Validation of the platform configuration: every rule in one place, each error naming its field.

The rules run in a fixed order (the errors are reported in it): the regions (:mod:`.region_validation`), names and
tags, the function and its queue, retention and alarms, the query principals, the alarm and query limits, the
dataset contracts, the rules across fields, then the deployment settings.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from analytics_platform.etl.contracts import DatasetContract, contracts_to_json
from analytics_platform.etl.settings import DISK_FACTOR, LEASE_MARGIN_SECONDS, Tunables, tunable_fields
from analytics_platform.infra.config_errors import ConfigError, collected_errors, raise_all, require
from analytics_platform.infra.names import NAME_LIMITS, ResourceNames
from analytics_platform.infra.platform_settings import declared
from analytics_platform.infra.query_access import principal_problems
from analytics_platform.infra.region_validation import KNOWN_REGIONS, validate_regions

if TYPE_CHECKING:
    from analytics_platform.infra.config_model import PlatformConfig

SUFFIX_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
TAG_VALUE_PATTERN = re.compile(r"^[\w .:/=+\-@]{1,256}$")
#: AWS account ids are 12 digits.
ACCOUNT_ID_PATTERN = re.compile(r"^[0-9]{12}$")
#: A plain e-mail address as SNS's email protocol takes it.
EMAIL_PATTERN = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
#: AWS's advice for a queue that triggers a function: visibility timeout at least 6x the function timeout.
VISIBILITY_TIMEOUT_FACTOR = 6
#: Length of an account id, used to check name lengths before the account is known.
ACCOUNT_ID_LENGTH = 12
#: Room for ``DATASET_CONTRACTS`` in the function's 4 KB environment (the other variables take about 1 KB).
MAX_CONTRACTS_BYTES = 2800


def _validate_declared(config: PlatformConfig) -> None:
    """Every setting declared with a range or choices (:mod:`.platform_settings`); an optional one (default None)
    only when set."""
    for definition in declared():
        meta, value = definition.metadata, getattr(config, definition.name)
        if value is None and definition.default is None:
            continue
        if definition.type in ("str", "str | None") and not meta["choices"] and not isinstance(value, str):
            require(False, definition.name, f"must be text, got {value!r}")
            continue
        if meta["minimum"] is not None:
            low, high = meta["minimum"], meta["maximum"]
            require(
                isinstance(value, int) and not isinstance(value, bool) and low <= value <= high,
                definition.name,
                f"must be an integer from {low} to {high}, got {value!r}",
            )
        elif meta["choices"]:
            known = meta["choices"]
            fits = value in known and type(value) is type(known[0])  # True is no log retention, "30" no number
            require(fits, definition.name, f"must be one of {', '.join(map(str, known))}, got {value!r}")


def _validate_worker(worker: Tunables) -> None:
    for definition in tunable_fields():
        value = getattr(worker, definition.name)
        low, high = definition.metadata["minimum"], definition.metadata["maximum"]
        kind = type(definition.default)
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        require(
            numeric and (kind is float or isinstance(value, int)) and low <= value <= high,
            definition.name,
            f"must be {'an integer' if kind is int else 'a number'} from {low} to {high}, got {value!r}",
        )


def _validate_contracts(config: PlatformConfig) -> None:
    """Contracts were parsed on loading; here: they fit the function's environment (Lambda's 4 KB limit)."""
    for name, contract in dict(config.datasets).items():
        require(isinstance(contract, DatasetContract), f"datasets.{name}", "must be a dataset contract table")
    size = len(contracts_to_json(config.datasets))
    require(
        size <= MAX_CONTRACTS_BYTES,
        "datasets",
        f"the contracts take {size} bytes as JSON; the function's environment (4 KB for all variables) leaves "
        f"{MAX_CONTRACTS_BYTES} for them",
    )


def validate(config: PlatformConfig) -> PlatformConfig:
    """Check every field; raise :class:`ConfigError` naming the offending one, or :class:`ConfigErrors` naming
    every offending one."""
    errors: list[ConfigError] = []
    token = collected_errors.set(errors)
    try:
        for group in _groups():  # each group is checked even when an earlier one had to stop
            try:
                group(config)
            except ConfigError as error:  # a rule that cannot go on (an unparsable CIDR block)
                errors.append(error)
            except (TypeError, ValueError):  # a rule comparing a value of the wrong type, already reported
                if not errors:
                    raise
    finally:
        collected_errors.reset(token)
    raise_all(errors)
    return config


def _groups() -> tuple[Callable[[PlatformConfig], object], ...]:
    """The groups of rules, in the order their errors are reported."""
    return (
        lambda config: validate_regions(config.regions), _validate_names_and_tags, _validate_declared,
        _validate_function_and_queue, _validate_retention_and_alarms, _validate_principals, _validate_contracts,
        _validate_across_fields, _validate_deployment_settings,
    )  # fmt: skip


def _validate_names_and_tags(config: PlatformConfig) -> None:
    """The suffix, the tag values, the account id, and every resource name within AWS's length limits."""
    suffix = config.environment_suffix
    require(
        isinstance(suffix, str) and bool(SUFFIX_PATTERN.fullmatch(suffix)),
        "environment_suffix",
        f"must match [a-z0-9-] (lowercase letters, digits, inner hyphens), got {suffix!r}",
    )
    for tag_field in ("environment", "cost_center"):
        value = getattr(config, tag_field)
        require(
            isinstance(value, str) and bool(TAG_VALUE_PATTERN.match(value)),
            tag_field,
            f"must be a non-empty tag value, got {value!r}",
        )
    for key, value in dict(config.extra_tags).items():
        require(
            bool(TAG_VALUE_PATTERN.match(str(key))) and bool(TAG_VALUE_PATTERN.match(str(value))),
            "extra_tags",
            f"invalid tag {key!r}={value!r}",
        )
    account = config.account_id
    require(
        account is None or (isinstance(account, str) and bool(ACCOUNT_ID_PATTERN.fullmatch(account))),
        "account_id",
        f"must be a 12-digit AWS account id (as a string), got {account!r}",
    )
    for region in config.regions:
        # Before the account is known, lengths are checked with a 12-digit stand-in (every account id has 12).
        names = ResourceNames.build(region.region, suffix, account or "0" * ACCOUNT_ID_LENGTH)
        for kind, limit in NAME_LIMITS.items():
            value = getattr(names, kind)
            require(
                len(value) <= limit,
                "environment_suffix",
                f"makes the {kind} name {value!r} {len(value)} characters long (AWS limit {limit})",
            )


def _validate_function_and_queue(config: PlatformConfig) -> None:
    """The function's architecture, sizes and concurrency, the queue trigger's, and the worker's tunables."""
    if isinstance(config.queue_maximum_concurrency, int):
        require(
            config.queue_maximum_concurrency <= config.lambda_reserved_concurrency,
            "queue_maximum_concurrency",
            f"{config.queue_maximum_concurrency} is above lambda_reserved_concurrency "
            f"{config.lambda_reserved_concurrency}: the trigger would invoke more copies than the reservation allows "
            "and the throttled messages would count towards the dead-letter queue",
        )
    _validate_worker(config.worker)


def _validate_retention_and_alarms(config: PlatformConfig) -> None:
    """How long messages, archives, old versions and logs stay; deletion protection; the alarm addresses."""
    require(isinstance(config.deletion_protection, bool), "deletion_protection", "must be true or false")
    require(isinstance(config.alarm_emails, tuple), "alarm_emails", "must be a list of e-mail addresses")
    for index, email in enumerate(config.alarm_emails):
        require(
            isinstance(email, str) and bool(EMAIL_PATTERN.fullmatch(email)),
            f"alarm_emails[{index}]",
            f"{email!r} is not an e-mail address",
        )
    require(len(set(config.alarm_emails)) == len(config.alarm_emails), "alarm_emails", "lists an address twice")


def _validate_principals(config: PlatformConfig) -> None:
    """The roles and users the query role trusts: ARNs of the account, in no other region (query_access)."""
    require(isinstance(config.query_principals, tuple), "query_principals", "must be a list of IAM role or user ARNs")
    regions = [region.region for region in config.regions]
    for field_name, message in principal_problems(
        config.query_principals, account_id=config.account_id, regions=regions, known_regions=KNOWN_REGIONS
    ):
        require(False, field_name, message)


def _validate_across_fields(config: PlatformConfig) -> None:
    """Settings that must fit each other: the queue's visibility and the function's timeout, /tmp and file size."""
    # AWS advises a visibility timeout of at least 6x the function timeout for a queue that triggers a function
    # (retries of a throttled batch, the lease below). It also covers the job lease: a lease lasts until the
    # invocation's deadline plus a margin and must have run out when SQS makes the message visible again.
    minimum_visibility = max(
        VISIBILITY_TIMEOUT_FACTOR * config.lambda_timeout_seconds, config.lambda_timeout_seconds + LEASE_MARGIN_SECONDS
    )
    require(
        config.queue_visibility_timeout_seconds >= minimum_visibility,
        "queue_visibility_timeout_seconds",
        f"must be at least {VISIBILITY_TIMEOUT_FACTOR} x lambda_timeout_seconds ({config.lambda_timeout_seconds} s) = "
        f"{minimum_visibility}, got {config.queue_visibility_timeout_seconds}: AWS advises 6x the function timeout "
        f"for a queue that triggers a function, and a job's lease (timeout + {LEASE_MARGIN_SECONDS} s) must have "
        "run out when SQS shows its message again",
    )
    # The worker keeps the input, the Parquet output and DuckDB's spill files on /tmp at once.
    max_object_mb = config.worker.max_object_mb
    require(
        max_object_mb * DISK_FACTOR <= config.ephemeral_storage_mb,
        "max_object_mb",
        f"needs {DISK_FACTOR}x its size on /tmp; ephemeral_storage_mb {config.ephemeral_storage_mb} allows at most "
        f"{int(config.ephemeral_storage_mb / DISK_FACTOR)}",
    )


def _validate_deployment_settings(config: PlatformConfig) -> None:
    """The error-rate threshold, the backend, the encryption mode, the state folder and the local endpoint."""
    require(
        isinstance(config.error_rate_threshold_percent, int | float)
        and not isinstance(config.error_rate_threshold_percent, bool)
        and 0 < config.error_rate_threshold_percent <= 100,
        "error_rate_threshold_percent",
        "must be above 0 and at most 100",
    )
    require(bool(config.state_dir), "state_dir", "must not be empty")
    if config.local_endpoint is not None:
        require(
            bool(re.match(r"^https?://(127\.0\.0\.1|localhost)(:\d+)?$", config.local_endpoint)),
            "local_endpoint",
            "must be http://127.0.0.1:PORT or http://localhost:PORT",
        )
