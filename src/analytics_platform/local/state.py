"""The local platform's files, typed and read in one place: where they live, its state and its outputs.

``state.json`` holds the running daemon and the RESOLVED configuration the stacks were applied with, so
``tap local down`` destroys exactly what is up even if the configuration file changed or vanished since.
``outputs.json`` holds the endpoint and each region's resource names (any S3 client can use it).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analytics_platform.etl.contracts import contracts_to_json

if TYPE_CHECKING:
    from analytics_platform.infra.config import PlatformConfig

HOME_VARIABLE = "TAP_LOCAL_HOME"


@dataclass(frozen=True)
class LocalPaths:
    """Files of the local platform under ``.tap/local`` (or ``$TAP_LOCAL_HOME``)."""

    root: Path

    @classmethod
    def default(cls) -> LocalPaths:
        """``$TAP_LOCAL_HOME`` or ``./.tap/local``."""
        return cls(Path(os.environ.get(HOME_VARIABLE, ".tap/local")).resolve())

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def outputs(self) -> Path:
        return self.root / "outputs.json"

    @property
    def runtime(self) -> Path:
        return self.root / "runtime"

    @property
    def synth(self) -> Path:
        return self.root / "cdktf.out"

    @property
    def journal(self) -> Path:
        return self.runtime / "invocations.jsonl"


def config_document(config: PlatformConfig) -> dict[str, Any]:
    """A configuration as the flat mapping a configuration file holds (worker settings at the top level)."""
    document = {f.name: getattr(config, f.name) for f in fields(config) if f.name != "worker"}
    document["regions"] = [{**asdict(region), "az_ids": list(region.az_ids)} for region in config.regions]
    document["alarm_emails"] = list(config.alarm_emails)
    document["query_principals"] = list(config.query_principals)
    document["extra_tags"] = dict(config.extra_tags)
    document["datasets"] = json.loads(contracts_to_json(config.datasets))  # the configuration file's form
    document.update(asdict(config.worker))
    return document


def config_from_document(document: dict[str, Any]) -> PlatformConfig:
    """The configuration :func:`config_document` wrote, validated again."""
    from analytics_platform.infra.config_model import config_from_mapping
    from analytics_platform.infra.validation import validate

    return validate(config_from_mapping(document))


@dataclass(frozen=True)
class LocalState:
    """The running platform: its daemon, endpoint, regions, fault rate and resolved configuration."""

    pid: int
    port: int
    endpoint: str
    regions: list[str]
    config: dict[str, Any]
    fault_rate: float = 0.0

    def platform_config(self) -> PlatformConfig:
        """The configuration the stacks were applied with."""
        return config_from_document(self.config)

    @property
    def environment_suffix(self) -> str:
        """The applied environment's suffix."""
        return str(self.config["environment_suffix"])


@dataclass(frozen=True)
class RegionOutputs:
    """One region's resource names, from its stack's Terraform outputs."""

    bucket_name: str
    table_name: str
    queue_url: str
    dlq_url: str
    function_name: str
    glue_database: str
    athena_workgroup: str
    #: The region's query role ("" in the outputs of a platform started before the stacks had one).
    query_role_arn: str = ""


@dataclass(frozen=True)
class LocalOutputs:
    """The endpoint and every region's names."""

    endpoint: str
    regions: dict[str, RegionOutputs] = field(default_factory=dict)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists."""
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def write_state(paths: LocalPaths, state: LocalState) -> None:
    """Persist the state."""
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.state.write_text(json.dumps(asdict(state), indent=2))


def read_state(paths: LocalPaths) -> LocalState | None:
    """The running platform's state, or None if nothing is up (or its daemon is gone)."""
    if not paths.state.exists():
        return None
    state = LocalState(**json.loads(paths.state.read_text()))
    return state if pid_alive(state.pid) else None


def write_outputs(paths: LocalPaths, outputs: LocalOutputs) -> None:
    """Persist the outputs."""
    paths.outputs.write_text(json.dumps(asdict(outputs), indent=2))


def read_outputs(paths: LocalPaths) -> LocalOutputs | None:
    """The outputs of the running platform, or None."""
    if not paths.outputs.exists():
        return None
    document = json.loads(paths.outputs.read_text())
    regions = {name: RegionOutputs(**values) for name, values in document["regions"].items()}
    return LocalOutputs(document["endpoint"], regions)
