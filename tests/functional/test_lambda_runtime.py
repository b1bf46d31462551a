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
