"""`tap etl convert` vs pandas (read_csv then to_parquet) on a generated ~1 GB CSV, pinned to one core,
then ours alone on ~3 GB. Prints wall time, MB/s and peak RSS. Targets: at least as fast as pandas, at most
a third of its peak memory, and under 450 MB for both sizes.

Usage: python benchmarks/etl_throughput.py [SIZE_MB] [LARGE_SIZE_MB]
"""

from __future__ import annotations

import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _measure import run_measured

TAP = str(Path(sys.executable).with_name("tap"))
PANDAS = "import pandas as pd, sys; pd.read_csv(sys.argv[1]).to_parquet(sys.argv[2], compression='zstd')"


def generate_csv(path: Path, size_mb: int) -> None:
    rng = random.Random(42)
    rows = [
        f"{i},customer {rng.randint(1, 99999)},{rng.random() * 1000:.2f},{rng.choice(['true', 'false'])},"
        f"2026-11-{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00\n"
        for i in range(20000)
    ]
    block = "".join(rows).encode()
    with path.open("wb") as handle:
        handle.write(b"Order ID,Customer Name,Amount,Is Paid,Ordered At\n")
        while handle.tell() < size_mb * 2**20:
            handle.write(block)


def measure(label: str, command: list[str], size_mb: float) -> tuple[float, float]:
    wall, rss = run_measured(["taskset", "-c", "0", *command])
    print(f"{label:<28} {wall:>8.1f} s {size_mb / wall:>8.1f} MB/s {rss:>8.0f} MB peak RSS")
    return wall, rss


def main(size_mb: int = 1024, large_mb: int = 3072) -> None:
    with tempfile.TemporaryDirectory(dir=".") as work:
        source = Path(work) / "data.csv"
        generate_csv(source, size_mb)
        actual = source.stat().st_size / 2**20
        print(f"input: {actual:.0f} MB CSV, one core (taskset -c 0)")
        ours = measure("tap etl convert", [TAP, "etl", "convert", str(source), f"{work}/ours.parquet"], actual)
        pandas = measure("pandas read_csv+to_parquet", [sys.executable, "-c", PANDAS, str(source),
                                                        f"{work}/pandas.parquet"], actual)  # fmt: skip
        print(
            f"speed ratio (pandas wall / ours): {pandas[0] / ours[0]:.2f}x; memory ratio (ours / pandas): "
            f"{ours[1] / pandas[1]:.2f}"
        )
        source.unlink()
        large = Path(work) / "large.csv"
        generate_csv(large, large_mb)
        big = large.stat().st_size / 2**20
        measure(f"tap etl convert ({big:.0f} MB)", [TAP, "etl", "convert", str(large), f"{work}/large.parquet"], big)


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
