"""Typed platform configuration, validated in one place before anything is synthesized.

The configuration flows one way: :func:`load_config` reads defaults, an optional JSON or TOML file and the
``ENVIRONMENT_SUFFIX`` environment variable, validates everything, and returns a frozen
:class:`PlatformConfig`. Stacks and constructs only ever receive these frozen objects.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from analytics_platform.infra.config_errors import ConfigError, ConfigErrors, raise_all
from analytics_platform.infra.config_model import (
    REQUIRED_TAGS,
    PlatformConfig,
    RegionConfig,
    config_from_mapping,
    read_config_file,
)
from analytics_platform.infra.environments import environment_config, environments_dir
from analytics_platform.infra.validation import KNOWN_REGIONS, validate

__all__ = [
    "KNOWN_REGIONS",
    "REQUIRED_TAGS",
    "ConfigError",
    "ConfigErrors",
    "PlatformConfig",
    "RegionConfig",
    "load_config",
    "validate",
    "with_account",
]


def with_account(config: PlatformConfig, account_id: str) -> PlatformConfig:
    """``config`` for account ``account_id`` (validated); refuses another account than the configured one."""
    if config.account_id is not None and config.account_id != account_id:
        raise ConfigError(
            "account_id",
            f"environment {config.environment!r} belongs to account {config.account_id}, but the credentials are of "
            f"account {account_id}: use the environment's account's credentials",
        )
    return validate(replace(config, account_id=account_id))


def load_config(
    path: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    env_name: str | None = None,
    **overrides: Any,
) -> PlatformConfig:
    """Defaults, then ``environments/<env_name>.toml``, then the file at ``path``, then ``ENVIRONMENT_SUFFIX``,
    then ``overrides``; validated."""
    env = os.environ if environ is None else environ
    errors: list[ConfigError] = []  # every layer is read, and everything wrong in them reported at once
    config, env_read = PlatformConfig(), env_name is not None
    if env_name:
        try:
            config = environment_config(env_name, env, errors)
        except ConfigError as error:  # unreadable: the --config file's own errors are still reported with it
            errors += error.errors
            env_read = False
    #: Which file set each top-level setting: a validation error names it.
    sources: dict[str, str] = {}
    if env_name and env_read:
        env_file = str(environments_dir(env) / f"{env_name}.toml")
        sources.update(dict.fromkeys(read_config_file(Path(env_file)), env_file))
    if path is not None:
        try:
            raw = read_config_file(Path(path))
        except ConfigError as error:
            raise_all([*errors, error])
        config = config_from_mapping(raw, config, source=str(path), collect=errors)
        sources.update(dict.fromkeys(raw, str(path)))
    if env.get("ENVIRONMENT_SUFFIX"):
        config = replace(config, environment_suffix=env["ENVIRONMENT_SUFFIX"])
        sources["environment_suffix"] = "ENVIRONMENT_SUFFIX (environment variable)"
    if overrides:
        config = config_from_mapping(overrides, config)
        for key in overrides:
            sources.pop(key, None)
    if not env_read and env_name:
        # Without the environment's settings only the values the --config file itself sets are judged (a rule
        # between two settings could be about one the environment would set).
        try:
            validate(config)
        except ConfigError as error:
            errors += [e for e in (e.located(sources) for e in error.errors) if e.source == str(path)]
        raise_all(errors)
    if env_name and config.environment_suffix != (expected := environment_config(env_name, env, []).environment_suffix):
        errors.append(ConfigError(
            "environment_suffix",
            f"is {config.environment_suffix!r} but environment {env_name!r} owns suffix {expected!r}: another suffix "
            "would apply this environment's settings over another environment's state and resources (unset "
            "ENVIRONMENT_SUFFIX, or drop environment_suffix from --config)",
        ))  # fmt: skip
    try:
        validate(config)
    except ConfigError as error:
        errors += [e.located(sources) for e in error.errors]
    raise_all(errors)
    return config
