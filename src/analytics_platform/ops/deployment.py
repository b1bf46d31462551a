"""What an operation acts on: one environment, some of its regions, their synthesized stacks and their state.

On AWS (the default) the configuration is the code's (``--env`` / ``--config``) and Terraform talks to AWS with the
caller's credentials. With ``--local`` it is the running local platform (``tap local up``):

* the environment the platform was started with is planned and checked against the configuration it was started
  with when neither ``--env`` nor ``--config`` is given; with either, the files are read again (so a deploy applies
  what they say now), always with its local state file;
* any other environment (``--env staging``) is deployed next to it on the same endpoint, with that environment's
  own backend: an S3 backend in the local endpoint's state bucket and lock table (``tap bootstrap --local``
  creates them) when its file says ``backend = "s3"``, else a state file of its own.

Nothing here imports cdktf; :meth:`Deployment.synthesize` does, when it runs.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import boto3

from analytics_platform.infra.account import resolve_account, resolve_account_offline
from analytics_platform.infra.config import ConfigError, PlatformConfig, load_config
from analytics_platform.infra.environments import environment_names
from analytics_platform.infra.names import stack_id
from analytics_platform.local.clients import local_client
from analytics_platform.local.state import LocalPaths, read_state
from analytics_platform.local.terraform import TerraformRunner

#: Where operations on AWS keep their synth output, plans and logs (under the working directory).
OPS_DIR = Path(".tap/ops")
#: Where the worker package is built (shared with ``tap local up``).
BUILD_DIR = Path(".tap/build")
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}


class OperationError(RuntimeError):
    """An operation cannot start (nothing is up, a region is unknown, state storage is missing...)."""


@dataclass(frozen=True)
class Deployment:
    """One environment's regional stacks as an operation sees them."""

    env: str
    config: PlatformConfig
    regions: tuple[str, ...]
    workdir: Path
    endpoint: str | None = None
    #: The environment ``tap local up`` runs (its stacks feed the local Lambda runtime).
    running: bool = False

    @property
    def local(self) -> bool:
        """Whether this is the local platform."""
        return self.endpoint is not None

    @property
    def synth_dir(self) -> Path:
        return self.workdir / "cdktf.out"

    def stack_dir(self, region: str) -> Path:
        """The synthesized stack folder of ``region``."""
        return self.synth_dir / "stacks" / stack_id(region, self.config.environment_suffix)

    def client(self, service: str, region: str) -> Any:
        """A boto3 client of ``service`` in exactly ``region`` (the local endpoint with ``--local``)."""
        if self.endpoint is not None:
            return local_client(service, region, self.endpoint)
        return boto3.client(service, region_name=region)

    def runner(self) -> TerraformRunner:
        """The Terraform runner (offline provider mirror; test credentials on the local endpoint)."""
        return TerraformRunner.create(self.workdir / "terraform", LOCAL_CREDENTIALS if self.local else None)

    def backend_file(self, region: str) -> Path | None:
        """The partial backend configuration pointing an S3 backend at the local endpoint (None on AWS or with a
        local backend): the stacks stay exactly what AWS gets, only ``init`` is told where S3 is."""
        if self.endpoint is None or self.config.backend != "s3":
            return None
        path = self.workdir / "backend" / f"{region}.hcl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            f'endpoints = {{\n  s3       = "{self.endpoint}"\n  dynamodb = "{self.endpoint}"\n'
            f'  sts      = "{self.endpoint}"\n}}\n'
            "use_path_style              = true\nskip_credentials_validation = true\n"
            "skip_requesting_account_id  = true\nskip_metadata_api_check     = true\n"
            'skip_region_validation      = true\naccess_key = "test"\nsecret_key = "test"\n'
        )
        return path

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold this environment's operation lock (a ``flock`` on its work folder) for one command: two commands on
        one environment from this checkout would share its synth output and saved plans. Terraform's own state lock
        (the DynamoDB lock table, or the local state's lock) guards the state itself, across machines too."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        with (self.workdir / ".lock").open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise OperationError(
                    f"another tap command is operating on {self.env} from this checkout ({self.workdir}); wait for it"
                ) from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def synthesize(self) -> None:
        """Synthesize every region's stack (all of them: a stack never depends on the others)."""
        from analytics_platform.infra.app import synth

        synth(self.config, outdir=self.synth_dir, build_dir=BUILD_DIR)


def _regions(config: PlatformConfig, wanted: Sequence[str] | None) -> tuple[str, ...]:
    for region in wanted or ():
        config.region(region)  # ConfigError naming the region when it is not configured
    chosen = [r.region for r in config.regions if not wanted or r.region in wanted]
    return tuple(chosen)


def _absolute_state(config: PlatformConfig, state_dir: Path) -> PlatformConfig:
    """A local backend's state folder made absolute (Terraform would resolve it inside the stack folder)."""
    return replace(config, state_dir=str(state_dir.resolve()))


def resolve_deployment(
    *,
    env: str | None,
    regions: Sequence[str] | None = None,
    local: bool = False,
    config_path: str | None = None,
    paths: LocalPaths | None = None,
) -> Deployment:
    """The environment and regions an operation acts on (see the module's docstring)."""
    if not local:
        named = environment_names()
        if env is None and named:
            # Without --env the defaults would be applied over dev's stacks and state (same suffix), reverting
            # whatever environments/dev.toml sets: an operation on AWS always names its environment.
            raise ConfigError("env", f"name the environment to act on: --env {' | '.join(named)}")
        # The caller's account, checked against account_id before anything is touched (names carry it).
        config = resolve_account(load_config(config_path, env_name=env))
        if config.backend == "local":
            config = _absolute_state(config, Path(config.state_dir))
        label = env or config.environment
        return Deployment(label, config, _regions(config, regions), (OPS_DIR / label).resolve())
    paths = paths or LocalPaths.default()
    state = read_state(paths)
    if state is None:
        raise OperationError("the local platform is not up: start it with 'tap local up' (or drop --local for AWS)")
    running_env = str(state.config.get("environment", ""))
    workdir = paths.root / "ops"
    if env is None or env == running_env:
        if config_path is None and env is None:
            config = state.platform_config()
        else:
            config = resolve_account_offline(load_config(
                config_path, env_name=env, local_endpoint=state.endpoint, backend="local",
                state_dir=str(state.config["state_dir"]),
            ))  # fmt: skip
        if config.environment_suffix != state.environment_suffix:
            raise ConfigError(
                "environment_suffix",
                f"is {config.environment_suffix!r}, but the running platform's is {state.environment_suffix!r}: "
                "another suffix is another environment (name it with --env)",
            )
        return Deployment(running_env, config, _regions(config, regions), workdir / running_env, state.endpoint, True)
    config = resolve_account_offline(load_config(config_path, env_name=env, local_endpoint=state.endpoint))
    if config.environment_suffix == state.environment_suffix:
        raise ConfigError("env", f"{env!r} has the running platform's suffix {config.environment_suffix!r}")
    if config.backend == "local":
        config = _absolute_state(config, workdir / env / "tfstate")
    return Deployment(env, config, _regions(config, regions), workdir / env, state.endpoint)
