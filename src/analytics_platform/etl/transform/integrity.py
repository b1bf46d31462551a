"""A compressed input must be complete and intact before DuckDB reads it.

DuckDB's gzip reader stops quietly where the bytes end and checks neither a member's CRC nor its length: half a
gzip file converts to half a dataset, and a damaged block to misparsed rows. Python's gzip module checks the
end-of-stream marker, CRC and length of every member (a file of several members, as pigz, bgzip or
``cat a.gz b.gz`` write, is read whole), so the file is read through it once first. That costs one decompression
(about a sixth of a CSV conversion) and no disk. JSON input needs no separate check: the JSON splitter reads it
through the same module.
"""

from __future__ import annotations

import gzip
from pathlib import Path

from analytics_platform.etl.transform.errors import gzip_and_disk_errors
from analytics_platform.etl.transform.session import Watchdog

CHUNK_BYTES = 1 << 20


def check_gzip(path: Path, watchdog: Watchdog) -> None:
    """Read the whole gzip file; a truncated or corrupt stream raises :class:`CompressionError`."""
    size = max(1, path.stat().st_size)
    watchdog.follow(path)
    with gzip_and_disk_errors(), path.open("rb") as raw, gzip.open(raw, "rb") as stream:
        while stream.read(CHUNK_BYTES):
            watchdog.report(raw.tell() / size)
