"""JSON Lines and JSON arrays to one clean JSON Lines copy (``work/clean.jsonl``) for DuckDB, read once in Python.

* JSON Lines: each line that is a JSON object goes to the copy, anything else to quarantine with its line number.
* A JSON array is streamed element by element (never held whole); every element must be an object, and the
  array must end with ``]``: a file that ends early fails instead of converting the elements before the cut.
* A top-level ``""`` is written as ``null``: an empty value is NULL in every column, as an empty CSV field is.
  A column of numbers with some ``""`` is then a number column, not text. Nested values are kept as written.
* Keys DuckDB would take for one column (they differ only in case: ``id`` and ``ID``) are written under
  distinct stand-in keys; :attr:`Split.keys` maps each key of the copy back to the key as written, in order of
  first appearance, which also tells the reader whether DuckDB's sample saw every key.

Gzip input is read through Python's gzip module, which checks every member's end marker, CRC and length.
"""

from __future__ import annotations

import codecs
import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from analytics_platform.etl.exceptions import EncodingError, MalformedContentError
from analytics_platform.etl.transform.errors import gzip_and_disk_errors
from analytics_platform.etl.transform.model import JSON_ARRAY, Source
from analytics_platform.etl.transform.session import Watchdog

CHUNK_BYTES = 1 << 20
REPORT_EVERY = 10_000
BOM = b"\xef\xbb\xbf"
WHITESPACE = " \t\r\n"
#: Stand-in key of the n-th key that collides (case-insensitively) with an earlier one.
STAND_IN = "__tap_key_{}__"


@dataclass
class Split:
    """What the splitter wrote: records, rejected lines, and ``keys`` (key in the copy -> key as written)."""

    rows: int = 0
    rejected: int = 0
    keys: dict[str, str] = field(default_factory=dict)


def clean_path(source: Source) -> Path:
    """The clean JSON Lines copy DuckDB reads."""
    return source.work / "clean.jsonl"


class _Writer:
    """Writes records to the copy: ``""`` as null, colliding keys under stand-ins; learns the keys."""

    def __init__(self, out: IO[bytes], split: Split) -> None:
        self._out = out
        self._split = split
        self._known: set[str] = set()
        self._folded: set[str] = set()
        self._stand_ins: dict[str, str] = {}

    def _learn(self, record: dict[str, Any]) -> None:
        for key in record:
            if key in self._known:
                continue
            self._known.add(key)
            written = key
            if key.lower() in self._folded:  # DuckDB's column names are case-insensitive
                written = STAND_IN.format(len(self._stand_ins) + 1)
                self._stand_ins[key] = written
            self._folded.add(key.lower())
            self._split.keys[written] = key

    def reject(self) -> None:
        self._split.rejected += 1

    def write(self, record: dict[str, Any], raw: bytes) -> None:
        if not self._known.issuperset(record):
            self._learn(record)
        renamed = bool(self._stand_ins) and not self._stand_ins.keys().isdisjoint(record)
        if renamed or "" in record.values():
            cleaned = {self._stand_ins.get(k, k): (None if v == "" else v) for k, v in record.items()}
            raw = json.dumps(cleaned, ensure_ascii=False, separators=(",", ":")).encode()
        self._out.write(raw + b"\n")
        self._split.rows += 1


def _line_error(line: bytes, too_long: bool, limit: int) -> tuple[str | None, Any]:
    if too_long:
        return f"line longer than {limit} bytes", None
    try:
        value = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as parse_error:
        return f"invalid JSON: {parse_error}", None
    if not isinstance(value, dict):
        return f"expected a JSON object, got {type(value).__name__}", None
    return None, value  # an empty object is a valid record: every column NULL


def read_bounded_line(handle: IO[bytes], limit: int) -> tuple[bytes, bool]:
    """One line of at most ``limit`` bytes; longer lines are drained and reported as too long."""
    line = handle.readline(limit + 1)
    if len(line) <= limit or line.endswith(b"\n"):
        return line, False
    while line and not line.endswith(b"\n"):
        line = handle.readline(1 << 20)
    return b"", True


def _split_lines(reader: IO[bytes], writer: _Writer, source: Source, progress: Any) -> None:
    limit = source.limits.max_line_bytes
    number = 0
    with source.quarantine.open("w", encoding="utf-8") as bad:
        while True:
            line, too_long = read_bounded_line(reader, limit)
            if not line and not too_long:
                return
            number += 1
            progress(number)
            if number == 1 and line.startswith(BOM):
                line = line[len(BOM) :]
            if not too_long and not line.strip():
                continue
            error, record = _line_error(line, too_long, limit)
            if error is None:
                writer.write(record, line.rstrip(b"\r\n"))
            else:
                writer.reject()
                text = line[:2000].decode("utf-8", "replace").rstrip("\r\n")
                bad.write(json.dumps({"line": number, "raw": text, "error": error}) + "\n")


class _ArrayReader:
    """The elements of a JSON array, streamed from decoded chunks (an element may span chunks)."""

    def __init__(self, reader: IO[bytes], limit: int) -> None:
        self._reader = reader
        self._limit = limit
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self._scanner = json.JSONDecoder()
        self._text = ""
        self._at = 0
        self._eof = False

    def _fill(self) -> bool:
        if self._eof:
            return False
        chunk = self._reader.read(CHUNK_BYTES)
        self._eof = not chunk
        try:
            decoded = self._decoder.decode(chunk, final=self._eof)
        except UnicodeDecodeError as error:
            raise EncodingError(f"not UTF-8 text: {error}") from error
        self._text = self._text[self._at :] + decoded
        self._at = 0
        return True

    def _next_char(self) -> str:
        """The next character that is not whitespace ('' at the end of the file)."""
        while True:
            while self._at < len(self._text) and self._text[self._at] in WHITESPACE:
                self._at += 1
            if self._at < len(self._text) or not self._fill():
                return self._text[self._at : self._at + 1]

    def _element(self, index: int) -> tuple[Any, str]:
        while True:
            try:
                value, end = self._scanner.raw_decode(self._text, self._at)
            except json.JSONDecodeError as error:
                if len(self._text) - self._at > self._limit:
                    too_long = f"element {index} of the JSON array is longer than {self._limit} bytes"
                    raise MalformedContentError(too_long) from error
                if self._fill():
                    continue
                if error.pos >= len(self._text.rstrip()) or error.msg.startswith("Unterminated string"):
                    raise MalformedContentError("the JSON array ends early: the file is truncated") from error
                raise MalformedContentError(f"invalid JSON in element {index} of the array: {error}") from error
            raw = self._text[self._at : end]
            self._at = end
            return value, raw

    def elements(self) -> Iterator[tuple[Any, str]]:
        """Each element and its text; raises :class:`MalformedContentError` for anything but an array."""
        if self._next_char() != "[":
            raise MalformedContentError("JSON of the wrong shape: expected an array of objects")
        self._at += 1
        index = 0
        while True:
            char = self._next_char()
            if char == "]":
                self._at += 1
                break
            if not char:
                raise MalformedContentError("the JSON array ends early: the file is truncated (no closing ])")
            if index:
                if char != ",":
                    raise MalformedContentError(f"invalid JSON after element {index} of the array: expected , or ]")
                self._at += 1
                self._next_char()
            yield self._element(index + 1)
            index += 1
        if self._next_char():
            raise MalformedContentError("content after the end of the JSON array")


def _split_array(reader: IO[bytes], writer: _Writer, source: Source, progress: Any) -> None:
    limit = source.limits.max_line_bytes
    for number, (value, raw) in enumerate(_ArrayReader(reader, limit).elements(), 1):
        if not isinstance(value, dict):
            raise MalformedContentError("JSON of the wrong shape: the array's elements must be objects")
        # JSON strings hold no raw line breaks, so the ones in a pretty-printed element are whitespace
        text = raw.replace("\n", " ").replace("\r", " ") if "\n" in raw or "\r" in raw else raw
        encoded = text.encode()
        if len(encoded) > limit:
            raise MalformedContentError(f"element {number} of the JSON array is longer than {limit} bytes")
        writer.write(value, encoded)
        progress(number)


def split_json(source: Source, watchdog: Watchdog) -> Split:
    """Stream the JSON Lines file or JSON array of ``source`` into :func:`clean_path`."""
    size = max(1, source.path.stat().st_size)
    watchdog.follow(source.path)
    split = Split()
    with (
        gzip_and_disk_errors(),
        source.path.open("rb") as raw,
        gzip.open(raw, "rb") if source.sniffed.compressed else raw as reader,
        clean_path(source).open("wb") as good,
    ):

        def progress(number: int) -> None:
            # ``fired`` is set by the watchdog's thread: a cheap check per record, however long the records.
            if watchdog.fired or number % REPORT_EVERY == 0:
                watchdog.report(raw.tell() / size)

        split_records = _split_array if source.sniffed.kind == JSON_ARRAY else _split_lines
        split_records(reader, _Writer(good, split), source, progress)  # type: ignore[arg-type]  # gzip's IO[bytes]
    return split
