"""The local AWS daemon: the local endpoint (moto, adjusted) on 127.0.0.1 plus the local Lambda service.

Started in the background by ``tap local up`` as ``python -m analytics_platform.local.server``; it stops
on SIGTERM. It writes ``ready`` into its state folder once the endpoint answers.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from analytics_platform.local.clients import LOCAL_ACCOUNT_ID, local_client
from analytics_platform.local.endpoint import start_endpoint
from analytics_platform.local.lambda_runner import FunctionRuntime, FunctionSpec
from analytics_platform.local.pollers import QueuePoller, RuntimePool, SchedulePoller, rate_seconds
from analytics_platform.local.vpc_reachability import Blackhole, FunctionRoutes

ACCOUNT_ID = LOCAL_ACCOUNT_ID
DISCOVERY_INTERVAL_SECONDS = 1.0


def deployed_code(region: str, function_name: str) -> bytes:
    """The zip moto holds for a function: exactly what Terraform deployed."""
    from moto.awslambda.models import lambda_backends

    function = lambda_backends[ACCOUNT_ID][region].get_function(function_name)
    return bytes(function.code_bytes)


def role_credentials(endpoint: str, region: str, role_arn: str, session_name: str) -> Callable[[], dict[str, str]]:
    """A source of fresh credentials of ``role_arn`` (STS AssumeRole on the local endpoint), as environment."""

    def assume() -> dict[str, str]:
        sts = local_client("sts", region, endpoint)  # the Lambda service's own identity assumes the role
        found = sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name[:64], DurationSeconds=3600)
        credentials = found["Credentials"]
        return {"AWS_ACCESS_KEY_ID": credentials["AccessKeyId"], "AWS_SECRET_ACCESS_KEY":
                credentials["SecretAccessKey"], "AWS_SESSION_TOKEN": credentials["SessionToken"]}  # fmt: skip

    return assume


class LocalLambdaService:
    """Starts and stops a poller for every event source mapping and schedule rule found in the given regions.

    Each function has one :class:`RuntimePool` of its reserved concurrency, shared by its queue and its
    schedules, so a schedule never adds an environment beyond what Lambda would run.
    """

    def __init__(self, endpoint: str, regions: list[str], work_dir: Path) -> None:
        self._endpoint = endpoint
        self._regions = regions
        self._work_dir = work_dir
        self._pollers: dict[str, QueuePoller | SchedulePoller] = {}
        self._pools: dict[str, RuntimePool] = {}
        self._lock = threading.Lock()
        self._journal = (work_dir / "invocations.jsonl").open("a", buffering=1)
        #: Where calls to a service without a route go (and time out), shared by every function.
        self._blackhole = Blackhole()

    def record(self, entry: dict[str, Any]) -> None:
        """Append one line to the invocation journal (used by ``tap demo``, the e2e tests and the soak)."""
        with self._lock:
            self._journal.write(json.dumps(entry, default=str) + "\n")

    def _spec(self, lam: Any, region: str, function_arn: str) -> FunctionSpec:
        config = lam.get_function_configuration(FunctionName=function_arn)
        concurrency = lam.get_function_concurrency(FunctionName=function_arn).get("ReservedConcurrentExecutions")
        vpc = config.get("VpcConfig") or {}
        return FunctionSpec(
            name=config["FunctionName"], arn=config["FunctionArn"], region=region, handler=config["Handler"],
            timeout_seconds=int(config.get("Timeout", 3)), memory_mb=int(config.get("MemorySize", 128)),
            environment=dict(config.get("Environment", {}).get("Variables", {})),
            code_sha256=config["CodeSha256"], code=deployed_code(region, config["FunctionName"]),
            ephemeral_storage_mb=int(config.get("EphemeralStorage", {}).get("Size", 512)),
            role_arn=config.get("Role", ""), reserved_concurrency=int(concurrency or 1),
            subnet_ids=tuple(vpc.get("SubnetIds") or ()), security_group_ids=tuple(vpc.get("SecurityGroupIds") or ()),
        )  # fmt: skip

    def _pool(self, lam: Any, region: str, function_arn: str) -> RuntimePool:
        """The function's pool of execution environments, made on first use."""
        if function_arn not in self._pools:
            spec = self._spec(lam, region, function_arn)
            credentials = role_credentials(self._endpoint, region, spec.role_arn, spec.name) if spec.role_arn else None
            routes = self._routes(spec)
            self._pools[function_arn] = RuntimePool([
                FunctionRuntime(spec, endpoint=self._endpoint, work_dir=self._work_dir, index=index,
                                credentials=credentials, routes=routes.environment if routes else None)
                for index in range(spec.reserved_concurrency)
            ])  # fmt: skip
        return self._pools[function_arn]

    def _routes(self, spec: FunctionSpec) -> FunctionRoutes | None:
        """What holds a VPC function to its routes (None outside a VPC: every public endpoint is reachable)."""
        if not spec.subnet_ids:
            return None
        return FunctionRoutes(
            ec2=lambda: local_client("ec2", spec.region, self._endpoint), function=spec.name, region=spec.region,
            subnet_ids=spec.subnet_ids, security_group_ids=spec.security_group_ids,
            blackhole_url=self._blackhole.url, record=self.record,
        )  # fmt: skip

    def _queue_poller(self, lam: Any, region: str, mapping: dict[str, Any]) -> QueuePoller:
        queue_arn = mapping["EventSourceArn"]
        sqs = local_client("sqs", region, self._endpoint)
        return QueuePoller(
            sqs=sqs, queue_url=sqs.get_queue_url(QueueName=queue_arn.rsplit(":", 1)[1])["QueueUrl"],
            queue_arn=queue_arn, batch_size=int(mapping.get("BatchSize", 10)),
            report_batch_item_failures="ReportBatchItemFailures" in (mapping.get("FunctionResponseTypes") or []),
            pool=self._pool(lam, region, mapping["FunctionArn"]), record=self.record,
            maximum_concurrency=(mapping.get("ScalingConfig") or {}).get("MaximumConcurrency"),
        )  # fmt: skip

    def _schedules(self, region: str) -> dict[str, tuple[str, str, float, dict[str, Any] | None]]:
        """``{rule arn + target id: (rule arn, function arn, interval, input)}`` of rate rules with function targets."""
        events = local_client("events", region, self._endpoint)
        found = {}
        for rule in events.list_rules().get("Rules", []):
            interval = rate_seconds(rule.get("ScheduleExpression", ""))
            if interval is None or rule.get("State", "ENABLED") != "ENABLED":
                continue
            for target in events.list_targets_by_rule(Rule=rule["Name"]).get("Targets", []):
                if ":lambda:" in target["Arn"]:
                    payload = json.loads(target["Input"]) if target.get("Input") else None
                    found[f"{rule['Arn']}#{target['Id']}"] = (rule["Arn"], target["Arn"], interval, payload)
        return found

    def discover(self) -> None:
        """Match running pollers to the event source mappings and schedule rules that exist now."""
        seen: set[str] = set()
        for region in self._regions:
            lam = local_client("lambda", region, self._endpoint)
            for mapping in lam.list_event_source_mappings().get("EventSourceMappings", []):
                if mapping.get("State", "Enabled") not in {"Enabled", "Creating", "Updating"}:
                    continue
                seen.add(mapping["UUID"])
                if mapping["UUID"] not in self._pollers:
                    self._start(mapping["UUID"], self._queue_poller(lam, region, mapping), "poller_started")
            for key, (rule_arn, function_arn, interval, payload) in self._schedules(region).items():
                seen.add(key)
                if key not in self._pollers:
                    pool = self._pool(lam, region, function_arn)
                    schedule = SchedulePoller(rule_arn=rule_arn, interval_seconds=interval, payload=payload,
                                              pool=pool, record=self.record)  # fmt: skip
                    self._start(key, schedule, "schedule_started")
        for key in set(self._pollers) - seen:
            self._pollers.pop(key).stop()
        in_use = {id(poller.pool) for poller in self._pollers.values()}
        for arn in [arn for arn, pool in self._pools.items() if id(pool) not in in_use]:
            self._pools.pop(arn).stop()  # no source left: end the function's environments

    def _start(self, key: str, poller: QueuePoller | SchedulePoller, event: str) -> None:
        poller.start()
        self._pollers[key] = poller
        spec = poller.pool.spec
        concurrency = poller.concurrency if isinstance(poller, QueuePoller) else spec.reserved_concurrency
        self.record({"event": event, "function": spec.name, "region": spec.region,
                     "concurrency": concurrency, "at": time.time()})  # fmt: skip

    def stop(self) -> None:
        """Stop every poller, then end every execution environment."""
        for poller in self._pollers.values():
            poller.stop()
        self._pollers.clear()
        for pool in self._pools.values():
            pool.stop()
        self._pools.clear()
        self._blackhole.close()


def serve(port: int, regions: list[str], work_dir: Path, fault_rate: float = 0.0) -> None:
    """Run until SIGTERM / SIGINT."""
    work_dir.mkdir(parents=True, exist_ok=True)
    server = start_endpoint(port, log_dir=work_dir, fault_rate=fault_rate)
    endpoint = f"http://127.0.0.1:{port}"
    service = LocalLambdaService(endpoint, regions, work_dir)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    (work_dir / "ready").write_text(endpoint)
    try:
        while not stopping.is_set():
            try:
                service.discover()
            except Exception as error:  # discovery retries on the next tick
                service.record({"event": "discovery_error", "error": str(error), "at": time.time()})
            stopping.wait(DISCOVERY_INTERVAL_SECONDS)
    finally:
        service.stop()
        server.stop()
        (work_dir / "ready").unlink(missing_ok=True)


def main() -> None:
    """``python -m analytics_platform.local.server --port N --regions a,b --work-dir DIR [--fault-rate R]``."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--regions", required=True)
    parser.add_argument("--work-dir", required=True)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    args = parser.parse_args()
    serve(args.port, [r for r in args.regions.split(",") if r], Path(args.work_dir), args.fault_rate)


if __name__ == "__main__":
    main()
