"""Run a command under a pseudo-terminal, as a user's shell would, and collect what it drew."""

from __future__ import annotations

import os
import select
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


def run_in_pty(
    argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, timeout: float = 600, columns: int = 160
) -> tuple[int, str]:
    """``(exit code, everything written to the terminal)``; the process is killed after ``timeout`` seconds."""
    master, slave = os.openpty()
    os.set_blocking(master, False)
    environment = {**env, "COLUMNS": str(columns), "LINES": "40", "TERM": "xterm-256color"}
    environment.pop("NO_COLOR", None)
    process = subprocess.Popen(
        list(argv), stdin=slave, stdout=slave, stderr=slave, env=environment, cwd=cwd, close_fds=True
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                process.kill()
                raise TimeoutError(f"{' '.join(argv)} still running after {timeout}s")
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the terminal's other side closed
                    data = b""
                if data:
                    chunks.append(data)
                    continue
            if process.poll() is not None and not ready:
                break
            if ready and not data:
                break
        return process.wait(), b"".join(chunks).decode("utf-8", "replace")
    finally:
        os.close(master)
