"""``tap etl convert``: the worker's transform on a local file, no AWS involved."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from analytics_platform.cli.options import Command, Subparsers, add_command, json_option, reject_ratio
from analytics_platform.exit_codes import ExitCode
from analytics_platform.progress import reading

if TYPE_CHECKING:
    from analytics_platform.etl.transform.model import ConversionResult


def default_output(source: Path) -> Path:
    """``data/orders.csv.gz`` -> ``data/orders.parquet``."""
    name = source.name
    for extension in (".gz", ".gzip"):
        if name.lower().endswith(extension):
            name = name[: -len(extension)]
    return source.with_name(Path(name).stem + ".parquet")


def _output_refusal(path: Path) -> str | None:
    """Why ``path`` must not be written over (None: it may): only a missing file or an earlier Parquet or rejects
    file of a conversion is replaced, never a folder, a device or another file."""
    if not path.exists() and not path.is_symlink():
        return None
    if not path.is_file() or path.is_symlink():
        return f"{path} exists and is not a regular file; name another output"
    if path.suffix.lower() not in {".parquet", ".jsonl"} or (path.suffix.lower() == ".jsonl" and
                                                              not path.name.endswith(".rejects.jsonl")):  # fmt: skip
        return f"{path} exists and is not a Parquet output of tap etl convert; name a new .parquet output"
    return None


def _convert_in_place_of(
    source: Path, target: Path, rejects: Path, *, max_reject_ratio: float, as_json: bool
) -> ConversionResult | None:
    """Convert in a work folder and move the output (and its rejects) into place only when it succeeded: a failure
    writes nothing and removes nothing where the user pointed. None when the disk filled up (said on stderr)."""
    from analytics_platform.etl.exceptions import TransientError
    from analytics_platform.etl.settings import Settings
    from analytics_platform.etl.transform import Limits, convert_file

    # The worker's own memory cap, for the default function size.
    limits = Limits(
        memory_mb=Settings(region="", bucket="", table="").duckdb_memory_mb, max_reject_ratio=max_reject_ratio
    )
    with tempfile.TemporaryDirectory(prefix="tap-convert-") as work:
        staged = Path(work) / "out" / target.name
        staged.parent.mkdir()
        try:
            with reading(source, f"converting {source.name}", live=False if as_json else None):
                result = convert_file(source, staged, name=source.name, limits=limits, work_dir=Path(work))
        except TransientError as error:  # the disk filled up: nothing about the file itself
            print(f"error: {error}", file=sys.stderr)
            return None
        if result.failure is None:
            shutil.move(staged, target)
            if result.quarantine_path:
                shutil.move(result.quarantine_path, rejects)
                result.quarantine_path = rejects
            else:
                rejects.unlink(missing_ok=True)  # an earlier conversion's: not this output's
            result.output_path = target
    return result


def convert_command(input_path: str, output_path: str | None, *, max_reject_ratio: float, as_json: bool) -> int:
    """Convert and print the summary; exit 0 on success, 1 when the worker would mark the job FAILED."""
    source = Path(input_path)
    if not source.is_file():
        print(f"error: {source} does not exist or is not a file", file=sys.stderr)
        return ExitCode.USAGE
    target = Path(output_path) if output_path else default_output(source)
    if target.resolve() == source.resolve():
        # The transform writes its output in place: the input would be gone, and the worker never does that.
        print(f"error: the output {target} is the input file; name another output", file=sys.stderr)
        return ExitCode.USAGE
    if not target.parent.is_dir():
        print(f"error: the output's folder {target.parent} does not exist", file=sys.stderr)
        return ExitCode.USAGE
    rejects = target.with_name(target.stem + ".rejects.jsonl")
    refusal = _output_refusal(target) or _output_refusal(rejects)
    if refusal:
        print(f"error: {refusal}", file=sys.stderr)
        return ExitCode.USAGE
    result = _convert_in_place_of(source, target, rejects, max_reject_ratio=max_reject_ratio, as_json=as_json)
    if result is None:
        return ExitCode.FAILED
    from analytics_platform.etl.job_values import JobStatus

    if result.failure is not None:
        failure = result.failure
        summary = {"status": JobStatus.FAILED.value, "error_type": type(failure).__name__, "error": str(failure)}
        text = f"{summary['status']} ({summary['error_type']}): {failure}"
        print(json.dumps(summary, indent=2) if as_json else text)
        return ExitCode.FAILED
    summary = {"status": JobStatus.SUCCEEDED.value, **result.summary()}
    if as_json:
        print(json.dumps(summary, indent=2))
        return ExitCode.OK
    print(f"{JobStatus.SUCCEEDED.value}  {source} -> {target}")
    print(f"  format:   {summary['format']}")
    print(f"  rows:     {result.rows_in} in, {result.rows_out} out, {result.rows_rejected} rejected")
    print(f"  size:     {result.bytes_in} bytes in, {result.bytes_out} bytes Parquet (zstd)")
    if result.quarantine_path:
        print(f"  rejects:  {result.quarantine_path}")
    print("  schema:")
    for name, kind in result.schema:
        print(f"    {name:<32} {kind}")
    return ExitCode.OK


def _cmd_etl_convert(args: argparse.Namespace) -> int:
    return convert_command(args.input, args.output, max_reject_ratio=args.max_reject_ratio, as_json=args.json)


ETL = Command("etl", None, "ETL worker tools that run on this machine.")
CONVERT = Command(
    "convert", _cmd_etl_convert,
    "Run the worker's transform on a local file: the same typing, rejects, limits and Parquet as in the cloud.",
    examples=("tap etl convert orders.csv", "tap etl convert clicks.jsonl.gz clicks.parquet --json",
              "tap etl convert sensors.csv --max-reject-ratio 0"),
    details="Exit 0 with the Parquet written, 1 when the file is refused (the reason is printed), 2 on a bad "
    "argument (nothing is written).",
)  # fmt: skip


def register(sub: Subparsers) -> None:
    etl = add_command(sub, ETL)
    etl_sub = etl.add_subparsers(dest="etl_command", required=True, metavar="{convert}")
    convert = add_command(etl_sub, CONVERT)
    convert.add_argument("input", help="CSV / JSON Lines / JSON array file, optionally gzip")
    convert.add_argument("output", nargs="?", help="Parquet output (default: INPUT stem + .parquet)")
    convert.add_argument(
        "--max-reject-ratio", type=reject_ratio, default=0.1, metavar="RATIO",
        help="0.0 to 0.99, as the worker setting (default 0.1)",
    )  # fmt: skip
    json_option(convert, "the job summary")
