"""`tap etl convert` vs pandas (read_csv then to_parquet) on generated ~1 GB CSVs, a text-heavy "orders" file
and a numeric-heavy "sensors" file, pinned to one core; then ours alone on ~3 GB of orders. Prints wall time,
MB/s and peak RSS. Targets: at least as fast as pandas, at most a third of its peak memory, and under 450 MB
for both sizes.

pandas runs twice: as usually written (``read_csv`` leaves timestamp columns as text) and with ``parse_dates``
on the timestamp column, which gives the same column types as ours; the script checks that it does by
comparing the Parquet schemas.

The transform of commit 2917899 (before columns were widened instead of rows rejected, issue 9) runs on the
same files as "before": the widening must not make the fast path more than 10% slower, and the script prints
the ratio.

Usage: python benchmarks/etl_throughput.py [--quick] [SIZE_MB] [LARGE_SIZE_MB] [RUNS]

``--quick`` is a fast check: 64 MB files, one run each, no large file (numbers given still override it).
"""

from __future__ import annotations

import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _measure import median_of

TAP = str(Path(sys.executable).with_name("tap"))
#: The transform before issue 9's widening, run as the "before" of the fast path.
BEFORE_COMMIT = "2917899"
BEFORE = (
    "import importlib.util, sys; from pathlib import Path; "
    "spec = importlib.util.spec_from_file_location('transform_before', sys.argv[3]); "
    "module = importlib.util.module_from_spec(spec); sys.modules['transform_before'] = module; "
    "spec.loader.exec_module(module); "
    "module.convert_file(Path(sys.argv[1]), Path(sys.argv[2]), name=Path(sys.argv[1]).name, "
    "limits=module.Limits(memory_mb=307))"
)

AFTER = (
    "import sys; from pathlib import Path; from analytics_platform.etl.transform import Limits, convert_file; "
    "result = convert_file(Path(sys.argv[1]), Path(sys.argv[2]), name=Path(sys.argv[1]).name, "
    "limits=Limits(memory_mb=307)); assert result.failure is None, result.failure"
)


def before_module(work: Path) -> Path:
    """The transform module of :data:`BEFORE_COMMIT`, from git, as a file."""
    import subprocess

    path = work / "transform_before.py"
    path.write_text(subprocess.run(["git", "show", f"{BEFORE_COMMIT}:src/analytics_platform/etl/transform.py"],
                                   capture_output=True, text=True, check=True).stdout)  # fmt: skip
    return path


PANDAS = "import pandas as pd, sys; pd.read_csv(sys.argv[1]).to_parquet(sys.argv[2], compression='zstd')"
PANDAS_TYPED = (
    "import pandas as pd, sys; "
    "pd.read_csv(sys.argv[1], parse_dates=[sys.argv[3]]).to_parquet(sys.argv[2], compression='zstd')"
)


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
TIMESTAMP_COLUMNS = {"orders": "Ordered At", "sensors": "Measured At"}


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


def column_kinds(path: Path) -> list[str]:
    """The Parquet file's column types, by kind (names differ: ours are lower case)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    checks = [("timestamp", pa.types.is_timestamp), ("integer", pa.types.is_integer),
              ("float", pa.types.is_floating), ("boolean", pa.types.is_boolean)]  # fmt: skip
    return [next((kind for kind, check in checks if check(f.type)), "text") for f in pq.read_schema(path)]


def compare(work: Path, dataset: str, size_mb: int, runs: int) -> None:
    source = work / f"{dataset}.csv"
    generate_csv(source, size_mb, dataset)
    actual = source.stat().st_size / 2**20
    print(f"\n{dataset}: {actual:.0f} MB CSV, one core (taskset -c 0)")
    ours_out, plain_out, typed_out = work / "ours.parquet", work / "pandas.parquet", work / "pandas-typed.parquet"
    ours = measure("tap etl convert", [TAP, "etl", "convert", str(source), str(ours_out)], actual, runs)
    before_command = [sys.executable, "-c", BEFORE, str(source), str(work / "before.parquet"), str(before_module(work))]
    before = measure(f"transform at {BEFORE_COMMIT} (before)", before_command, actual, runs)
    after_command = [sys.executable, "-c", AFTER, str(source), str(work / "after.parquet")]
    after = measure("transform now (after)", after_command, actual, runs)
    print(f"{dataset}: fast path after / before widening: {after[0] / before[0]:.2f}x time "
          f"(limit 1.10x), {after[1] / before[1]:.2f}x memory")  # fmt: skip
    plain = measure("pandas read_csv + to_parquet", [sys.executable, "-c", PANDAS, str(source), str(plain_out)],
                    actual, runs)  # fmt: skip
    typed_command = [sys.executable, "-c", PANDAS_TYPED, str(source), str(typed_out), TIMESTAMP_COLUMNS[dataset]]
    typed = measure("pandas, same types (parse_dates)", typed_command, actual, runs)
    kinds = column_kinds(ours_out)
    for label, output, (wall, rss) in (("pandas", plain_out, plain), ("pandas, same types", typed_out, typed)):
        pairs = enumerate(zip(kinds, column_kinds(output), strict=True), start=1)
        differences = [f"column {i}: {a} vs {b}" for i, (a, b) in pairs if a != b]
        types = f"types differ (ours vs pandas: {'; '.join(differences)})" if differences else "same column types"
        print(f"{dataset} vs {label}: speed (pandas wall / ours) {wall / ours[0]:.2f}x; "
              f"memory (ours / pandas) {ours[1] / rss:.2f}; {types}")  # fmt: skip
    source.unlink()


#: (SIZE_MB, LARGE_SIZE_MB, RUNS) of the full benchmark and of ``--quick``; a large size of 0 skips that file.
FULL, QUICK = (1024, 3072, 3), (64, 0, 1)


def main(size_mb: int = FULL[0], large_mb: int = FULL[1], runs: int = FULL[2]) -> None:
    with tempfile.TemporaryDirectory(dir=".") as name:
        work = Path(name)
        for dataset in DATASETS:
            compare(work, dataset, size_mb, runs)
        if not large_mb:
            return
        large = work / "large.csv"
        generate_csv(large, large_mb)
        big = large.stat().st_size / 2**20
        print(f"\norders: {big:.0f} MB CSV, ours only")
        measure("tap etl convert", [TAP, "etl", "convert", str(large), f"{work}/large.parquet"], big)


if __name__ == "__main__":
    arguments = sys.argv[1:]
    defaults = QUICK if "--quick" in arguments else FULL
    given = [int(a) for a in arguments if a != "--quick"][:3]
    main(*given, *defaults[len(given) :])
