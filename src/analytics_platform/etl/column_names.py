"""Column names: what a CSV header or JSON key becomes in the Parquet files and the catalog, defined once.

Glue keeps names in lower case (1 to 255 bytes of UTF-8, any script) and Athena matches them case-insensitively,
so a name's identity is case-insensitive here as well: every name is lower case, and ``userID`` in one file and
``USERID`` in another are the same column. A name is built so:

* Unicode NFKC first (composed and decomposed accents, full-width letters and ligatures give one name), then
  lower case;
* letters, combining marks and digits of every script are kept, so ``Größe`` stays ``größe`` and ``名前`` stays
  ``名前``; every run of anything else (spaces, punctuation, symbols, ``_``) becomes one ``_``, none at either
  end; a leading digit gets a ``_`` in front (``2024 total`` -> ``_2024_total``);
* a header of symbols only is named after them (``€`` -> ``euro_sign``, ``#`` -> ``number_sign``); an empty one
  after its position (``column_3``);
* a name longer than 240 bytes is cut, and ends in a short hash of the whole so two long names stay apart;
* ``ingest_date`` is every table's partition key (the upload day), so a data column of that name is written
  as ``source_ingest_date``;
* within one file, a name already taken by an earlier column (``id`` and ``ID``, ``User Id`` and ``user_id``)
  gets the first free suffix ``_2``, ``_3``, ... that no column of the file has.

Case is not a word boundary: ``userId`` is ``userid``, as it must be for ``USERID`` to be the same column.
"""

from __future__ import annotations

import hashlib
import unicodedata

from analytics_platform.etl.catalog import PARTITION_KEY

#: A data column named like the partition key is written under this name.
RENAMED_PARTITION_KEY = f"source_{PARTITION_KEY}"
#: Glue's limit on a column name, in bytes of UTF-8.
MAX_NAME_BYTES = 255
#: Names are cut to this many bytes (hash included), leaving room for a ``_N`` suffix.
CUT_BYTES = 240
HASH_CHARS = 8


def _kept(char: str) -> bool:
    """Letters, combining marks and digits of any script."""
    return unicodedata.category(char)[0] in "LMN"


def _words(text: str) -> str:
    """Runs of kept characters joined by single ``_``."""
    out: list[str] = []
    gap = False
    for char in text:
        if _kept(char):
            if gap and out:
                out.append("_")
            out.append(char)
            gap = False
        else:
            gap = True
    return "".join(out)


def _cut(name: str) -> str:
    encoded = name.encode()
    if len(encoded) <= CUT_BYTES:
        return name
    digest = hashlib.sha256(encoded).hexdigest()[:HASH_CHARS]
    head = encoded[: CUT_BYTES - HASH_CHARS - 1].decode("utf-8", "ignore").rstrip("_")
    return f"{head}_{digest}"


def column_name(header: str, position: int) -> str:
    """The column name of one header (``position`` counts from 0 and names an empty header)."""
    text = unicodedata.normalize("NFKC", header).lower()
    name = _words(text)
    if not name:  # symbols only: their Unicode names
        name = _words(" ".join(unicodedata.name(c, "") for c in text if not c.isspace()).lower())
    if not name:
        return f"column_{position + 1}"
    if name[0].isdigit():
        name = "_" + name
    return _cut(name)


def normalise_columns(headers: list[str]) -> list[str]:
    """The names of one file's columns: lower case, unique, the partition key renamed (see the module)."""
    bases = [column_name(header, index) for index, header in enumerate(headers)]
    bases = [RENAMED_PARTITION_KEY if base == PARTITION_KEY else base for base in bases]
    names: list[str | None] = [None] * len(bases)
    taken: set[str] = set()
    for index, base in enumerate(bases):  # the first column of a name keeps it
        if base not in taken:
            names[index] = base
            taken.add(base)
    for index, base in enumerate(bases):
        if names[index] is None:
            suffix = 2
            while f"{base}_{suffix}" in taken:
                suffix += 1
            names[index] = f"{base}_{suffix}"
            taken.add(f"{base}_{suffix}")
    return [name for name in names if name is not None]


def is_column_name(name: str) -> bool:
    """Whether the worker can write a column of this name (what a contract may name)."""
    return bool(name) and name != PARTITION_KEY and column_name(name, 0) == name
