"""``convert_file``: one local CSV / JSON Lines / JSON array (optionally gzip) file to typed Parquet."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb

from analytics_platform.etl.contracts import DatasetContract
from analytics_platform.etl.exceptions import (
    DiskFullError,
    NoRowsError,
    PermanentError,
    RejectShareExceededError,
    TimeBudgetExceededError,
)
from analytics_platform.etl.transform.contract import apply_contract, conform
from analytics_platform.etl.transform.csv_reader import read_csv
from analytics_platform.etl.transform.errors import classify_duckdb_error, disk_full_errors
from analytics_platform.etl.transform.json_reader import read_json
from analytics_platform.etl.transform.model import CSV, ConversionResult, Limits, ReadResult, Source
from analytics_platform.etl.transform.session import Watchdog, duckdb_session
from analytics_platform.etl.transform.sniff import sniff


def _result(
    path: Path, output: Path, quarantine: Path, kind: str, compressed: bool, read: ReadResult
) -> ConversionResult:
    rows_in = read.rows_out + read.rejected
    return ConversionResult(
        input_format=kind, compressed=compressed, rows_in=rows_in, rows_out=read.rows_out,
        rows_rejected=read.rejected, bytes_in=path.stat().st_size,
        bytes_out=output.stat().st_size if output.exists() else 0, output_path=output,
        quarantine_path=quarantine if read.rejected and quarantine.exists() else None, schema=read.schema,
    )  # fmt: skip


def _judge(result: ConversionResult, limits: Limits) -> PermanentError | None:
    """Whether the converted file can be a dataset: it has rows, and few enough of them were rejected."""
    if result.rows_in == 0:
        return NoRowsError("no data rows (header only or empty document)")
    share = result.rows_rejected / result.rows_in
    if result.rows_rejected and share > limits.max_reject_ratio:
        return RejectShareExceededError(
            f"{result.rows_rejected} of {result.rows_in} rows rejected ({share:.0%}), above the allowed "
            f"{limits.max_reject_ratio:.0%}"
        )
    return None


def convert_file(
    path: Path,
    output: Path,
    *,
    name: str | None = None,
    limits: Limits | None = None,
    work_dir: Path | None = None,
    contract: DatasetContract | None = None,
) -> ConversionResult:
    """Convert one local file to Parquet at ``output``.

    ``name`` is the original object name (its extension decides the format together with the content). Bad
    input does not raise: the result's ``failure`` says why the file cannot be a dataset, and no Parquet is
    left behind. With a dataset ``contract``, rows breaking it go to quarantine with the rule they broke (and
    count against ``max_reject_ratio``); a file missing a required column fails.
    Raises :class:`TimeBudgetExceededError` at ``limits.deadline`` and :class:`DiskFullError`
    when the disk fills up (both transient), with every output removed.
    """
    limits = limits or Limits()
    quarantine = output.with_name(output.stem + ".rejects.jsonl")
    work = work_dir or output.parent / f".{output.name}.work"
    try:
        with disk_full_errors():  # ENOSPC wherever it strikes (work dir, sample, outputs) is a full disk
            return _convert(path, output, quarantine, name, limits, work, contract)
    except (TimeBudgetExceededError, DiskFullError):
        _remove(output, quarantine)
        raise
    finally:
        if work_dir is None:  # our own scratch space (the JSON Lines copy, spill files); a caller's is theirs
            shutil.rmtree(work, ignore_errors=True)


def _convert(
    path: Path, output: Path, quarantine: Path, name: str | None, limits: Limits, work: Path,
    contract: DatasetContract | None,
) -> ConversionResult:  # fmt: skip
    work.mkdir(parents=True, exist_ok=True)
    for stale in (output, quarantine):
        stale.unlink(missing_ok=True)
    empty = ReadResult(0, 0, [])
    try:
        sniffed = sniff(path, name)
    except PermanentError as error:
        result = _result(path, output, quarantine, "unknown", False, empty)
        result.failure = error
        return result
    source = Source(path, sniffed, limits, work, output, quarantine)
    watchdog = Watchdog(limits.deadline)
    failure: PermanentError | None = None
    read = empty
    try:
        with duckdb_session(limits, work / "duckdb-spill") as con, watchdog.guarding(con):
            read = read_csv(con, source, watchdog) if sniffed.kind == CSV else read_json(con, source, watchdog)
            if contract is not None and read.rows_out:
                kept, broken, schema = apply_contract(con, output, quarantine, contract)
                read = ReadResult(kept, read.rejected + broken, schema)
    except PermanentError as error:
        failure = error
    except duckdb.Error as error:
        if watchdog.fired:
            raise watchdog.error() from error
        failure = classify_duckdb_error(error)  # raises DiskFullError for a full disk
    result = _result(path, output, quarantine, sniffed.kind, sniffed.compressed, read)
    result.failure = failure or _judge(result, limits)
    if result.failure is not None:
        output.unlink(missing_ok=True)
        result.bytes_out = 0
    if not result.rows_rejected:
        quarantine.unlink(missing_ok=True)
        result.quarantine_path = None
    return result


def _remove(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def conform_file(path: Path, table_types: dict[str, str], limits: Limits, work: Path) -> list[tuple[str, str]]:
    """Cast a converted file's columns to its dataset table's wider types (in place); returns its new schema."""
    with disk_full_errors(), duckdb_session(limits, work / "duckdb-spill") as con:
        return conform(con, path, table_types)
