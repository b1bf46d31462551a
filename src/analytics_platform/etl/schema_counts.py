"""A dataset's schema item: per column and type, how many current SUCCEEDED files hold it (see :mod:`.catalog`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from analytics_platform.etl.catalog_types import catalog_type, widest
from analytics_platform.etl.exceptions import SchemaConflictError


def count_key(name: str, kind: str) -> str:
    """Key of one (column, type) in a schema item's ``type_counts``."""
    return f"{kind}:{name}"


def derive(counts: dict[str, Any], first_seen: dict[str, Any]) -> list[tuple[str, str]]:
    """The table's columns from the counts: each column with a current file, at the widest type they hold, in the
    order the columns were first seen."""
    kinds: dict[str, set[str]] = {}
    for key, number in counts.items():
        if int(number) > 0:
            kind, name = key.split(":", 1)
            kinds.setdefault(name, set()).add(kind)
    order = sorted(kinds, key=lambda name: (int(first_seen.get(name, 1 << 40)), name))
    return [(name, widest(kinds[name]) or "string") for name in order]


@dataclass
class SchemaItem:
    """A dataset's schema item as read: the counts, the first-seen order and the version."""

    counts: dict[str, int]
    first_seen: dict[str, int]
    version: int

    def columns(self, exclude: Sequence[tuple[str, str]] = ()) -> list[tuple[str, str]]:
        """The derived columns, without the contribution of ``exclude`` (a file about to be replaced)."""
        counts = dict(self.counts)
        for name, kind in exclude:
            counts[count_key(name, kind)] = counts.get(count_key(name, kind), 0) - 1
        return derive(counts, self.first_seen)

    def counted(self, columns: list[tuple[str, str]], delta: int) -> SchemaItem:
        """The item after adding ``delta`` for each of ``columns``; SchemaConflictError if a column would then hold
        types no one type holds."""
        counts = dict(self.counts)
        first_seen = dict(self.first_seen)
        for name, kind in columns:
            counts[count_key(name, kind)] = counts.get(count_key(name, kind), 0) + delta
            if delta > 0 and name not in first_seen:
                first_seen[name] = len(first_seen)
        counts = {key: number for key, number in counts.items() if number > 0}
        if delta > 0:
            for name, _ in columns:
                held = {key.split(":", 1)[0] for key in counts if key.split(":", 1)[1] == name}
                if widest(held) is None:
                    raise SchemaConflictError(
                        f"column {name!r} would hold {' and '.join(sorted(held))} in the dataset's current files; "
                        "no type holds both (another file of the dataset committed its type first)"
                    )
        return SchemaItem(counts, first_seen, self.version + 1)


def written_columns(output_schema: list[str]) -> list[tuple[str, str]]:
    """(name, catalog type) of a job record's ``output_schema`` (``name:DUCKDB TYPE`` entries)."""
    columns = []
    for entry in output_schema:
        name, _, duckdb_type = str(entry).rpartition(":")
        columns.append((name, catalog_type(duckdb_type)))
    return columns
