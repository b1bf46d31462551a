"""How a configuration file or any plain mapping maps onto the typed configuration (declared in
:mod:`.platform_settings`); :mod:`analytics_platform.infra.config` loads and validates it."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from analytics_platform.etl.contracts import ContractError, parse_contracts
from analytics_platform.etl.settings import tunable_fields
from analytics_platform.infra.config_errors import ConfigError, did_you_mean, raise_all
from analytics_platform.infra.platform_settings import DEFAULT_REGIONS, REQUIRED_TAGS, PlatformConfig, RegionConfig

__all__ = ["DEFAULT_REGIONS", "REQUIRED_TAGS", "PlatformConfig", "RegionConfig", "config_from_mapping",
           "read_config_file"]  # fmt: skip


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
    if path.is_dir():
        raise ConfigError("config", f"{path} is a folder, not a configuration file")
    if not path.is_file():
        raise ConfigError("config", f"file {path} does not exist")
    if path.suffix.lower() in {".yaml", ".yml"}:
        raise ConfigError(
            "config", f"{path} is YAML, which tap does not read: write it as TOML (.toml) or JSON (.json)"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError("config", f"{path} is not UTF-8 text: {error}") from error
    except OSError as error:
        raise ConfigError("config", f"{path} cannot be read: {error.strerror or error}") from error
    try:
        data: Any = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        raise ConfigError("config", f"{path} is not valid {path.suffix.lstrip('.') or 'JSON'}: {error}") from error
    if not isinstance(data, dict):
        raise ConfigError("config", f"{path} must contain a table/object at the top level")
    return data
