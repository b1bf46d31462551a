"""``tap local up`` / ``tap local down``: the whole platform on this machine."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analytics_platform.exit_codes import ExitCode
from analytics_platform.local.clients import LOCAL_ACCOUNT_ID, local_client
from analytics_platform.local.state import (
    LocalOutputs,
    LocalPaths,
    LocalState,
    RegionOutputs,
    config_document,
    pid_alive,
    read_state,
    write_outputs,
    write_state,
)
from analytics_platform.local.terraform import TerraformError, TerraformRunner
from analytics_platform.local.terraform_runs import Events, run_per_region
from analytics_platform.progress import RegionBoard

if TYPE_CHECKING:
    from analytics_platform.infra.config import PlatformConfig

__all__ = ["LocalPaths", "LocalPlatformError", "platform_down", "platform_up"]

READY_TIMEOUT_SECONDS = 60
POLLER_TIMEOUT_SECONDS = 60


class LocalPlatformError(RuntimeError):
    """The local platform could not be started or stopped."""


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _endpoint_answers(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2):
            return True
    except OSError:
        return False


def _start_daemon(paths: LocalPaths, port: int, regions: list[str], fault_rate: float) -> subprocess.Popen[bytes]:
    paths.runtime.mkdir(parents=True, exist_ok=True)
    (paths.runtime / "ready").unlink(missing_ok=True)
    log = (paths.runtime / "server.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "analytics_platform.local.server", "--port", str(port),
         "--regions", ",".join(regions), "--work-dir", str(paths.runtime), "--fault-rate", str(fault_rate)],
        stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    log.close()
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    endpoint = f"http://127.0.0.1:{port}"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LocalPlatformError(f"local AWS endpoint exited at start; see {paths.runtime / 'server.log'}")
        if (paths.runtime / "ready").exists() and _endpoint_answers(endpoint):
            return process
        time.sleep(0.2)
    process.kill()
    raise LocalPlatformError(f"local AWS endpoint did not answer on port {port} within {READY_TIMEOUT_SECONDS} s")


def _stop_daemon(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except OSError:
        return
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.2)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
    if pid_alive(pid):
        os.killpg(pid, signal.SIGKILL)


def _stack_dirs(paths: LocalPaths, config: Any) -> dict[str, Path]:
    from analytics_platform.infra.names import stack_id

    return {r.region: paths.synth / "stacks" / stack_id(r.region, config.environment_suffix) for r in config.regions}


def _region_outputs(runner: TerraformRunner, stack_dir: Path) -> RegionOutputs:
    values = runner.outputs(stack_dir)
    return RegionOutputs(**{f.name: str(values[f.name]) for f in fields(RegionOutputs)})


def _wait_for_pollers(paths: LocalPaths, regions: list[str]) -> None:
    deadline = time.monotonic() + POLLER_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        started = set()
        if paths.journal.exists():
            for line in paths.journal.read_text().splitlines():
                entry = json.loads(line)
                if entry.get("event") == "poller_started":
                    started.add(entry["region"])
        if set(regions) <= started:
            return
        time.sleep(0.5)
    raise LocalPlatformError(f"the local Lambda runtime did not pick up every region; see {paths.journal}")


def platform_up(
    *,
    config_path: str | None = None,
    port: int | None = None,
    paths: LocalPaths | None = None,
    progress: Callable[[str], None] = print,
    parallel: bool = True,
    overrides: dict[str, Any] | None = None,
    fault_rate: float = 0.0,
    env: str | None = None,
) -> LocalOutputs:
    """Start the endpoint, apply every stack, start the runtime; returns the outputs.

    ``fault_rate`` makes the endpoint answer that share of the worker's S3, DynamoDB and SQS requests with a
    transient error (never Terraform's or the tests').
    """
    if not 0 <= fault_rate < 1:
        raise LocalPlatformError(f"--fault-rate must be from 0 to below 1, got {fault_rate}")
    paths = paths or LocalPaths.default()
    running = read_state(paths)
    if running:
        raise LocalPlatformError(
            f"the local platform is already up at {running.endpoint} (pid {running.pid}); run 'tap local down' first"
        )
    port = port or free_port()
    endpoint = f"http://127.0.0.1:{port}"
    config = _local_config(config_path, env, endpoint, paths, overrides)
    regions = [r.region for r in config.regions]
    paths.root.mkdir(parents=True, exist_ok=True)
    for stale in (paths.journal, paths.outputs):
        stale.unlink(missing_ok=True)
    progress(f"starting local AWS endpoint on {endpoint}")
    daemon = _start_daemon(paths, port, regions, fault_rate)
    state = LocalState(daemon.pid, port, endpoint, regions, config_document(config), fault_rate)
    write_state(paths, state)
    try:
        outputs = _apply_and_attach(config, paths, endpoint, progress=progress, parallel=parallel)
    except BaseException:
        _stop_daemon(daemon.pid)
        paths.state.unlink(missing_ok=True)
        raise
    progress(f"local platform is up: {paths.outputs}")
    return outputs


def _local_config(
    config_path: str | None, env: str | None, endpoint: str, paths: LocalPaths, overrides: dict[str, Any] | None
) -> PlatformConfig:
    """The environment's configuration (or the file's) on the local endpoint, with ``overrides`` on top."""
    from analytics_platform.infra.config import load_config

    # The local endpoint is an account of its own (the names carry its id), whatever account the environment is for.
    local = {
        "local_endpoint": endpoint, "state_dir": str(paths.root / "tfstate"), "backend": "local",
        "account_id": LOCAL_ACCOUNT_ID,
    }  # fmt: skip
    return load_config(config_path, env_name=env, **{**local, **(overrides or {})})


def _apply_and_attach(
    config: PlatformConfig, paths: LocalPaths, endpoint: str, *, progress: Callable[[str], None], parallel: bool
) -> LocalOutputs:
    """Synthesize, apply every stack, write the outputs and wait for the local Lambda runtime to attach."""
    from analytics_platform.infra.app import synth

    regions = [r.region for r in config.regions]
    progress(f"synthesizing {len(regions)} regional stack(s)")
    synth(config, outdir=paths.synth, build_dir=Path(".tap/build"))
    runner = TerraformRunner.create(paths.root / "terraform")
    stacks = _stack_dirs(paths, config)
    progress(f"applying {len(regions)} stack(s) with terraform, {'in parallel' if parallel else 'in sequence'}")
    with RegionBoard(regions, "applying", say=progress) as board:
        timings = run_per_region(lambda r: _apply(runner, stacks[r], f"apply-{r}", board.terraform_events(r)),
                                 regions, parallel=parallel, progress=progress, board=board)  # fmt: skip
    progress(f"applied: {_per_region(timings)}")
    outputs = LocalOutputs(endpoint, {region: _region_outputs(runner, stacks[region]) for region in regions})
    write_outputs(paths, outputs)
    progress("waiting for the local Lambda runtime to attach to every queue")
    _wait_for_pollers(paths, regions)
    return outputs


def leftovers(endpoint: str, regions: list[str], suffix: str) -> list[str]:
    """Resources of this environment still present on the endpoint (expected: none after destroy)."""
    found: list[str] = []
    for region in regions:

        def client(service: str, region: str = region) -> Any:
            return local_client(service, region, endpoint)

        mark = f"{region}-{suffix}"
        found += [f"bucket {b['Name']}" for b in client("s3").list_buckets().get("Buckets", []) if mark in b["Name"]]
        found += [f"table {t}" for t in client("dynamodb").list_tables().get("TableNames", []) if mark in t]
        found += [f"queue {q}" for q in client("sqs").list_queues().get("QueueUrls", []) if mark in q]
        found += [f"function {f['FunctionName']}" for f in client("lambda").list_functions().get("Functions", [])
                  if mark in f["FunctionName"]]  # fmt: skip
        found += [f"vpc {v['VpcId']}" for v in client("ec2").describe_vpcs().get("Vpcs", [])
                  if any(t.get("Value", "").endswith(mark) for t in v.get("Tags", []))]  # fmt: skip
    return found


def _per_region(timings: dict[str, float]) -> str:
    """``us-east-1 84.2 s, eu-west-1 83.9 s``: each region's Terraform time (init, apply and settle, or destroy)."""
    return ", ".join(f"{region} {seconds:.1f} s" for region, seconds in timings.items())


def _apply(runner: TerraformRunner, stack_dir: Path, log_name: str, events: Events | None = None) -> None:
    """``apply``, then the settled state recorded (``tap drift`` compares against it)."""
    runner.apply(stack_dir, log_name, events)
    runner.settle(stack_dir, log_name)


def _destroy(runner: TerraformRunner, stack_dir: Path, log_name: str, events: Events | None = None) -> None:
    """``destroy``, once more if it fails: on a loaded machine the endpoint can answer a retried delete with
    "not found" for what the first attempt already deleted; the second run starts from the refreshed state."""
    try:
        runner.destroy(stack_dir, log_name, events)
    except TerraformError:
        runner.destroy(stack_dir, log_name, events)


def platform_down(*, paths: LocalPaths | None = None, progress: Callable[[str], None] = print) -> bool:
    """Destroy every stack, check nothing is left, stop the endpoint; False if nothing was up."""
    paths = paths or LocalPaths.default()
    state = read_state(paths)
    if state is None:
        paths.state.unlink(missing_ok=True)
        return False
    config = state.platform_config()  # what was applied, whatever the configuration file says now
    try:
        runner = TerraformRunner.create(paths.root / "terraform")
        stacks = _stack_dirs(paths, config)
        progress(f"destroying {len(stacks)} stack(s)")
        with RegionBoard(list(stacks), "destroying", say=progress) as board:
            timings = run_per_region(
                lambda r: _destroy(runner, stacks[r], f"destroy-{r}", board.terraform_events(r)), list(stacks),
                progress=progress, verb="destroying", board=board,
            )  # fmt: skip
        progress(f"destroyed: {_per_region(timings)}")
        remaining = leftovers(state.endpoint, state.regions, state.environment_suffix)
        (paths.root / "leftovers.json").write_text(json.dumps(remaining))
        if remaining:
            raise LocalPlatformError(f"destroy left resources behind: {', '.join(remaining)}")
        progress("all stacks destroyed; no resources left behind")
    finally:
        progress("stopping the local AWS endpoint")
        _stop_daemon(state.pid)
        paths.state.unlink(missing_ok=True)
        paths.outputs.unlink(missing_ok=True)
    return True


def local_up(*, config_path: str | None, port: int | None, fault_rate: float = 0.0, env: str | None = None) -> int:
    """CLI wrapper: exit 1 with a clear message when already up."""
    try:
        platform_up(config_path=config_path, port=port, fault_rate=fault_rate, env=env)
    except LocalPlatformError as error:
        print(f"error: {error}", file=sys.stderr)
        return ExitCode.FAILED
    return ExitCode.OK


def local_down() -> int:
    """CLI wrapper: a clear message when nothing is up."""
    if not platform_down():
        print("the local platform is not running; nothing to stop")
    return ExitCode.OK
