"""Format, compression and CSV delimiter from the name and the first 64 KB (read and decompressed once)."""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import re
from pathlib import Path

from analytics_platform.etl.exceptions import (
    CompressionError,
    EmptyInputError,
    EncodingError,
    MalformedContentError,
    NoRowsError,
    UnsupportedFormatError,
)
from analytics_platform.etl.transform.errors import gzip_and_disk_errors
from analytics_platform.etl.transform.model import CSV, JSON_ARRAY, JSON_LINES, Sniffed

SAMPLE_BYTES = 64 * 1024
GZIP_MAGIC = b"\x1f\x8b"
EXTENSIONS = {
    ".csv": CSV, ".tsv": CSV, ".txt": CSV, ".jsonl": JSON_LINES, ".ndjson": JSON_LINES, ".json": None,
}  # fmt: skip
UNSUPPORTED_HINTS = {".parquet", ".xlsx", ".xls", ".zip", ".avro", ".orc", ".bz2", ".xz", ".zst", ".7z"}
#: CSV delimiters tried, in order of preference when two fit equally well.
DELIMITERS = (",", ";", "\t", "|")


def read_sample(path: Path, compressed: bool) -> bytes:
    """The first :data:`SAMPLE_BYTES` of the (decompressed) content."""
    if not compressed:
        with path.open("rb") as handle:
            return handle.read(SAMPLE_BYTES)
    with gzip_and_disk_errors(), gzip.open(path, "rb") as handle:
        return handle.read(SAMPLE_BYTES)


def detect_delimiter(sample: bytes, complete: bool) -> str:
    """The delimiter that splits the sample's rows into the same number (>= 2) of fields as its header.

    Rows are parsed with RFC 4180 quoting, so delimiters inside quoted fields do not count. The fraction of
    rows as wide as the header decides (it must be a majority), then the width; a file that no candidate
    splits that way is one column (``,``). ``complete`` is False when the sample is cut from a longer file
    (its last line is dropped).
    """
    text = sample.decode("utf-8", "replace")
    if not complete and "\n" in text:
        text = text[: text.rindex("\n") + 1]
    best, best_score = DELIMITERS[0], (0.0, 0)
    for delimiter in DELIMITERS:
        try:
            rows = [row for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter) if row]
        except csv.Error:
            continue
        if not rows or len(rows[0]) < 2:
            continue
        width = len(rows[0])
        score = (sum(len(row) == width for row in rows) / len(rows), width)
        if score[0] > 0.5 and score > best_score:
            best, best_score = delimiter, score
    return best


def csv_header(sniffed: Sniffed) -> list[str] | None:
    """The header's names as written (DuckDB renames duplicates; we must see them); None if not in the sample."""
    text = sniffed.sample.decode("utf-8", "replace").lstrip("\ufeff")
    if not sniffed.complete and "\n" not in text:
        return None
    try:
        rows = csv.reader(io.StringIO(text, newline=""), delimiter=sniffed.delimiter)
        return next((row for row in rows if row), None)
    except csv.Error:
        return None


def _strip_name_suffixes(name: str) -> tuple[str, bool]:
    lowered = name.lower()
    for suffix in (".gz", ".gzip"):
        if lowered.endswith(suffix):
            return lowered[: -len(suffix)], True
    return lowered, False


def _check_text(sample: bytes) -> None:
    if not sample.strip():
        raise EmptyInputError("the file holds only whitespace")
    if b"\x00" in sample:
        raise EncodingError("binary content (NUL bytes); expected UTF-8 text")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError as error:
        raise EncodingError(f"not UTF-8 text: byte 0x{sample[error.start]:02x} at offset {error.start}") from error


def sniff(path: Path, name: str | None = None) -> Sniffed:
    """Detect format and compression from the name and the content; raises a :class:`PermanentError`."""
    if path.stat().st_size == 0:
        raise EmptyInputError("the file is empty (0 bytes)")
    with path.open("rb") as handle:
        compressed = handle.read(2) == GZIP_MAGIC
    stem, named_gzip = _strip_name_suffixes(name or path.name)
    if named_gzip and not compressed:
        raise CompressionError("the name ends in .gz but the content is not gzip")
    extension = Path(stem).suffix
    if extension in UNSUPPORTED_HINTS:
        raise UnsupportedFormatError(f"unsupported file type {extension!r}; send CSV, JSON Lines or a JSON array")
    if extension and extension not in EXTENSIONS:
        raise UnsupportedFormatError(
            f"unsupported file extension {extension!r}; supported: {', '.join(sorted(EXTENSIONS))} (+ .gz)"
        )
    sample = read_sample(path, compressed)
    complete = len(sample) < SAMPLE_BYTES
    _check_text(sample)
    if complete and re.fullmatch(rb"\s*\[\s*\]\s*", sample):
        raise NoRowsError("empty JSON array: no data rows")
    first = sample.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    kind = EXTENSIONS.get(extension)
    if kind is None:  # .json or no extension: decide by the first character
        if first == b"[":
            kind = JSON_ARRAY
        elif first == b"{":
            kind = JSON_LINES
        elif extension == ".json":
            raise MalformedContentError("JSON of the wrong shape: expected an array of objects or JSON Lines")
        else:
            kind = CSV
    delimiter = detect_delimiter(sample, complete) if kind == CSV else ","
    return Sniffed(kind, compressed, delimiter, sample, complete)
