"""How much disk a conversion needs besides its input; the worker checks it after the download.

A gzip file's content size is read from its trailer (ISIZE) where that is safe. ISIZE is the size modulo
4 GiB of the *last member* only, so it understates content past 4 GiB and files of several members (pigz,
bgzip, ``cat a.gz b.gz``). Where it may, the content is counted by decompressing it instead: exact, and only
paid by large or multi-member files.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

from analytics_platform.etl.exceptions import PermanentError
from analytics_platform.etl.transform.model import JSON_ARRAY, JSON_LINES
from analytics_platform.etl.transform.sniff import GZIP_MAGIC, sniff

#: ISIZE counts modulo this.
ISIZE_MODULUS = 2**32
#: The highest gzip compression ratio planned for on real CSV / JSON Lines (they typically reach 3-10).
#: When 4 GiB more content than ISIZE says would still be within it, ISIZE may have wrapped.
PLAUSIBLE_RATIO = 16
#: Deflate enlarges incompressible data by at most about 0.01% (stored blocks); headers may hold a name.
MAX_EXPANSION, HEADER_SLACK_BYTES = 1.001, 4096
#: Counting stops past Lambda's largest ephemeral storage (10 GiB): no function could hold more.
COUNT_LIMIT_BYTES = 10 * 2**30
COUNT_CHUNK_BYTES = 1 << 20


def trailer_is_content_size(compressed_bytes: int, isize: int) -> bool:
    """Whether a gzip file's ISIZE is its whole content's size (one member, under 4 GiB).

    It cannot be when the content would be smaller than the compressed bytes (deflate barely enlarges data:
    there are more members, or the size wrapped past 4 GiB); it may not be when ISIZE plus 4 GiB would still
    be a plausible ratio.
    """
    if isize * MAX_EXPANSION + HEADER_SLACK_BYTES < compressed_bytes:
        return False
    return isize + ISIZE_MODULUS > compressed_bytes * PLAUSIBLE_RATIO


def _count_content(path: Path) -> int:
    """Decompressed bytes of every member, up to :data:`COUNT_LIMIT_BYTES`."""
    counted = 0
    try:
        with gzip.open(path, "rb") as handle:
            while chunk := handle.read(COUNT_CHUNK_BYTES):
                counted += len(chunk)
                if counted > COUNT_LIMIT_BYTES:
                    break
    except (OSError, EOFError, zlib.error):
        pass  # a corrupt stream: the conversion reports it; what was counted is the estimate
    return counted


def content_size(path: Path) -> int:
    """The content's size: the file's, or for gzip its decompressed size (never below the file's size)."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        if handle.read(2) != GZIP_MAGIC or size < 18:
            return size
        handle.seek(-4, 2)
        (isize,) = struct.unpack("<I", handle.read(4))
    if trailer_is_content_size(size, isize):
        return max(isize, size)
    return max(_count_content(path), size)


def disk_needed(path: Path, name: str | None = None) -> int:
    """Bytes the conversion needs on disk besides the input: Parquet and spill files (about the content's size)
    and, for JSON, the clean JSON Lines copy the splitter writes (the decompressed content again)."""
    try:
        kind = sniff(path, name).kind
    except PermanentError:
        return path.stat().st_size  # the conversion fails at once, before writing anything large
    return content_size(path) * (2 if kind in (JSON_LINES, JSON_ARRAY) else 1)
