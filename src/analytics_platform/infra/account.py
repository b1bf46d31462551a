"""Which AWS account an environment is deployed to: configured (``account_id``) or the caller's (STS).

Bucket names carry the account id (S3's namespace is shared by every account), so it must be known before
synth. On the local platform the account is the one the local endpoint plays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from analytics_platform.infra.config import ConfigError, PlatformConfig, with_account
from analytics_platform.infra.names import LOCAL_ACCOUNT_ID

#: Used by ``tap check`` alone when no account can be known (no ``account_id``, no credentials): every account
#: id has 12 digits, so names are checked at their real length. Never deployed: synth for deploy refuses instead.
CHECK_STAND_IN_ACCOUNT = "000000000000"


def caller_account(sts: Any) -> str:
    """The account of the credentials behind ``sts`` (``GetCallerIdentity`` needs no permission)."""
    return str(sts.get_caller_identity()["Account"])


def _default_sts(region: str) -> Any:
    import boto3
    from botocore.config import Config

    # Short timeouts: this runs before synth, and without credentials it must fail at once, not hang.
    config = Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 2})
    return boto3.client("sts", region_name=region, config=config)


def resolve_account(config: PlatformConfig, *, sts_factory: Callable[[str], Any] | None = None) -> PlatformConfig:
    """``config`` with its account id known: the local endpoint's for a local config; otherwise the caller's
    (which must equal ``account_id`` when that is set). Raises :class:`ConfigError` naming ``account_id`` when
    the credentials are missing or of another account."""
    if config.local_endpoint is not None:
        return _on_local_endpoint(config)
    from botocore.exceptions import BotoCoreError, ClientError

    first_region = config.regions[0].region
    try:
        account = caller_account((sts_factory or _default_sts)(first_region))
    except (BotoCoreError, ClientError) as error:
        if config.account_id is not None:
            return config  # known from the configuration; the provider checks the credentials on apply
        raise ConfigError(
            "account_id",
            f"is not set and the caller's account could not be read ({error}): bucket names carry the account id, so "
            "set account_id in the environment's file or provide AWS credentials",
        ) from error
    return with_account(config, account)


def account_for_check(
    config: PlatformConfig, *, sts_factory: Callable[[str], Any] | None = None
) -> tuple[PlatformConfig, str | None]:
    """For ``tap check``: the resolved config, or (when nothing tells the account) the config with a 12-digit
    stand-in and a note saying so."""
    if config.account_id is not None or config.local_endpoint is not None:
        return resolve_account_offline(config), None
    try:
        return resolve_account(config, sts_factory=sts_factory), None
    except ConfigError:
        note = (
            "account id unknown (no account_id, no AWS credentials): names are checked with the 12-digit stand-in "
            f"{CHECK_STAND_IN_ACCOUNT}"
        )
        return with_account(config, CHECK_STAND_IN_ACCOUNT), note


def resolve_account_offline(config: PlatformConfig) -> PlatformConfig:
    """``config`` when its account is known without asking AWS (configured, or the local endpoint's)."""
    if config.local_endpoint is not None:
        return _on_local_endpoint(config)
    return config


def _on_local_endpoint(config: PlatformConfig) -> PlatformConfig:
    """The local endpoint is an account of its own, whatever account the environment is for on AWS: the
    environment's query principals (of that account) do not exist there."""
    return with_account(replace(config, account_id=None, query_principals=()), LOCAL_ACCOUNT_ID)
