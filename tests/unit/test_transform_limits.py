"""The transform's limits: the deadline watchdog against DuckDB's idle interrupts, the disk estimate, disk errors."""

from __future__ import annotations

import errno
import gzip
import json
import time
from pathlib import Path

import duckdb
import pytest

from analytics_platform.etl.exceptions import DiskFullError
from analytics_platform.etl.transform import convert_file, csv_reader, disk, disk_needed
from analytics_platform.etl.transform.session import Watchdog

#: About 6 s on one core when nothing interrupts it.
LONG_QUERY = "SELECT sum(hash(i)) FROM range(1000000000) t(i)"


# --- deadline -------------------------------------------------------------------------------------------------
def test_a_deadline_that_passes_while_duckdb_is_idle_still_stops_its_next_statement() -> None:
    # GIVEN a watchdog whose deadline passes while no statement runs (between two passes, or while the Python
    # JSON Lines splitter works): DuckDB drops an interrupt that arrives while it is idle
    con = duckdb.connect(config={"threads": 1})
    watchdog = Watchdog(time.monotonic() + 0.05)
    # WHEN a long statement starts after the deadline
    with pytest.raises(duckdb.InterruptException), watchdog.guarding(con):
        time.sleep(0.5)
        con.execute(LONG_QUERY).fetchall()
    # THEN it is interrupted (DuckDB raised instead of returning the query's rows), not left to run to its end
    assert watchdog.fired


# --- disk estimate --------------------------------------------------------------------------------------------
def test_disk_needed_counts_every_member_of_a_multi_member_gzip(tmp_path: Path) -> None:
    # GIVEN gzip JSON Lines in two members (as pigz, bgzip or `cat a.gz b.gz` write them), the last one empty,
    # so the trailer (ISIZE) describes only the last member: 0 bytes
    content = b"".join(json.dumps({"i": i, "text": f"row {i} " * 4}).encode() + b"\n" for i in range(20_000))
    source = tmp_path / "in.jsonl.gz"
    source.write_bytes(gzip.compress(content) + gzip.compress(b""))
    # WHEN the disk it needs is estimated
    needed = disk_needed(source, "in.jsonl.gz")
    # THEN the whole content is counted, twice (Parquet and spill, plus the splitter's clean copy)
    assert needed == 2 * len(content)


@pytest.mark.parametrize(
    ("compressed_mb", "trailer_mb", "trusted"),
    [
        (100, 400, True),  # a usual 4:1 file: ISIZE is its size
        (600, 1536, False),  # 1.5 GiB or 5.5 GiB of content: both are plausible ratios, so count instead
        (50, 10, False),  # less content than compressed bytes: another member, or a size past 4 GiB
    ],
)
def test_the_gzip_trailer_is_trusted_only_where_it_cannot_have_wrapped(
    compressed_mb: int, trailer_mb: int, trusted: bool
) -> None:
    # GIVEN a gzip file's size and its trailer's ISIZE (the content size modulo 4 GiB, last member only)
    # WHEN deciding whether ISIZE is the content's size THEN only a single-member, unwrapped reading is taken
    assert disk.trailer_is_content_size(compressed_mb * 2**20, trailer_mb * 2**20) is trusted


# --- disk errors ----------------------------------------------------------------------------------------------
def test_duckdb_running_out_of_disk_is_a_disk_full_error_with_outputs_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a CSV and a DuckDB whose Parquet write meets a full disk
    source = tmp_path / "in.csv"
    source.write_text("a,b\n1,2\n")
    output = tmp_path / "out.parquet"

    def no_space(_con: object, _sql: str, target: Path) -> int:
        target.write_bytes(b"PAR1 partial")
        raise duckdb.IOException(f'IO Error: Could not write file "{target}": No space left on device')

    monkeypatch.setattr(csv_reader, "copy_to_parquet", no_space)
    # WHEN converted THEN the transient DiskFullError names the setting to raise, and no partial output is left
    with pytest.raises(DiskFullError, match=r"ephemeral storage is full.*ephemeral_storage_mb"):
        convert_file(source, output, name="in.csv")
    assert not output.exists()


def test_a_full_disk_before_reading_is_a_disk_full_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a disk so full that not even the work directory can be made
    source = tmp_path / "in.csv"
    source.write_text("a,b\n1,2\n")

    def full(*_args: object, **_kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "mkdir", full)
    # WHEN converted THEN it says the disk is full (transient), not an unexplained OSError
    with pytest.raises(DiskFullError, match="ephemeral_storage_mb"):
        convert_file(source, tmp_path / "out.parquet", name="in.csv", work_dir=tmp_path / "work")


def test_an_io_error_on_a_plain_file_is_not_reported_as_a_corrupt_gzip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN uncompressed JSON Lines and a disk that fails the clean copy's write with EIO
    source = tmp_path / "in.jsonl"
    source.write_text('{"a": 1}\n' * 10)
    real_open = Path.open

    def failing_open(self: Path, mode: str = "r", *args: object, **kwargs: object) -> object:
        if self.name == "clean.jsonl":
            raise OSError(errno.EIO, "Input/output error")
        return real_open(self, mode, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "open", failing_open)
    # WHEN converted THEN the unexpected error propagates (the worker retries it) instead of failing the job as
    # a "corrupt gzip stream" it is not
    with pytest.raises(OSError, match="Input/output error") as raised:
        convert_file(source, tmp_path / "out.parquet", name="in.jsonl")
    assert raised.type is OSError
