"""The local Lambda runtime: a shared package unpacked once, and Lambda's limits, sources and identity.

A tiny fake function (``LIMITS_HANDLER``) sleeps, allocates, spawns or fills /tmp on request and records its
start and end times, so the limits are checked without Terraform or the real worker.
"""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import json
import os
import signal
import threading
import time
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from analytics_platform.local.lambda_runner import FunctionRuntime, FunctionSpec, InvocationError
from analytics_platform.local.pollers import QueuePoller, RuntimePool, SchedulePoller

HANDLER = b"import os\n\ndef handler(event, context):\n    return {'region': os.environ['AWS_REGION'], **event}\n"
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-1")


def package() -> bytes:
    """A zip with many files in nested folders, so that unpacking takes long enough to overlap."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", HANDLER)
        for index in range(300):
            archive.writestr(f"lib/pkg{index % 7}/sub{index % 3}/module_{index}.py", b"VALUE = 1\n" * 200)
    return buffer.getvalue()


def spec(region: str, code: bytes) -> FunctionSpec:
    return FunctionSpec(
        name=f"fn-{region}", arn=f"arn:aws:lambda:{region}:123456789012:function:fn-{region}", region=region,
        handler="app.handler", timeout_seconds=30, memory_mb=128, environment={},
        code_sha256=base64.b64encode(hashlib.sha256(code).digest()).decode(), code=code,
    )  # fmt: skip


def test_functions_sharing_a_package_start_together(tmp_path: Path) -> None:
    """Regression: concurrent unpacking of the same package failed one poller with 'File exists'."""
    code = package()
    runtimes = [
        FunctionRuntime(spec(region, code), endpoint="http://127.0.0.1:9", work_dir=tmp_path) for region in REGIONS
    ]
    try:
        with ThreadPoolExecutor(len(runtimes)) as pool:
            results = list(pool.map(lambda runtime: runtime.invoke({"n": 1}), runtimes))
    finally:
        for runtime in runtimes:
            runtime.stop()
    assert results == [{"region": region, "n": 1} for region in REGIONS]
    code_dirs = [path for path in (tmp_path / "code").iterdir()]
    assert len(code_dirs) == 1 and (code_dirs[0] / ".complete").exists()
    assert len(list(code_dirs[0].rglob("module_*.py"))) == 300


def test_a_half_unpacked_package_is_replaced(tmp_path: Path) -> None:
    code = package()
    runtime = FunctionRuntime(spec("eu-west-1", code), endpoint="http://127.0.0.1:9", work_dir=tmp_path)
    code_dir = tmp_path / "code" / runtime.spec.code_sha256.replace("/", "_")
    code_dir.mkdir(parents=True)
    (code_dir / "app.py").write_text("raise SystemExit('truncated')\n")  # a crash mid-unpack, no .complete
    try:
        assert runtime.invoke({"n": 2}) == {"region": "eu-west-1", "n": 2}
    finally:
        runtime.stop()


def test_a_package_that_differs_from_the_deployed_hash_is_refused(tmp_path: Path) -> None:
    good = spec("eu-west-1", package())
    tampered = FunctionSpec(**{**good.__dict__, "code": good.code + b"x"})
    with pytest.raises(InvocationError, match="differs from deployed"):
        FunctionRuntime(tampered, endpoint="http://127.0.0.1:9", work_dir=tmp_path)


# --- Lambda's limits ------------------------------------------------------------------------------------------
LIMITS_HANDLER = b"""import json, os, subprocess, sys, time

time.sleep(float(os.environ.get("INIT_SLEEP", "0")))  # module-level work: Lambda's init phase

ALLOCATE = "b = bytearray(%d * 2**20); b[::4096] = b'x' * len(b[::4096]); import time; time.sleep(30)"


def act(event):
    action = event.get("do")
    if action == "sleep":
        time.sleep(event["seconds"])
    elif action == "allocate":
        block = bytearray(event["mb"] * 1024 * 1024)
        block[::4096] = b"x" * len(block[::4096])
        time.sleep(1)
    elif action == "allocate_in_child":
        subprocess.run([sys.executable, "-c", ALLOCATE % event["mb"]], check=False)
    elif action == "spawn":
        child = subprocess.Popen(["sleep", "60"])
        with open(event["pid_path"], "w") as handle:
            handle.write(str(child.pid))
        time.sleep(30)
    elif action == "fill":
        path = os.path.join(os.environ["TAP_WORK_DIR"], "fill.bin")
        try:
            with open(path, "wb") as handle:
                for _ in range(event["mb"]):
                    handle.write(b"x" * 1024 * 1024)
                    handle.flush()
        except OSError as error:
            return {"errno": error.errno}
        time.sleep(1)
    elif action == "whoami":
        import boto3

        return boto3.client("sts").get_caller_identity()["Arn"]
    return None


def handler(event, context):
    started = time.time()
    kind = "records" if "Records" in event else "schedule" if event.get("source") == "aws.events" else "direct"
    results = [act(json.loads(r["body"])) for r in event["Records"]] if kind == "records" else [act(event)]
    if os.environ.get("TRACE"):
        with open(os.environ["TRACE"], "a") as trace:
            trace.write(json.dumps({"kind": kind, "start": started, "end": time.time(), "pid": os.getpid()}) + "\\n")
    env = os.environ
    reply = {"pid": os.getpid(), "key": env.get("AWS_ACCESS_KEY_ID"), "token": env.get("AWS_SESSION_TOKEN"),
             "result": results[0]}
    return {**reply, "event": event} if kind == "schedule" else reply
"""
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:q"


def limits_spec(code: bytes, **overrides: object) -> FunctionSpec:
    base = spec("us-east-1", code)
    return FunctionSpec(**{**base.__dict__, "handler": "app.handler", **overrides})  # type: ignore[arg-type]


def limits_package() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", LIMITS_HANDLER)
    return buffer.getvalue()


def limits_runtime(work_dir: Path, index: int = 0, **overrides: object) -> FunctionRuntime:
    return FunctionRuntime(limits_spec(limits_package(), **overrides), endpoint="http://x", work_dir=work_dir,
                           index=index)  # fmt: skip


def running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its reaper does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def trace(path: Path, kind: str) -> list[dict[str, Any]]:
    lines = path.read_text().splitlines() if path.exists() else []
    return [entry for entry in map(json.loads, lines) if entry["kind"] == kind]


def wait_until(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)


def test_timeout_kills_the_invocation_and_the_next_one_starts_fresh(tmp_path: Path) -> None:
    # GIVEN a warm environment of a function with a 1 s timeout
    runtime = limits_runtime(tmp_path, timeout_seconds=1)
    try:
        first = runtime.invoke({})["pid"]
        # WHEN an invocation runs past the deadline THEN it fails as Lambda reports it
        with pytest.raises(InvocationError, match="Task timed out after 1 seconds"):
            runtime.invoke({"do": "sleep", "seconds": 30})
        assert not runtime.pid_file.exists()
        # THEN the next invocation gets a fresh environment
        assert runtime.invoke({})["pid"] != first
    finally:
        runtime.stop()


def test_timeout_kills_what_the_invocation_started_too(tmp_path: Path) -> None:
    # GIVEN an invocation that starts a child process and outlives its 1 s timeout
    runtime = limits_runtime(tmp_path, timeout_seconds=1)
    pid_path = tmp_path / "child.pid"
    try:
        with pytest.raises(InvocationError, match="Task timed out"):
            runtime.invoke({"do": "spawn", "pid_path": str(pid_path)})
    finally:
        runtime.stop()
    # THEN the child died with the environment (Lambda freezes and discards the whole sandbox)
    child = int(pid_path.read_text())
    wait_until(lambda: not running(child), 3)
    assert not running(child)


def test_the_init_phase_is_not_part_of_the_invocation_s_time(tmp_path: Path) -> None:
    # GIVEN a function whose module takes 1.5 s to import and whose timeout is 1 s
    runtime = limits_runtime(tmp_path, timeout_seconds=1, environment={"INIT_SLEEP": "1.5"})
    try:
        # WHEN it is invoked cold THEN the invocation succeeds: as on Lambda, init has a limit of its own
        assert runtime.invoke({})["pid"]
    finally:
        runtime.stop()


def test_memory_above_the_function_size_kills_it(tmp_path: Path) -> None:
    runtime = limits_runtime(tmp_path, memory_mb=128)
    try:
        with pytest.raises(InvocationError, match="signal: killed"):
            runtime.invoke({"do": "allocate", "mb": 300})
        assert runtime.invoke({})["pid"]
    finally:
        runtime.stop()


def test_memory_of_the_invocation_s_children_counts(tmp_path: Path) -> None:
    # GIVEN a 128 MB function whose handler stays small but runs a child that takes 300 MB
    runtime = limits_runtime(tmp_path, memory_mb=128, timeout_seconds=20)
    try:
        # WHEN invoked THEN the environment's process tree is over the limit and is killed
        with pytest.raises(InvocationError, match="signal: killed"):
            runtime.invoke({"do": "allocate_in_child", "mb": 300})
    finally:
        runtime.stop()


def test_tmp_is_as_large_as_the_ephemeral_storage(tmp_path: Path) -> None:
    runtime = limits_runtime(tmp_path, ephemeral_storage_mb=8)
    try:
        try:
            result = runtime.invoke({"do": "fill", "mb": 20})["result"]
        except InvocationError as error:  # the watchdog, where no tmpfs can be mounted
            assert runtime.storage_enforced_by == "watchdog" and "/tmp above" in str(error)
        else:  # a size-limited tmpfs: the write fails with ENOSPC, as on Lambda
            assert runtime.storage_enforced_by == "tmpfs" and result == {"errno": 28}
    finally:
        runtime.stop()


def test_a_killed_environment_fails_its_invocation_and_the_next_one_works(tmp_path: Path) -> None:
    runtime = limits_runtime(tmp_path)
    try:
        runtime.invoke({})
        killer = threading.Timer(0.5, lambda: os.kill(int(runtime.pid_file.read_text()), signal.SIGKILL))
        killer.start()
        with pytest.raises(InvocationError, match="Runtime exited"):
            runtime.invoke({"do": "sleep", "seconds": 10})
        assert runtime.invoke({})["pid"]
    finally:
        runtime.stop()


def test_a_sigkilled_environment_fails_its_batch_and_the_messages_come_back(tmp_path: Path) -> None:
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="q", Attributes={"VisibilityTimeout": "2"})["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"do": "sleep", "seconds": 1.5}))
        runtime = limits_runtime(tmp_path)
        runtime.invoke({})  # warm, so that its pid file names the environment that takes the batch
        journal: list[dict[str, Any]] = []

        def record(entry: dict[str, Any]) -> None:
            journal.append(entry)
            if entry["event"] == "invoke" and len(journal) == 1:  # the soak's way: the journal names the pid file
                pid = int(Path(entry["pid_file"]).read_text())
                threading.Timer(0.3, os.kill, (pid, signal.SIGKILL)).start()

        poller = QueuePoller(sqs=sqs, queue_url=url, queue_arn=QUEUE_ARN, batch_size=10,
                             report_batch_item_failures=True, pool=RuntimePool([runtime]), record=record)  # fmt: skip
        # GIVEN the environment holding a batch is killed with SIGKILL mid-invocation
        poller.start()
        wait_until(lambda: sum(e["event"] == "attempt" for e in journal) >= 2, 20)
        poller.stop()
        runtime.stop()
        left = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    # THEN the batch failed (not deleted), the message came back after its visibility timeout, and succeeded
    attempts = [(e["outcome"], e["receive_count"]) for e in journal if e["event"] == "attempt"]
    assert attempts == [("failed", 1), ("succeeded", 2)], journal
    assert "Runtime exited" in str(next(e for e in journal if e["event"] == "attempt")["error"])
    assert journal[0]["message_ids"] and left["Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_the_runtime_runs_with_the_session_credentials_of_the_function_s_role(tmp_path: Path) -> None:
    from moto.server import ThreadedMotoServer

    from analytics_platform.local.clients import local_client
    from analytics_platform.local.server import role_credentials

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{server.get_host_and_port()[1]}"
    try:
        # GIVEN a function role on the local endpoint
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                 "Principal": {"Service": "lambda.amazonaws.com"}}]}  # fmt: skip
        role = local_client("iam", "us-east-1", endpoint).create_role(
            RoleName="etl-role", AssumeRolePolicyDocument=json.dumps(trust)
        )["Role"]["Arn"]
        credentials = role_credentials(endpoint, "us-east-1", role, "fn-us-east-1")
        runtime = FunctionRuntime(limits_spec(limits_package()), endpoint=endpoint, work_dir=tmp_path,
                                  credentials=credentials)  # fmt: skip
        # WHEN the function asks who it is
        try:
            reply = runtime.invoke({"do": "whoami"})
        finally:
            runtime.stop()
    finally:
        server.stop()
    # THEN its calls are signed with a session of its own role, never with the plain local credentials
    assert reply["result"] == "arn:aws:sts::123456789012:assumed-role/etl-role/fn-us-east-1"
    assert reply["key"] != "test" and reply["token"]


def test_invocations_run_up_to_the_reserved_concurrency_at_once(tmp_path: Path) -> None:
    traced = tmp_path / "trace.jsonl"
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="q", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
        # GIVEN three messages whose handling takes 1.5 s each, and a function of reserved concurrency 3
        for _ in range(3):
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"do": "sleep", "seconds": 1.5}))
        runtimes = [limits_runtime(tmp_path, index, environment={"TRACE": str(traced)}) for index in range(3)]
        for runtime in runtimes:
            runtime.invoke({})  # warm: the overlap below is about invocations, not cold starts
        journal: list[dict[str, Any]] = []
        pool = RuntimePool(runtimes)
        poller = QueuePoller(sqs=sqs, queue_url=url, queue_arn=QUEUE_ARN, batch_size=1,
                             report_batch_item_failures=True, pool=pool, record=journal.append)  # fmt: skip
        # WHEN the poller runs
        poller.start()
        wait_until(lambda: len(trace(traced, "records")) >= 3, 20)
        poller.stop()
        pool.stop()
    # THEN the three handlers ran at the same moment: each started before any of them ended
    windows = trace(traced, "records")
    assert len(windows) == 3 and len({w["pid"] for w in windows}) == 3
    assert max(w["start"] for w in windows) < min(w["end"] for w in windows)


def test_a_schedule_runs_in_the_function_s_pool_and_gets_exactly_the_target_input(tmp_path: Path) -> None:
    traced = tmp_path / "trace.jsonl"
    sweep = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {"task": "dead-letter-sweep"}}
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="q", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
        for _ in range(4):
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"do": "sleep", "seconds": 0.5}))
        # GIVEN a function of reserved concurrency 1 with a busy queue and a schedule firing every 0.3 s
        pool = RuntimePool([limits_runtime(tmp_path, environment={"TRACE": str(traced)})])
        journal: list[dict[str, Any]] = []
        queue = QueuePoller(sqs=sqs, queue_url=url, queue_arn=QUEUE_ARN, batch_size=1,
                            report_batch_item_failures=True, pool=pool, record=journal.append)  # fmt: skip
        schedule = SchedulePoller(rule_arn="arn:aws:events:us-east-1:123456789012:rule/sweep", interval_seconds=0.3,
                                  payload=sweep, pool=pool, record=journal.append)  # fmt: skip
        # WHEN both run
        queue.start()
        schedule.start()
        wait_until(lambda: len(trace(traced, "records")) >= 4 and len(trace(traced, "schedule")) >= 2, 20)
        schedule.stop()
        queue.stop()
        pool.stop()
    # THEN both went through the one environment, one invocation at a time (concurrency 1 holds)
    windows = sorted(trace(traced, "records") + trace(traced, "schedule"), key=lambda w: w["start"])
    assert len({w["pid"] for w in windows}) == 1
    assert all(earlier["end"] <= later["start"] for earlier, later in itertools.pairwise(windows))
    # THEN the function got the target's constant input exactly, as EventBridge sends it
    fired = [e for e in journal if e["event"] == "schedule"]
    assert fired and all(e["error"] is None and e["result"]["event"] == sweep for e in fired), fired


def test_a_schedule_without_input_sends_the_scheduled_event(tmp_path: Path) -> None:
    # GIVEN a rate rule whose target has no constant input
    rule = "arn:aws:events:us-east-1:123456789012:rule/tick"
    schedule = SchedulePoller(rule_arn=rule, interval_seconds=60, payload=None,
                              pool=RuntimePool([limits_runtime(tmp_path)]), record=lambda entry: None)  # fmt: skip
    # WHEN its event is built THEN it is EventBridge's Scheduled Event for that rule
    event = schedule.event()
    assert {k: event[k] for k in ("version", "detail-type", "source", "account", "region", "resources", "detail")} == {
        "version": "0", "detail-type": "Scheduled Event", "source": "aws.events", "account": "123456789012",
        "region": "us-east-1", "resources": [rule], "detail": {},
    }  # fmt: skip
    assert event["id"] and event["time"].endswith("Z")
