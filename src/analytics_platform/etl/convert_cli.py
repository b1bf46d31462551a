"""``tap etl convert``: exactly the worker's transform on a local file, with its job summary."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from analytics_platform.etl.exceptions import TransientError
from analytics_platform.etl.settings import Settings
from analytics_platform.etl.transform import Limits, convert_file


def default_output(source: Path) -> Path:
    """``data/orders.csv.gz`` -> ``data/orders.parquet``."""
    name = source.name
    for extension in (".gz", ".gzip"):
        if name.lower().endswith(extension):
            name = name[: -len(extension)]
    return source.with_name(Path(name).stem + ".parquet")


def convert_command(input_path: str, output_path: str | None, *, max_reject_ratio: float, as_json: bool) -> int:
    """Convert and print the summary; exit 0 on success, 1 when the worker would mark the job FAILED."""
    source = Path(input_path)
    if not source.is_file():
        print(f"error: {source} does not exist or is not a file", file=sys.stderr)
        return 2
    target = Path(output_path) if output_path else default_output(source)
    if target.resolve() == source.resolve():
        # The transform writes its output in place: the input would be gone, and the worker never does that.
        print(f"error: the output {target} is the input file; name another output", file=sys.stderr)
        return 2
    if not target.parent.is_dir():
        print(f"error: the output's folder {target.parent} does not exist", file=sys.stderr)
        return 2
    # The worker's own memory cap, for the default function size.
    limits = Limits(
        memory_mb=Settings(region="", bucket="", table="").duckdb_memory_mb, max_reject_ratio=max_reject_ratio
    )
    with tempfile.TemporaryDirectory(prefix="tap-convert-") as work:
        try:
            result = convert_file(source, target, name=source.name, limits=limits, work_dir=Path(work))
        except TransientError as error:  # the disk filled up: nothing about the file itself
            print(f"error: {error}", file=sys.stderr)
            return 2
    if result.failure is not None:
        failure = result.failure
        summary = {"status": "FAILED", "error_type": type(failure).__name__, "error": str(failure)}
        print(json.dumps(summary, indent=2) if as_json else f"FAILED ({type(failure).__name__}): {failure}")
        return 1
    summary = {"status": "SUCCEEDED", **result.summary()}
    if as_json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"SUCCEEDED  {source} -> {target}")
    print(f"  format:   {summary['format']}")
    print(f"  rows:     {result.rows_in} in, {result.rows_out} out, {result.rows_rejected} rejected")
    print(f"  size:     {result.bytes_in} bytes in, {result.bytes_out} bytes Parquet (zstd)")
    if result.quarantine_path:
        print(f"  rejects:  {result.quarantine_path}")
    print("  schema:")
    for name, kind in result.schema:
        print(f"    {name:<32} {kind}")
    return 0
