"""Property-based tests (Hypothesis) of the CSV and JSON readers behind ``convert_file``.

Each property writes a generated file the way a producer would (Python's ``csv`` / ``json`` modules), runs
exactly the worker's conversion and reads the Parquet back with DuckDB.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from analytics_platform.etl.column_names import is_column_name
from analytics_platform.etl.exceptions import PermanentError
from analytics_platform.etl.transform import Limits, convert_file, normalise_columns

PROPERTY_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Words a typed reader rightly takes for booleans or special floats.
TYPED_WORDS = {"t", "f", "true", "false", "y", "n", "yes", "no", "on", "off", "nan", "inf", "infinity"}
# Text that never looks like a number, boolean or date: it starts with a letter and is no typed word.
TEXT = (
    st.builds(
        lambda head, tail: head + tail,
        st.sampled_from(LETTERS),
        st.text(alphabet=LETTERS + "0123456789 ,;|\"'-_.éüß", max_size=20),
    )
    .map(str.rstrip)
    .filter(lambda text: text.lower() not in TYPED_WORDS)
)
INTEGERS = st.integers(min_value=-(2**62), max_value=2**62)
FLOATS = st.floats(allow_nan=False, allow_infinity=False, width=64, min_value=-1e12, max_value=1e12)
# A one-column file whose text holds a delimiter is ambiguous to any reader: single columns get plain text.
PLAIN_TEXT = TEXT.filter(lambda text: not any(d in text for d in ",;|\t"))
COLUMN_KINDS = {"int": INTEGERS, "float": FLOATS, "bool": st.booleans(), "text": TEXT}


@contextmanager
def workdir() -> Iterator[Path]:
    # Hypothesis runs many examples per test: a fresh folder each, not pytest's function-scoped tmp_path.
    with tempfile.TemporaryDirectory(prefix="tap-prop-") as name:
        yield Path(name)


def read_parquet(path: Path) -> tuple[list[str], list[tuple[Any, ...]]]:
    with duckdb.connect() as con:
        relation = con.execute(f"SELECT * FROM read_parquet('{path}')")
        names = [d[0] for d in relation.description]
        return names, relation.fetchall()


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[str], list[str], list[list[Any]]]:
    """(header, column kinds, rows) with unique, letter-led column names and at least one row."""
    width = draw(st.integers(min_value=1, max_value=6))
    kinds = draw(st.lists(st.sampled_from(sorted(COLUMN_KINDS)), min_size=width, max_size=width))
    strategies = {**COLUMN_KINDS, "text": PLAIN_TEXT} if width == 1 else COLUMN_KINDS
    names = draw(st.lists(strategies["text"], min_size=width, max_size=width))
    header = [f"{name} {i}" for i, name in enumerate(names)]
    rows = draw(st.lists(st.tuples(*(strategies[kind] for kind in kinds)).map(list), min_size=1, max_size=30))
    return header, kinds, rows


def csv_bytes(header: list[str], rows: list[list[Any]], delimiter: str) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([("true" if v else "false") if isinstance(v, bool) else repr(v) if isinstance(v, float)
                         else v for v in row])  # fmt: skip
    return buffer.getvalue().encode()


def assert_same_values(kinds: list[str], expected: list[list[Any]], actual: list[tuple[Any, ...]]) -> None:
    # Row order is not part of the contract (DuckDB may reorder); compare as sorted multisets per column.
    assert len(actual) == len(expected)
    for index, kind in enumerate(kinds):
        want = [row[index] for row in expected]
        got = [row[index] for row in actual]
        if kind == "float":
            assert sorted(float(v) for v in got) == sorted(float(v) for v in want)
        else:
            assert sorted(got, key=repr) == sorted(want, key=repr), kind


@PROPERTY_SETTINGS
@given(table=tables(), delimiter=st.sampled_from([",", ";", "\t", "|"]), compressed=st.booleans())
# Found by Hypothesis: DuckDB's own sniffer picked "|" and "," here.
@example(table=(["a 0", "a 1"], ["bool", "text"], [[False, "a||"]]), delimiter=",", compressed=False)
@example(table=(["a 0", "a, 1"], ["bool", "bool"], [[False, False]]), delimiter=";", compressed=False)
def test_csv_round_trips_every_row_with_typed_columns(
    table: tuple[list[str], list[str], list[list[Any]]], delimiter: str, compressed: bool
) -> None:
    header, kinds, rows = table
    data = csv_bytes(header, rows, delimiter)
    with workdir() as work:
        source = work / ("in.csv.gz" if compressed else "in.csv")
        source.write_bytes(gzip.compress(data) if compressed else data)
        result = convert_file(source, work / "out.parquet", name=source.name, limits=Limits(max_reject_ratio=0))
        names, values = read_parquet(work / "out.parquet")
    assert (result.rows_in, result.rows_out, result.rows_rejected) == (len(rows), len(rows), 0)
    assert names == normalise_columns(header)
    types = dict(result.schema)
    for name, kind in zip(names, kinds, strict=True):
        if kind == "int":
            assert types[name] == "BIGINT"
        elif kind == "bool":
            assert types[name] == "BOOLEAN"
        elif kind == "text":
            assert types[name] == "VARCHAR"
    assert_same_values(kinds, rows, values)


@PROPERTY_SETTINGS
@given(table=tables(), garbage=st.lists(st.sampled_from(["not json", "[1, 2]", "42", '"text"', "{", "[]"]), max_size=5))
@example(table=(["a 0"], ["int"], [[1]]), garbage=["{"])
def test_json_lines_keep_every_object_and_quarantine_every_other_line(
    table: tuple[list[str], list[str], list[list[Any]]], garbage: list[str]
) -> None:
    header, kinds, rows = table
    lines = [json.dumps(dict(zip(header, row, strict=True))) for row in rows] + garbage
    with workdir() as work:
        source = work / "in.jsonl"
        source.write_text("\n".join(lines) + "\n")
        result = convert_file(source, work / "out.parquet", name="in.jsonl", limits=Limits(max_reject_ratio=1))
        names, values = read_parquet(work / "out.parquet")
        quarantined = [json.loads(line) for line in result.quarantine_path.read_text().splitlines()] if garbage else []
    assert (result.rows_out, result.rows_rejected) == (len(rows), len(garbage))
    assert sorted(q["raw"] for q in quarantined) == sorted(garbage)
    assert all(q["error"] for q in quarantined)
    assert names == normalise_columns(header)
    assert_same_values(kinds, rows, values)


@PROPERTY_SETTINGS
@given(table=tables(), compressed=st.booleans())
def test_json_array_round_trips(table: tuple[list[str], list[str], list[list[Any]]], compressed: bool) -> None:
    header, kinds, rows = table
    data = json.dumps([dict(zip(header, row, strict=True)) for row in rows]).encode()
    with workdir() as work:
        source = work / ("in.json.gz" if compressed else "in.json")
        source.write_bytes(gzip.compress(data) if compressed else data)
        result = convert_file(source, work / "out.parquet", name=source.name)
        names, values = read_parquet(work / "out.parquet")
    assert (result.rows_out, result.rows_rejected) == (len(rows), 0)
    assert names == normalise_columns(header)
    assert_same_values(kinds, rows, values)


@PROPERTY_SETTINGS
@given(
    data=st.one_of(
        st.binary(max_size=400),
        st.text(max_size=400).map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.text(alphabet=',;"\n\r\t{}[]:ab1 ', max_size=400).map(str.encode),
    ),
    name=st.sampled_from(["in.csv", "in.json", "in.jsonl", "in.csv.gz", "in.txt", "in"]),
)
def test_any_bytes_either_convert_or_fail_permanently(data: bytes, name: str) -> None:
    with workdir() as work:
        source = work / name
        source.write_bytes(data)
        original = source.read_bytes()
        result = convert_file(source, work / "out.parquet", name=name)
        if result.failure is not None:
            assert isinstance(result.failure, PermanentError) and str(result.failure), "a failure carries its reason"
            assert not (work / "out.parquet").exists()
        else:
            assert result.rows_out >= 1 and result.rows_in == result.rows_out + result.rows_rejected
            assert len(read_parquet(work / "out.parquet")[1]) == result.rows_out
        assert source.read_bytes() == original  # the input is never modified


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=12), min_size=1, max_size=8))
def test_column_names_are_unique_lower_case_glue_names_whatever_the_headers(headers: list[str]) -> None:
    names = normalise_columns(headers)
    assert len(names) == len(headers) == len(set(names))
    assert all(name == name.lower() and 0 < len(name.encode()) <= 255 for name in names)
    assert all(is_column_name(name) for name in names)  # stable: a name is its own name
    assert "ingest_date" not in names


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(codec="ascii"), max_size=12), min_size=1, max_size=8))
def test_column_names_do_not_depend_on_case(headers: list[str]) -> None:
    assert normalise_columns([h.upper() for h in headers]) == normalise_columns([h.lower() for h in headers])
