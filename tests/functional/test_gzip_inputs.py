"""Compressed input that ends early or is damaged fails the file; a complete one converts, whatever its members."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from analytics_platform.etl.exceptions import CompressionError
from analytics_platform.etl.transform import Limits, convert_file
from tests.functional.test_transform import rows_of

ROWS_50K = "id,name,amount\n" + "".join(f"{i},name{i},{i * 1.5}\n" for i in range(50_000))
RECORDS_50K = [{"id": i, "name": f"name{i}", "amount": i * 1.5} for i in range(50_000)]
CONTENTS = {
    "in.csv.gz": ROWS_50K.encode(),
    "in.jsonl.gz": "".join(json.dumps(r) + "\n" for r in RECORDS_50K).encode(),
    "in.json.gz": json.dumps(RECORDS_50K).encode(),
}


@pytest.mark.parametrize("name", sorted(CONTENTS))
def test_a_gzip_cut_in_half_fails_instead_of_converting_half_the_rows(tmp_path: Path, name: str) -> None:
    # GIVEN 50,000 rows, gzip-compressed, of which only the first half of the compressed bytes arrived
    compressed = gzip.compress(CONTENTS[name])
    source = tmp_path / name
    source.write_bytes(compressed[: len(compressed) // 2])
    # WHEN converted THEN it is a permanent failure saying the stream is truncated, and no Parquet is left
    result = convert_file(source, tmp_path / "out.parquet", name=name, limits=Limits(max_reject_ratio=0.99))
    assert isinstance(result.failure, CompressionError), result.failure
    assert "truncated gzip" in str(result.failure)
    assert not (tmp_path / "out.parquet").exists() and result.bytes_out == 0


@pytest.mark.parametrize("name", sorted(CONTENTS))
def test_a_gzip_damaged_in_the_middle_fails(tmp_path: Path, name: str) -> None:
    # GIVEN a complete gzip file with two bytes flipped in the middle of its deflate stream
    damaged = bytearray(gzip.compress(CONTENTS[name]))
    middle = len(damaged) // 2
    damaged[middle : middle + 2] = bytes(b ^ 0xFF for b in damaged[middle : middle + 2])
    source = tmp_path / name
    source.write_bytes(bytes(damaged))
    # WHEN converted, even with every row allowed to be rejected, THEN it fails as a corrupt stream
    result = convert_file(source, tmp_path / "out.parquet", name=name, limits=Limits(max_reject_ratio=0.99))
    assert isinstance(result.failure, CompressionError), result.failure
    assert not (tmp_path / "out.parquet").exists()


@pytest.mark.parametrize("name", ["in.csv.gz", "in.jsonl.gz"])
def test_a_multi_member_gzip_converts_every_row(tmp_path: Path, name: str) -> None:
    # GIVEN the content split at a line end into two gzip members (as pigz, bgzip or `cat a.gz b.gz` write)
    content = CONTENTS[name]
    cut = content.index(b"\n", len(content) // 2) + 1
    source = tmp_path / name
    source.write_bytes(gzip.compress(content[:cut]) + gzip.compress(content[cut:]))
    # WHEN converted THEN every row of both members is there
    result = convert_file(source, tmp_path / "out.parquet", name=name, limits=Limits(max_reject_ratio=0))
    assert result.failure is None and (result.rows_out, result.rows_rejected) == (50_000, 0)
    assert rows_of(result.output_path, "SELECT count(DISTINCT id), max(id), max(amount) FROM t") == [
        (50_000, 49_999, 49_999 * 1.5)
    ]
