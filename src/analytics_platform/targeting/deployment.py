"""What a command acts on: one environment, some of its regions, their clients, synthesized stacks and state.

This is the one resolver of "which environment, which regions, local or AWS": the Terraform commands (``plan``,
``deploy``, ``destroy``, ``drift``, ``preflight``, ``bootstrap``) use the :class:`Deployment` itself; the
region-bound commands (``jobs``, ``query``, ``datasets``, ``redrive``, ``jobs retry``, the console) resolve it with
``purpose="read"`` and take one region of it (:meth:`Deployment.target`).

On AWS (the default) the configuration is the code's (``--env`` / ``--config``) and Terraform talks to AWS with the
caller's credentials. With ``--local`` it is the running local platform (``tap local up``):

* the environment the platform was started with is planned and checked against the configuration it was started
  with when neither ``--env`` nor ``--config`` is given; with either, the files are read again (so a deploy applies
  what they say now), always with its local state file;
* any other environment (``--env staging``) is deployed next to it on the same endpoint, with that environment's
  own backend: an S3 backend in the local endpoint's state bucket and lock table (``tap bootstrap --local``
  creates them) when its file says ``backend = "s3"``, else a state file of its own.

A read (``purpose="read"``) on AWS may leave out ``--env`` (the configuration's own environment is read); with
``--local`` it reads the running environment as it was applied (its outputs), and refuses any other.

Nothing here imports cdktf; :meth:`Deployment.synthesize` does, when it runs.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import boto3

from analytics_platform.etl.arns import partition_of
from analytics_platform.infra.account import resolve_account, resolve_account_offline
from analytics_platform.infra.config import ConfigError, PlatformConfig, load_config
from analytics_platform.infra.environments import environment_names
from analytics_platform.infra.names import stack_id
from analytics_platform.local.clients import local_client
from analytics_platform.local.state import LocalOutputs, LocalPaths, LocalState, read_outputs, read_state
from analytics_platform.local.terraform import TerraformRunner
from analytics_platform.targeting.region_target import RegionTarget, TargetError, target_from_outputs

#: Where operations on AWS keep their synth output, plans and logs (under the working directory).
OPS_DIR = Path(".tap/ops")
#: Where the worker package is built (shared with ``tap local up``).
BUILD_DIR = Path(".tap/build")
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}


#: The name the Terraform commands use for :class:`TargetError`: one error for "what to act on cannot be resolved".
OperationError = TargetError
#: What the resolved deployment is for: an operation that plans or changes it, or a read of what is deployed.
Purpose = Literal["operate", "read"]
NOT_UP = "the local platform is not up: start it with 'tap local up' (or drop --local for AWS)"


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
    #: The running local platform's outputs (what was applied), for :meth:`target`; None on AWS.
    outputs: LocalOutputs | None = field(default=None, compare=False, repr=False)

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

    def target(self, region: str) -> RegionTarget:
        """One region of this deployment with its resource names and clients: on the running local platform as its
        outputs name them, otherwise as the configuration names them."""
        if region not in self.regions:
            raise TargetError(f"region {region} is not part of {self.env} ({', '.join(self.regions)})")
        if self.outputs is not None:
            return target_from_outputs(self.outputs, region)
        names = self.config.names(region)
        return RegionTarget(
            region, names.bucket, names.table, names.glue_database, names.athena_workgroup, self.endpoint,
            queue_name=names.queue, dlq_name=names.dlq, account_id=names.account_id,
            query_role_arn=f"arn:{partition_of(region)}:iam::{names.account_id}:role/{names.query_role}",
        )  # fmt: skip

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
    purpose: Purpose = "operate",
) -> Deployment:
    """The environment and regions a command acts on (see the module's docstring)."""
    if not local:
        return _on_aws(env, regions, config_path, purpose)
    paths = paths or LocalPaths.default()
    state = read_state(paths)
    if state is None:
        raise TargetError(NOT_UP)
    running_env = str(state.config.get("environment", ""))
    if purpose == "read":
        return _reading_local(state, paths, env, regions)
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
        return Deployment(running_env, config, _regions(config, regions), workdir / running_env, state.endpoint, True,
                          read_outputs(paths))  # fmt: skip
    config = resolve_account_offline(load_config(config_path, env_name=env, local_endpoint=state.endpoint))
    if config.environment_suffix == state.environment_suffix:
        raise ConfigError("env", f"{env!r} has the running platform's suffix {config.environment_suffix!r}")
    if config.backend == "local":
        config = _absolute_state(config, workdir / env / "tfstate")
    return Deployment(env, config, _regions(config, regions), workdir / env, state.endpoint)


def _on_aws(env: str | None, regions: Sequence[str] | None, config_path: str | None, purpose: Purpose) -> Deployment:
    named = environment_names()
    if env is None and named and purpose == "operate":
        # Without --env the defaults would be applied over dev's stacks and state (same suffix), reverting
        # whatever environments/dev.toml sets: an operation on AWS always names its environment.
        raise ConfigError("env", f"name the environment to act on: --env {' | '.join(named)}")
    # The caller's account, checked against account_id before anything is touched (names carry it).
    config = resolve_account(load_config(config_path, env_name=env))
    if config.backend == "local":
        config = _absolute_state(config, Path(config.state_dir))
    label = env or config.environment
    return Deployment(label, config, _regions(config, regions), (OPS_DIR / label).resolve())


def _reading_local(state: LocalState, paths: LocalPaths, env: str | None, regions: Sequence[str] | None) -> Deployment:
    """The running environment as it was applied: reads see what is deployed, whatever the files say now."""
    running_env = str(state.config.get("environment", ""))
    if env is not None and env != running_env:
        raise TargetError(f"the local platform runs environment {running_env!r}, not {env!r}")
    outputs = read_outputs(paths)
    if outputs is None:
        raise TargetError(NOT_UP)
    for region in regions or ():
        if region not in outputs.regions:
            raise TargetError(f"region {region} is not part of the local platform ({', '.join(outputs.regions)})")
    chosen = tuple(r for r in outputs.regions if not regions or r in regions)
    config = state.platform_config()
    return Deployment(running_env, config, chosen, paths.root / "ops" / running_env, state.endpoint, True, outputs)


def resolve_target(region: str, *, local: bool, config_path: str | None, env: str | None = None) -> RegionTarget:
    """One region to read, resolved as every command resolves what it acts on (``--local``: the running local
    platform, whose environment ``tap local up`` chose; otherwise AWS)."""
    deployment = resolve_deployment(env=env, regions=[region], local=local, config_path=config_path, purpose="read")
    return deployment.target(region)
