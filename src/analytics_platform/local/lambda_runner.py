"""Local Lambda execution environments: the deployed package in a warm subprocess, held to Lambda's limits.

moto stores functions but cannot run them without Docker. A :class:`FunctionRuntime` is one execution
environment of one function: it runs the zip moto holds for the function (the deployed package, hash-checked)
with the function's environment and the credentials of the function's own role, and it enforces what Lambda
enforces:

* **timeout**: at the deadline the whole process group is killed ("Task timed out after N seconds") and the
  next invocation starts a fresh environment. As on Lambda, the init phase (importing the handler) is not
  part of the invocation's time: it has its own limit, ``max(10 s, timeout)``;
* **memory**: the process tree's resident memory is watched; above ``MemorySize`` it is killed
  ("Runtime exited with error: signal: killed", as Lambda reports an out-of-memory kill);
* **network**: a function in a VPC reaches only the services its applied stack routes to; its clients for the
  others are pointed at an address where a connect times out (``routes``, from ``local.vpc_reachability``). The
  routes are read before every invocation; when they changed, the environment starts afresh with the new ones;
* **ephemeral storage**: the environment's /tmp (``TAP_WORK_DIR``, also ``TMPDIR``) is a tmpfs of
  ``EphemeralStorage.Size`` where the machine allows mounting one (root with CAP_SYS_ADMIN, as in this
  project's dev container), so writes past it fail with ENOSPC as on Lambda; elsewhere (no privilege to mount)
  a watchdog kills the invocation when the folder grows past the size, which is later and less exact.

Each environment's pid is in ``pids/<function>-<n>.pid`` while it lives, so a test can kill it mid-job.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
WATCH_SECONDS = 0.1
#: Lambda gives the init phase (imports, module-level code) 10 s of its own, outside the invocation's timeout.
INIT_TIMEOUT_SECONDS = 10
#: Credentials from AssumeRole last an hour; environments restart on fresh ones before that.
CREDENTIAL_LIFETIME_SECONDS = 45 * 60
#: Every region's function runs the same package (same hash, same code folder), and their pollers start
#: together: extraction happens once, under this lock, into a staging folder renamed into place.
_EXTRACT_LOCK = threading.Lock()
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class InvocationError(RuntimeError):
    """The function crashed, timed out or ran out of memory; the whole batch counts as failed."""


@dataclass(frozen=True)
class FunctionSpec:
    """What the runtime needs about a deployed function."""

    name: str
    arn: str
    region: str
    handler: str
    timeout_seconds: int
    memory_mb: int
    environment: dict[str, str]
    code_sha256: str
    code: bytes
    ephemeral_storage_mb: int = 512
    role_arn: str = ""
    reserved_concurrency: int = 1
    #: The function's ``VpcConfig`` (empty: not in a VPC, every service reachable).
    subnet_ids: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()


def verify_code(spec: FunctionSpec) -> None:
    """Refuse to run bytes that are not what Lambda reports as deployed."""
    actual = base64.b64encode(hashlib.sha256(spec.code).digest()).decode()
    if actual != spec.code_sha256:
        raise InvocationError(f"{spec.name}: package hash {actual} differs from deployed {spec.code_sha256}")


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants (from /proc; 0 when gone)."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            total += int(Path(f"/proc/{current}/statm").read_text().split()[1]) * PAGE
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
        except (OSError, ValueError, IndexError):
            continue
    return total


def folder_bytes(path: Path) -> int:
    """Bytes of the files under ``path``."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


def mount_tmpfs(path: Path, size_mb: int) -> bool:
    """Mount a tmpfs of ``size_mb`` at ``path``; False where the machine does not allow it."""
    path.mkdir(parents=True, exist_ok=True)
    if os.path.ismount(path):
        return True
    try:
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", str(path)],
                                capture_output=True, timeout=10, check=False)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0


def unmount(path: Path) -> None:
    """Unmount ``path`` if it is a mount point."""
    if os.path.ismount(path):
        subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=10, check=False)


class FunctionRuntime:
    """One warm execution environment of one function (``index`` tells environments of a function apart)."""

    def __init__(
        self,
        spec: FunctionSpec,
        *,
        endpoint: str,
        work_dir: Path,
        index: int | str = 0,
        credentials: Callable[[], dict[str, str]] | None = None,
        routes: Callable[[], dict[str, str]] | None = None,
    ) -> None:
        """``routes``: the environment variables that hold the function to its network's routes (by default none)."""
        verify_code(spec)
        self.spec = spec
        self._endpoint = endpoint
        self._credentials = credentials
        self._routes = routes
        self._started_routes: dict[str, str] = {}
        self._code_dir = work_dir / "code" / spec.code_sha256.replace("/", "_")
        self._tmp_dir = work_dir / "tmp" / f"{spec.name}-{index}"
        self._log_path = work_dir / "logs" / f"{spec.name}.log"
        self.pid_file = work_dir / "pids" / f"{spec.name}-{index}.pid"
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._responses: Any = None
        self._started_at = 0.0
        self.storage_enforced_by = ""

    def _extract(self) -> None:
        """Unpack the package once per hash; a folder left half-written by a crash is replaced."""
        with _EXTRACT_LOCK:
            if (self._code_dir / ".complete").exists():
                return
            self._code_dir.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=self._code_dir.parent))
            try:
                with zipfile.ZipFile(io.BytesIO(self.spec.code)) as archive:
                    archive.extractall(staging)
                (staging / ".complete").write_text(self.spec.code_sha256)
                shutil.rmtree(self._code_dir, ignore_errors=True)
                staging.rename(self._code_dir)
            finally:
                shutil.rmtree(staging, ignore_errors=True)

    def _prepare_tmp(self) -> None:
        unmount(self._tmp_dir)
        shutil.rmtree(self._tmp_dir, ignore_errors=True)
        mounted = mount_tmpfs(self._tmp_dir, self.spec.ephemeral_storage_mb)
        self.storage_enforced_by = "tmpfs" if mounted else "watchdog"

    def _start(self, routes: dict[str, str]) -> None:
        self._extract()
        self._prepare_tmp()
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        read_fd, write_fd = os.pipe()
        identity = self._credentials() if self._credentials else {
            "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
        }  # fmt: skip
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            **self.spec.environment,
            **identity,
            "PYTHONPATH": str(self._code_dir),
            "PYTHONNOUSERSITE": "1",
            "PYTHONUNBUFFERED": "1",
            "AWS_ENDPOINT_URL": self._endpoint,
            **routes,  # per-service endpoints win over AWS_ENDPOINT_URL in boto3
            "AWS_REGION": self.spec.region,
            "AWS_DEFAULT_REGION": self.spec.region,
            "AWS_LAMBDA_FUNCTION_NAME": self.spec.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.spec.memory_mb),
            "_HANDLER": self.spec.handler,
            "TAP_RESPONSE_FD": str(write_fd),
            "TAP_WORK_DIR": str(self._tmp_dir),
            "TMPDIR": str(self._tmp_dir),  # libraries' temporary files land in the bounded /tmp too
        }
        log = self._log_path.open("ab")
        self._process = subprocess.Popen(
            [sys.executable, "-P", str(BOOTSTRAP)], stdin=subprocess.PIPE, stdout=log, stderr=log, env=env,
            pass_fds=(write_fd,), cwd=self._code_dir, start_new_session=True,
        )  # fmt: skip
        os.close(write_fd)
        log.close()
        self._responses = os.fdopen(read_fd, "rb")
        self._started_at = time.monotonic()
        self._started_routes = routes
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.write_text(str(self._process.pid))
        init_seconds = max(INIT_TIMEOUT_SECONDS, self.spec.timeout_seconds)
        ready = self._await_reply(init_seconds, f"Init timed out after {init_seconds} seconds")
        if not ready.strip():
            self.stop()
            raise InvocationError(f"{self.spec.name}: Runtime exited during init; see {self._log_path}")

    def stop(self) -> None:
        """End the execution environment (and everything it started)."""
        if self._process is not None:
            with contextlib.suppress(OSError):
                os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()
            self._process = None
        if self._responses is not None:
            self._responses.close()
            self._responses = None
        self.pid_file.unlink(missing_ok=True)
        unmount(self._tmp_dir)

    def _limit_exceeded(self) -> str | None:
        assert self._process is not None
        if tree_rss_bytes(self._process.pid) > self.spec.memory_mb * 1024 * 1024:
            return f"Runtime exited with error: signal: killed (out of memory: above {self.spec.memory_mb} MB)"
        storage = self.spec.ephemeral_storage_mb * 1024 * 1024
        if self.storage_enforced_by == "watchdog" and folder_bytes(self._tmp_dir) > storage:
            return f"Runtime exited with error: /tmp above its {self.spec.ephemeral_storage_mb} MB"
        return None

    def _await_reply(self, seconds: float, timeout_message: str) -> bytes:
        """The next line from the environment, watching its limits; kills it at ``seconds``."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.stop()
                raise InvocationError(f"{self.spec.name}: {timeout_message}")
            ready, _, _ = select.select([self._responses], [], [], min(WATCH_SECONDS, left))
            if ready:
                return bytes(self._responses.readline())
            reason = self._limit_exceeded()
            if reason:
                self.stop()
                raise InvocationError(f"{self.spec.name}: {reason}")

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        """Invoke synchronously; raises :class:`InvocationError` on a crash, error, timeout or limit."""
        with self._lock:
            stale = time.monotonic() - self._started_at > CREDENTIAL_LIFETIME_SECONDS
            try:
                routes = self._routes() if self._routes else {}
            except Exception as error:  # the endpoint did not answer: this attempt fails like any invocation error
                raise InvocationError(f"{self.spec.name}: could not read the function's network: {error}") from error
            # On AWS a route removed (or added) takes effect at once; a warm environment's variables cannot change.
            rerouted = routes != self._started_routes
            if self._process is None or self._process.poll() is not None or stale or rerouted:
                self.stop()
                self._start(routes)
            assert self._process is not None and self._process.stdin is not None
            request = {"event": event, "function_arn": self.spec.arn, "timeout_seconds": self.spec.timeout_seconds}
            try:
                self._process.stdin.write((json.dumps(request) + "\n").encode())
                self._process.stdin.flush()
            except BrokenPipeError as error:
                self.stop()
                raise InvocationError(f"{self.spec.name}: runtime exited") from error
            line = self._await_reply(self.spec.timeout_seconds,
                                     f"Task timed out after {self.spec.timeout_seconds} seconds")  # fmt: skip
            if not line:
                self.stop()
                raise InvocationError(f"{self.spec.name}: Runtime exited during the invocation (killed)")
            reply = json.loads(line)
            if not reply.get("ok"):
                raise InvocationError(f"{reply.get('errorType')}: {reply.get('errorMessage')}")
            return reply.get("result") or {}
