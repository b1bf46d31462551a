"""The local AWS daemon: moto in server mode on 127.0.0.1 plus the local Lambda runtime.

Started in the background by ``tap local up`` as ``python -m analytics_platform.local.server``; it stops
on SIGTERM. It writes ``ready`` into its state folder once the endpoint answers.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import boto3

from analytics_platform.local.lambda_runner import FunctionRuntime, FunctionSpec, QueuePoller

ACCOUNT_ID = "123456789012"
DISCOVERY_INTERVAL_SECONDS = 1.0


def disable_moto_event_source_invocation() -> None:
    """Stop moto from invoking functions itself when a message arrives.

    moto's SQS backend receives the new message for every enabled event source mapping and tries to run
    the function in Docker; without Docker that fails and silently uses up one receive of the message.
    The local runtime polls the queues instead, so moto's shortcut is switched off here.
    """
    from moto.sqs import models as sqs_models

    class PolledByLocalRuntime(dict[str, Any]):
        """Keeps moto's bookkeeping, but hands moto's send path nothing to invoke."""

        def items(self) -> Any:
            return iter(())

    original_init = sqs_models.Queue.__init__
    if getattr(original_init, "_tap_patched", False):
        return

    def patched_init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.lambda_event_source_mappings = PolledByLocalRuntime()

    patched_init._tap_patched = True  # type: ignore[attr-defined]
    sqs_models.Queue.__init__ = patched_init  # type: ignore[method-assign]


def _is_transport_condition_only(statement: dict[str, Any]) -> bool:
    condition = statement.get("Condition") or {}
    return set(condition) == {"Bool"} and set(condition["Bool"]) == {"aws:SecureTransport"}


def honour_secure_transport_condition() -> None:
    """Evaluate the bucket's TLS-only statement as AWS does, instead of as an unconditional Deny.

    moto's bucket-policy check ignores ``Condition`` blocks, so the stack's ``DenyInsecureTransport``
    statement (deny when ``aws:SecureTransport`` is false) would deny every request. The local endpoint
    is loopback-only plain HTTP standing in for AWS's TLS front end, so statements conditioned only on
    ``aws:SecureTransport`` are left out of moto's evaluation; every other statement is evaluated as is.
    """
    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.s3 import models as s3_models

    if getattr(s3_models.FakeBucket.get_permission, "_tap_patched", False):
        return

    def get_permission(self: Any, action: str, resource: str) -> Any:
        if self.policy is None:
            return PermissionResult.NEUTRAL
        document = json.loads(self.policy.decode())
        statements = document.get("Statement", [])
        statements = [statements] if isinstance(statements, dict) else statements
        kept = [s for s in statements if not _is_transport_condition_only(s)]
        if not kept:
            return PermissionResult.NEUTRAL
        return IAMPolicy(json.dumps({**document, "Statement": kept})).is_action_permitted(action, resource)

    get_permission._tap_patched = True  # type: ignore[attr-defined]
    s3_models.FakeBucket.get_permission = get_permission  # type: ignore[method-assign]


def deployed_code(region: str, function_name: str) -> bytes:
    """The zip moto holds for a function: exactly what Terraform deployed."""
    from moto.awslambda.models import lambda_backends

    function = lambda_backends[ACCOUNT_ID][region].get_function(function_name)
    return bytes(function.code_bytes)


class LocalLambdaService:
    """Starts and stops a poller for every event source mapping found in the given regions."""

    def __init__(self, endpoint: str, regions: list[str], work_dir: Path) -> None:
        self._endpoint = endpoint
        self._regions = regions
        self._work_dir = work_dir
        self._pollers: dict[str, QueuePoller] = {}
        self._lock = threading.Lock()
        self._journal = (work_dir / "invocations.jsonl").open("a", buffering=1)

    def _client(self, service: str, region: str) -> Any:
        return boto3.client(
            service, region_name=region, endpoint_url=self._endpoint, aws_access_key_id="test",
            aws_secret_access_key="test",
        )  # fmt: skip

    def record(self, entry: dict[str, Any]) -> None:
        """Append one line to the invocation journal (used by ``tap demo`` and the e2e tests)."""
        with self._lock:
            self._journal.write(json.dumps(entry) + "\n")

    def _spec(self, lam: Any, region: str, function_arn: str) -> FunctionSpec:
        config = lam.get_function_configuration(FunctionName=function_arn)
        return FunctionSpec(
            name=config["FunctionName"],
            arn=config["FunctionArn"],
            region=region,
            handler=config["Handler"],
            timeout_seconds=int(config.get("Timeout", 3)),
            memory_mb=int(config.get("MemorySize", 128)),
            environment=dict(config.get("Environment", {}).get("Variables", {})),
            code_sha256=config["CodeSha256"],
            code=deployed_code(region, config["FunctionName"]),
        )

    def discover(self) -> None:
        """Match running pollers to the event source mappings that exist now."""
        seen: set[str] = set()
        for region in self._regions:
            lam = self._client("lambda", region)
            for mapping in lam.list_event_source_mappings().get("EventSourceMappings", []):
                if mapping.get("State", "Enabled") not in {"Enabled", "Creating", "Updating"}:
                    continue
                uuid = mapping["UUID"]
                seen.add(uuid)
                if uuid in self._pollers:
                    continue
                spec = self._spec(lam, region, mapping["FunctionArn"])
                queue_arn = mapping["EventSourceArn"]
                sqs = self._client("sqs", region)
                queue_url = sqs.get_queue_url(QueueName=queue_arn.rsplit(":", 1)[1])["QueueUrl"]
                poller = QueuePoller(
                    sqs=sqs,
                    queue_url=queue_url,
                    queue_arn=queue_arn,
                    batch_size=int(mapping.get("BatchSize", 10)),
                    report_batch_item_failures="ReportBatchItemFailures"
                    in (mapping.get("FunctionResponseTypes") or []),
                    runtime=FunctionRuntime(spec, endpoint=self._endpoint, work_dir=self._work_dir),
                    record=self.record,
                )
                poller.start()
                self._pollers[uuid] = poller
                self.record({"event": "poller_started", "function": spec.name, "region": region, "at": time.time()})
        for uuid in set(self._pollers) - seen:
            self._pollers.pop(uuid).stop()

    def stop(self) -> None:
        """Stop every poller."""
        for poller in self._pollers.values():
            poller.stop()
        self._pollers.clear()


def serve(port: int, regions: list[str], work_dir: Path) -> None:
    """Run until SIGTERM / SIGINT."""
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    disable_moto_event_source_invocation()
    honour_secure_transport_condition()
    work_dir.mkdir(parents=True, exist_ok=True)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
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
    """``python -m analytics_platform.local.server --port N --regions a,b --work-dir DIR``."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--regions", required=True)
    parser.add_argument("--work-dir", required=True)
    args = parser.parse_args()
    serve(args.port, [r for r in args.regions.split(",") if r], Path(args.work_dir))


if __name__ == "__main__":
    main()
