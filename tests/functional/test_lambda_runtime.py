"""The local Lambda runtime: one package shared by every region's function, started concurrently."""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from analytics_platform.local.lambda_runner import FunctionRuntime, FunctionSpec, InvocationError

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
LIMITS_HANDLER = b"""import os, time

def handler(event, context):
    action = event.get("do")
    if action == "sleep":
        time.sleep(event["seconds"])
    elif action == "allocate":
        block = bytearray(event["mb"] * 1024 * 1024)
        block[::4096] = b"x" * len(block[::4096])
        time.sleep(1)
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
    env = os.environ
    return {"pid": os.getpid(), "key": env.get("AWS_ACCESS_KEY_ID"), "token": env.get("AWS_SESSION_TOKEN")}
"""


def limits_spec(code: bytes, **overrides: object) -> FunctionSpec:
    base = spec("us-east-1", code)
    return FunctionSpec(**{**base.__dict__, "handler": "app.handler", **overrides})  # type: ignore[arg-type]


def limits_package() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", LIMITS_HANDLER)
    return buffer.getvalue()


def test_timeout_kills_the_invocation_and_the_next_one_starts_fresh(tmp_path: Path) -> None:
    runtime = FunctionRuntime(limits_spec(limits_package(), timeout_seconds=1), endpoint="http://x", work_dir=tmp_path)
    try:
        first = runtime.invoke({})["pid"]
        with pytest.raises(InvocationError, match="Task timed out after 1 seconds"):
            runtime.invoke({"do": "sleep", "seconds": 30})
        assert not runtime.pid_file.exists()
        assert runtime.invoke({})["pid"] != first
    finally:
        runtime.stop()


def test_memory_above_the_function_size_kills_it(tmp_path: Path) -> None:
    runtime = FunctionRuntime(limits_spec(limits_package(), memory_mb=128), endpoint="http://x", work_dir=tmp_path)
    try:
        with pytest.raises(InvocationError, match="signal: killed"):
            runtime.invoke({"do": "allocate", "mb": 300})
        assert runtime.invoke({})["pid"]
    finally:
        runtime.stop()


def test_tmp_is_as_large_as_the_ephemeral_storage(tmp_path: Path) -> None:
    runtime = FunctionRuntime(limits_spec(limits_package(), ephemeral_storage_mb=8), endpoint="http://x",
                              work_dir=tmp_path)  # fmt: skip
    try:
        try:
            result = runtime.invoke({"do": "fill", "mb": 20})
        except InvocationError as error:  # the watchdog, where no tmpfs can be mounted
            assert runtime.storage_enforced_by == "watchdog" and "/tmp above" in str(error)
        else:  # a size-limited tmpfs: the write fails with ENOSPC, as on Lambda
            assert runtime.storage_enforced_by == "tmpfs" and result == {"errno": 28}
    finally:
        runtime.stop()


def test_a_killed_environment_fails_its_invocation_and_the_next_one_works(tmp_path: Path) -> None:
    import os
    import signal
    import threading

    runtime = FunctionRuntime(limits_spec(limits_package()), endpoint="http://x", work_dir=tmp_path)
    try:
        runtime.invoke({})
        killer = threading.Timer(0.5, lambda: os.kill(int(runtime.pid_file.read_text()), signal.SIGKILL))
        killer.start()
        with pytest.raises(InvocationError, match="Runtime exited"):
            runtime.invoke({"do": "sleep", "seconds": 10})
        assert runtime.invoke({})["pid"]
    finally:
        runtime.stop()


def test_the_runtime_gets_the_role_credentials(tmp_path: Path) -> None:
    issued = {"AWS_ACCESS_KEY_ID": "ASIAROLE", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "token"}
    runtime = FunctionRuntime(limits_spec(limits_package()), endpoint="http://x", work_dir=tmp_path,
                              credentials=lambda: issued)  # fmt: skip
    try:
        reply = runtime.invoke({})
        assert (reply["key"], reply["token"]) == ("ASIAROLE", "token")
    finally:
        runtime.stop()


def test_invocations_run_up_to_the_reserved_concurrency_at_once(tmp_path: Path) -> None:
    import time

    from moto import mock_aws

    from analytics_platform.local.pollers import QueuePoller

    with mock_aws():
        import boto3

        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="q", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
        for _ in range(3):
            sqs.send_message(QueueUrl=url, MessageBody="{}")
        journal: list[dict[str, object]] = []
        runtimes = [
            FunctionRuntime(limits_spec(limits_package()), endpoint="http://x", work_dir=tmp_path, index=i)
            for i in range(3)
        ]
        # GIVEN handlers that take 1.5 s each, and a poller with three environments
        for runtime in runtimes:
            runtime.invoke({})  # warm
        poller = QueuePoller(sqs=sqs, queue_url=url, queue_arn="arn:aws:sqs:us-east-1:123456789012:q", batch_size=1,
                             report_batch_item_failures=True, runtimes=runtimes, record=journal.append)  # fmt: skip
        for runtime in runtimes:
            original = runtime.invoke
            runtime.invoke = lambda event, original=original: (time.sleep(1.5), original(event))[1]  # type: ignore[method-assign]
        poller.start()
        deadline = time.monotonic() + 20
        while sum(1 for e in journal if e.get("event") == "attempt") < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        poller.stop()
    # THEN the three invocations overlapped in time
    invokes = sorted(float(e["at"]) for e in journal if e.get("event") == "invoke")  # type: ignore[arg-type]
    attempts = sorted(float(e["at"]) for e in journal if e.get("event") == "attempt")  # type: ignore[arg-type]
    assert len(invokes) == 3 and len(attempts) == 3
    assert invokes[-1] < attempts[0], "the third invocation started before the first one ended"
