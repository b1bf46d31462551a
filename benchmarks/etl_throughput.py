"""`tap etl convert` vs pandas (read_csv then to_parquet) on generated ~1 GB CSVs, a text-heavy "orders" file
and a numeric-heavy "sensors" file, pinned to one core; then ours alone on ~3 GB of orders. Prints wall time,
MB/s and peak RSS. Targets: at least as fast as pandas, at most a third of its peak memory, and under 450 MB
for both sizes.

Usage: python benchmarks/etl_throughput.py [SIZE_MB] [LARGE_SIZE_MB] [RUNS]
"""

from __future__ import annotations

import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _measure import median_of

TAP = str(Path(sys.executable).with_name("tap"))
PANDAS = "import pandas as pd, sys; pd.read_csv(sys.argv[1]).to_parquet(sys.argv[2], compression='zstd')"


CITIES = ["Oslo", "Lima", "Pune", "Dublin", "Singapore", "New York", "São Paulo", "Zürich"]
NOTES = ['""', '"gift wrap, leave at door"', '"call ""before"" delivery"', "express", '"fragile; glass"']


def order_rows(rng: random.Random, count: int) -> tuple[str, list[str]]:
    """Text-heavy: ids, names, a city, amounts, booleans, timestamps, a quoted note with commas and quotes."""
    rows = [
        f"{i},customer {rng.randint(1, 99999)},{rng.choice(CITIES)},{rng.random() * 1000:.2f},"
        f"{rng.choice(['true', 'false'])},2026-11-{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:"
        f"{rng.randint(0, 59):02d}:00,{rng.choice(NOTES)}\n"
        for i in range(count)
    ]
    return "Order ID,Customer Name,City,Amount,Is Paid,Ordered At,Note\n", rows


def sensor_rows(rng: random.Random, count: int) -> tuple[str, list[str]]:
    """Numeric-heavy: a device id, an ISO timestamp, five float readings, a status flag."""
    rows = [
        f"{i},dev-{rng.randint(1, 500):04d},2026-11-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:"
        f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d},{rng.gauss(20, 5):.3f},{rng.gauss(50, 10):.3f},"
        f"{rng.uniform(900, 1100):.2f},{rng.random():.4f},{rng.gauss(0, 1):.5f},{rng.choice(['true', 'false'])}\n"
        for i in range(count)
    ]
    return "Reading ID,Device,Measured At,Temperature C,Humidity,Pressure hPa,Battery,Drift,Ok\n", rows


DATASETS = {"orders": order_rows, "sensors": sensor_rows}


def generate_csv(path: Path, size_mb: int, dataset: str = "orders") -> None:
    """About ``size_mb`` of CSV: one generated block of 20,000 rows repeated."""
    header, rows = DATASETS[dataset](random.Random(42), 20000)
    block = "".join(rows).encode()
    with path.open("wb") as handle:
        handle.write(header.encode())
        while handle.tell() < size_mb * 2**20:
            handle.write(block)


def measure(label: str, command: list[str], size_mb: float, runs: int = 1) -> tuple[float, float]:
    """Median wall time and peak RSS of ``runs`` runs pinned to core 0, printed as one row."""
    wall, rss = median_of(runs, ["taskset", "-c", "0", *command])
    print(f"{label:<32} {wall:>8.1f} s {size_mb / wall:>8.1f} MB/s {rss:>8.0f} MB peak RSS   (median of {runs})")
    return wall, rss


def compare(work: Path, dataset: str, size_mb: int, runs: int) -> None:
    source = work / f"{dataset}.csv"
    generate_csv(source, size_mb, dataset)
    actual = source.stat().st_size / 2**20
    print(f"\n{dataset}: {actual:.0f} MB CSV, one core (taskset -c 0)")
    ours = measure("tap etl convert", [TAP, "etl", "convert", str(source), f"{work}/ours.parquet"], actual, runs)
    pandas_command = [sys.executable, "-c", PANDAS, str(source), f"{work}/pandas.parquet"]
    pandas = measure("pandas read_csv + to_parquet", pandas_command, actual, runs)
    speed, memory = pandas[0] / ours[0], ours[1] / pandas[1]
    print(f"{dataset}: speed (pandas wall / ours) {speed:.2f}x; memory (ours / pandas) {memory:.2f}")
    source.unlink()


def main(size_mb: int = 1024, large_mb: int = 3072, runs: int = 3) -> None:
    with tempfile.TemporaryDirectory(dir=".") as name:
        work = Path(name)
        for dataset in DATASETS:
            compare(work, dataset, size_mb, runs)
        large = work / "large.csv"
        generate_csv(large, large_mb)
        big = large.stat().st_size / 2**20
        print(f"\norders: {big:.0f} MB CSV, ours only")
        measure("tap etl convert", [TAP, "etl", "convert", str(large), f"{work}/large.parquet"], big)


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:4]))
