"""The transform on its own: late type drift widens columns, the deadline stops it, a full disk says so."""

from __future__ import annotations

import errno
import gzip
import json
import re
import time
from pathlib import Path

import duckdb
import pytest

from analytics_platform.etl.exceptions import (
    DiskFullError,
    MalformedContentError,
    RejectShareExceededError,
    TimeBudgetExceededError,
)
from analytics_platform.etl.transform import Limits, convert_file, disk_needed


def rows_of(path: Path, sql: str = "SELECT count(*) FROM t") -> list[tuple[object, ...]]:
    con = duckdb.connect()
    con.execute(f"CREATE VIEW t AS SELECT * FROM '{path}'")
    return con.execute(sql).fetchall()


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# --- widening, not rejecting ----------------------------------------------------------------------------------
def test_a_late_text_value_in_an_integer_column_widens_it(tmp_path: Path) -> None:
    # GIVEN 30,000 integer ids, then a valid row whose id is text (after DuckDB's 20,480-row sample)
    lines = "".join(f"{i},n{i}\n" for i in range(30_000)) + "30000,abc\nx1,z\n"
    source = write(tmp_path / "in.csv", "id,name\n" + lines)
    # WHEN converted
    result = convert_file(source, tmp_path / "out.parquet", name="in.csv", limits=Limits(max_reject_ratio=0))
    # THEN every row is kept and the column is text
    assert result.failure is None and (result.rows_out, result.rows_rejected) == (30_002, 0)
    assert dict(result.schema)["id"] == "VARCHAR"
    assert rows_of(result.output_path, "SELECT name FROM t WHERE id = 'x1'") == [("z",)]


def test_a_late_decimal_widens_an_integer_column_to_double(tmp_path: Path) -> None:
    source = write(tmp_path / "in.csv", "id,amount\n" + "".join(f"{i},{i}\n" for i in range(25_000)) + "25000,2.5\n")
    result = convert_file(source, tmp_path / "out.parquet", name="in.csv", limits=Limits(max_reject_ratio=0))
    assert result.failure is None and result.rows_out == 25_001 and dict(result.schema)["amount"] == "DOUBLE"
    assert rows_of(result.output_path, "SELECT sum(amount) FROM t")[0][0] == pytest.approx(sum(range(25_000)) + 2.5)


def test_a_code_column_turning_alphanumeric_late_succeeds_instead_of_exceeding_the_reject_share(
    tmp_path: Path,
) -> None:
    # GIVEN numeric codes for 25,000 rows, then 5,000 alphanumeric ones (17% of the file)
    body = "".join(f"{i},{i % 9}\n" for i in range(25_000)) + "".join(f"A{i},{i % 9}\n" for i in range(5_000))
    source = write(tmp_path / "in.csv", "code,value\n" + body)
    # WHEN converted with the default reject share of 10% THEN it succeeds with no rejects
    result = convert_file(source, tmp_path / "out.parquet", name="in.csv")
    assert result.failure is None and (result.rows_out, result.rows_rejected) == (30_000, 0)


def test_a_date_column_with_a_late_timestamp_keeps_the_row(tmp_path: Path) -> None:
    lines = "".join(f"{i},2026-01-{i % 28 + 1:02d}\n" for i in range(21_000)) + "21000,2026-02-01 10:30:00\n"
    source = write(tmp_path / "in.csv", "id,day\n" + lines)
    result = convert_file(source, tmp_path / "out.parquet", name="in.csv", limits=Limits(max_reject_ratio=0))
    assert result.failure is None and result.rows_out == 21_001
    assert dict(result.schema)["day"] == "TIMESTAMP"
    late = rows_of(result.output_path, "SELECT CAST(day AS VARCHAR) FROM t WHERE id = 21000")
    assert late == [("2026-02-01 10:30:00",)]


def test_only_structurally_broken_rows_go_to_quarantine(tmp_path: Path) -> None:
    # GIVEN late type drift AND one ragged row
    lines = "".join(f"{i},{i}\n" for i in range(22_000)) + "late,text\n" + "1,2,3\n" + "7,8\n"
    source = write(tmp_path / "in.csv", "a,b\n" + lines)
    # WHEN converted THEN only the ragged row is rejected, with its reason
    result = convert_file(source, tmp_path / "out.parquet", name="in.csv")
    assert result.failure is None and (result.rows_out, result.rows_rejected) == (22_002, 1)
    assert result.quarantine_path is not None
    rejected = [json.loads(line) for line in result.quarantine_path.read_text().splitlines()]
    assert [r["raw"] for r in rejected] == ["1,2,3"]


def test_a_ragged_row_with_text_where_numbers_belong_does_not_turn_the_column_into_text(tmp_path: Path) -> None:
    # GIVEN numeric and boolean columns and one row that is short AND holds text in them (the demo's orders)
    body = "".join(f"{i},{i}.5,true,x\n" for i in range(40)) + "41,not-a-number,maybe\n"
    source = write(tmp_path / "in.csv", "id,amount,paid,note\n" + body)
    # WHEN converted THEN the ragged row is quarantined and the columns keep their types
    result = convert_file(source, tmp_path / "out.parquet", name="in.csv")
    assert result.failure is None and (result.rows_out, result.rows_rejected) == (40, 1)
    assert dict(result.schema) == {"id": "BIGINT", "amount": "DOUBLE", "paid": "BOOLEAN", "note": "VARCHAR"}


@pytest.mark.parametrize("compressed", [False, True])
def test_json_lines_with_a_late_type_change_keep_every_record(tmp_path: Path, compressed: bool) -> None:
    # GIVEN 30,000 records with integer codes and dates, then one with a text code and a timestamp
    records = [json.dumps({"code": i, "day": "2026-01-01"}) for i in range(30_000)]
    records.append(json.dumps({"code": "A1B2", "day": "2026-01-01 10:00:00"}))
    data = ("\n".join(records) + "\n").encode()
    name = "in.jsonl.gz" if compressed else "in.jsonl"
    source = tmp_path / name
    source.write_bytes(gzip.compress(data) if compressed else data)
    # WHEN converted THEN no record is lost (DuckDB alone fails the whole file here)
    result = convert_file(source, tmp_path / "out.parquet", name=name, limits=Limits(max_reject_ratio=0))
    assert result.failure is None and (result.rows_out, result.rows_rejected) == (30_001, 0)
    assert rows_of(result.output_path, "SELECT count(*) FROM t WHERE code = 'A1B2'") == [(1,)]


def test_a_json_array_with_a_late_type_change_keeps_every_record(tmp_path: Path) -> None:
    records = [{"n": i} for i in range(25_000)] + [{"n": "many"}]
    source = tmp_path / "in.json"
    source.write_text(json.dumps(records))
    result = convert_file(source, tmp_path / "out.parquet", name="in.json", limits=Limits(max_reject_ratio=0))
    assert result.failure is None and result.rows_out == 25_001


# --- failures as values ---------------------------------------------------------------------------------------
def test_a_bad_file_is_a_failure_value_with_figures_and_no_parquet(tmp_path: Path) -> None:
    source = write(tmp_path / "in.csv", "a,b\n1,2\n" + "x\n" * 5)
    result = convert_file(source, tmp_path / "out.parquet", name="in.csv")
    assert isinstance(result.failure, RejectShareExceededError)
    assert (result.rows_in, result.rows_rejected) == (6, 5) and result.quarantine_path is not None
    assert not result.output_path.exists()


def test_json_of_the_wrong_shape_is_a_failure_value(tmp_path: Path) -> None:
    source = write(tmp_path / "in.json", "[1, 2, 3]")
    result = convert_file(source, tmp_path / "out.parquet", name="in.json")
    assert isinstance(result.failure, MalformedContentError) and not result.output_path.exists()


# --- time budget ----------------------------------------------------------------------------------------------
def big_csv(path: Path, rows: int = 4_000_000) -> Path:
    """About 180 MB of CSV (written by DuckDB: fast), several of DuckDB's 32 MB read buffers."""
    duckdb.connect().execute(
        f"COPY (SELECT i AS id, 'name' || (i % 977) AS name, i * 0.25 AS amount, TIMESTAMP '2026-01-01 10:00:00' AS at "
        f"FROM range({rows}) t(i)) TO '{path}' (HEADER)"
    )
    return path


def test_the_deadline_stops_the_conversion_with_an_estimate(tmp_path: Path) -> None:
    # GIVEN a file that takes longer than the time left
    source = big_csv(tmp_path / "big.csv")
    started = time.monotonic()
    limits = Limits(deadline=started + 0.8)
    # WHEN converted THEN it stops at the deadline (before the end: the error says so) and leaves nothing behind
    with pytest.raises(TimeBudgetExceededError) as stopped:
        convert_file(source, tmp_path / "out.parquet", name="big.csv", limits=limits)
    assert not (tmp_path / "out.parquet").exists() and not (tmp_path / "out.rejects.jsonl").exists()
    # AND it says how far it got and how long the whole file needs at the measured rate: more than it had
    error = stopped.value
    assert error.estimated_total_seconds is not None and error.estimated_total_seconds > error.elapsed_seconds
    assert re.search(r"stopped before the function's deadline after [\d.]+ s at \d+% done", str(error))
    assert "at 100% done" not in str(error)


def test_the_deadline_stops_the_json_lines_splitter(tmp_path: Path) -> None:
    source = tmp_path / "big.jsonl"
    source.write_text("".join(json.dumps({"i": i, "s": "x" * 40}) + "\n" for i in range(300_000)))
    with pytest.raises(TimeBudgetExceededError) as stopped:
        convert_file(source, tmp_path / "out.parquet", name="big.jsonl", limits=Limits(deadline=time.monotonic()))
    assert stopped.value.estimated_total_seconds is not None


def test_without_a_deadline_nothing_changes(tmp_path: Path) -> None:
    source = write(tmp_path / "in.csv", "a\n1\n2\n")
    assert convert_file(source, tmp_path / "out.parquet", name="in.csv").rows_out == 2


# --- disk -----------------------------------------------------------------------------------------------------
def test_a_full_disk_is_reported_as_such_not_as_a_corrupt_gzip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN gzip JSON Lines and a disk that fills up while the clean copy is written
    source = tmp_path / "in.jsonl.gz"
    source.write_bytes(gzip.compress(b'{"a": 1}\n' * 100))
    real_open = Path.open

    def full_disk_open(self: Path, mode: str = "r", *args: object, **kwargs: object) -> object:
        handle = real_open(self, mode, *args, **kwargs)  # type: ignore[arg-type]
        if self.name == "clean.jsonl":

            class Full:
                def __enter__(self) -> Full:
                    return self

                def __exit__(self, *exc: object) -> None:
                    handle.close()

                def write(self, _data: bytes) -> int:
                    raise OSError(errno.ENOSPC, "No space left on device")

            return Full()
        return handle

    monkeypatch.setattr(Path, "open", full_disk_open)
    # WHEN converted THEN a DiskFullError (transient) names the setting to raise
    with pytest.raises(DiskFullError, match=r"ephemeral storage is full.*ephemeral_storage_mb"):
        convert_file(source, tmp_path / "out.parquet", name="in.jsonl.gz")


def test_disk_needed_counts_the_decompressed_copy_of_gzip_json_lines(tmp_path: Path) -> None:
    content = b'{"a": 1, "b": "xxxxxxxxxxxxxxxx"}\n' * 10_000
    jsonl = tmp_path / "in.jsonl.gz"
    jsonl.write_bytes(gzip.compress(content))
    csv_gz = tmp_path / "in.csv.gz"
    csv_gz.write_bytes(gzip.compress(b"a,b\n" + b"1,2\n" * 50_000))
    assert disk_needed(jsonl, "in.jsonl.gz") == 2 * len(content)
    assert disk_needed(csv_gz, "in.csv.gz") == len(b"a,b\n" + b"1,2\n" * 50_000)


@pytest.mark.parametrize(
    ("late", "expected_type"),
    [
        ("0x1F", "VARCHAR"),
        ("99999999999999999999", "DECIMAL(38,0)"),
        ("9" * 39, "VARCHAR"),
        ("2.5", "DOUBLE"),
        ("1e3", "BIGINT"),
        ("1_000", "BIGINT"),
    ],
)
def test_no_late_value_is_silently_altered_in_an_integer_column(tmp_path: Path, late: str, expected_type: str) -> None:
    # GIVEN integers, then one late value DuckDB's integer cast would accept by changing it
    source = write(tmp_path / "in.csv", "n\n" + "".join(f"{i}\n" for i in range(21_000)) + f"{late}\n")
    # WHEN converted THEN the column widens and the late value reads back as written (or as its exact number)
    result = convert_file(source, tmp_path / "out.parquet", name="in.csv", limits=Limits(max_reject_ratio=0))
    assert result.failure is None and result.rows_out == 21_001 and dict(result.schema)["n"] == expected_type
    if expected_type == "VARCHAR":  # kept as written
        assert rows_of(result.output_path, f"SELECT count(*) FROM t WHERE n = '{late}'") == [(1,)]
    elif expected_type in ("DOUBLE", "DECIMAL(38,0)"):  # kept as its exact number
        assert rows_of(result.output_path, f"SELECT count(*) FROM t WHERE n = {late}") == [(1,)]
    else:  # another spelling of a whole number: that number, exactly (1000 appears twice now)
        assert rows_of(result.output_path, "SELECT count(*) FROM t WHERE n = 1000") == [(2,)]


def test_big_ids_never_lose_digits_when_a_decimal_appears_late(tmp_path: Path) -> None:
    # GIVEN ids beyond 2^53 (exact as BIGINT, not as DOUBLE), then a late 1.5
    first = 2**53 + 1
    source = write(tmp_path / "in.csv", "id\n" + "".join(f"{first + i}\n" for i in range(21_000)) + "1.5\n")
    result = convert_file(source, tmp_path / "out.parquet", name="in.csv", limits=Limits(max_reject_ratio=0))
    # THEN the column becomes text, and the first id is exactly as written
    assert result.failure is None and dict(result.schema)["id"] == "VARCHAR"
    assert rows_of(result.output_path, f"SELECT count(*) FROM t WHERE id = '{first}'") == [(1,)]


def test_a_column_of_64_bit_ids_stays_an_exact_integer(tmp_path: Path) -> None:
    # GIVEN ids beyond 2^53 from the first row on (snowflake-style): integers, but not exact as DOUBLE
    first = 2**62 + 1
    source = write(tmp_path / "in.csv", "id,v\n" + "".join(f"{first + i},{i}\n" for i in range(1_000)))
    result = convert_file(source, tmp_path / "out.parquet", name="in.csv", limits=Limits(max_reject_ratio=0))
    # THEN the column stays BIGINT with every digit
    assert result.failure is None and dict(result.schema)["id"] == "BIGINT"
    assert rows_of(result.output_path, "SELECT min(id) FROM t") == [(first,)]


def test_an_empty_json_object_is_a_row_not_a_reject(tmp_path: Path) -> None:
    source = write(tmp_path / "in.jsonl", '{"a": 1}\n{}\n{"a": 3}\n')
    result = convert_file(source, tmp_path / "out.parquet", name="in.jsonl", limits=Limits(max_reject_ratio=0))
    assert result.failure is None and (result.rows_out, result.rows_rejected) == (3, 0)
    assert rows_of(result.output_path, "SELECT count(*) FROM t WHERE a IS NULL") == [(1,)]


def test_a_csv_mixing_crlf_and_lf_line_ends_converts(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(b"id,name\r\n1,a\r\n2,b\n3,c\r\n")
    result = convert_file(source, tmp_path / "out.parquet", name="in.csv", limits=Limits(max_reject_ratio=0))
    assert result.failure is None and result.rows_out == 3
    assert rows_of(result.output_path, "SELECT string_agg(name, '') FROM (SELECT name FROM t ORDER BY id)") == [
        ("abc",)
    ]
