"""The named environments: one ``environments/<name>.toml`` each, their defaults, and the suffixes they own."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from analytics_platform.infra.config_errors import ConfigError
from analytics_platform.infra.config_model import PlatformConfig, config_from_mapping, read_config_file

#: Where the named environments' files live (``<name>.toml``); ``TAP_ENVIRONMENTS_DIR`` moves it.
ENVIRONMENTS_VARIABLE = "TAP_ENVIRONMENTS_DIR"
ENVIRONMENT_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,15}$")


def environments_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$TAP_ENVIRONMENTS_DIR`` or ``./environments``."""
    env = os.environ if environ is None else environ
    return Path(env.get(ENVIRONMENTS_VARIABLE) or "environments")


def environment_names(environ: Mapping[str, str] | None = None) -> list[str]:
    """The named environments: one ``<name>.toml`` each."""
    folder = environments_dir(environ)
    return sorted(p.stem for p in folder.glob("*.toml") if p.is_file()) if folder.is_dir() else []


def environment_config(
    name: str, environ: Mapping[str, str] | None = None, collect: list[ConfigError] | None = None
) -> PlatformConfig:
    """Defaults, then ``environments/<name>.toml``; ``environment`` and ``environment_suffix`` default to the name.
    ``collect``: see :func:`config_from_mapping`."""
    if not ENVIRONMENT_NAME.fullmatch(name):
        raise ConfigError("env", f"{name!r} is not an environment name (lowercase letters, digits, '-'; 16 at most)")
    path = environments_dir(environ) / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(environment_names(environ)) or "none"
        raise ConfigError("env", f"no environment {name!r}: {path} does not exist (known: {known})")
    raw = read_config_file(path)
    return config_from_mapping({"environment": name, "environment_suffix": name, **raw}, PlatformConfig(),
                               source=str(path), collect=collect)  # fmt: skip


def isolation_findings(names: list[str], environ: Mapping[str, str] | None = None) -> list[str]:
    """Environments that would share state or resources: every name, stack, state key and lock carries the
    suffix, so two environments with one suffix would apply over each other."""
    owners: dict[str, list[str]] = {}
    for name in names:
        owners.setdefault(environment_config(name, environ).environment_suffix, []).append(name)
    return [
        f"environments {', '.join(envs)} share environment_suffix {suffix!r}: their state and resources would collide"
        for suffix, envs in sorted(owners.items())
        if len(envs) > 1
    ]
