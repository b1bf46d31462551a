"""Wall time and peak RSS (whole process tree) of a command, sampled every 20 ms."""

from __future__ import annotations

import statistics
import subprocess
import time
from collections.abc import Mapping, Sequence

import psutil


def run_measured(command: Sequence[str], env: Mapping[str, str] | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB of the process and its children)."""
    started = time.monotonic()
    process = psutil.Popen(list(command), env=dict(env) if env else None, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)  # fmt: skip
    peak = 0
    while process.poll() is None:
        try:
            tree = [process, *process.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.02)
    wall = time.monotonic() - started
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {process.returncode}")
    return wall, peak / 2**20


def median_of(runs: int, command: Sequence[str], env: Mapping[str, str] | None = None) -> tuple[float, float]:
    """Median wall time and median peak RSS over ``runs`` runs."""
    results = [run_measured(command, env) for _ in range(runs)]
    return statistics.median(r[0] for r in results), statistics.median(r[1] for r in results)
