"""A query's result, printed as a table or as JSON rows, whichever engine produced it."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

#: Widest a text cell is printed in the table form (JSON is never cut).
MAX_CELL = 60


def _plain(value: Any) -> Any:
    """A JSON-ready value (dates as ISO text, decimals as numbers), lists, structs and maps included."""
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # "nan", "inf": JSON has no such numbers
    return value


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    text = str(_plain(value)).replace("\n", "\\n")
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


@dataclass
class QueryResult:
    """Column names and rows (Python values), plus where it ran."""

    columns: list[str]
    rows: list[tuple[Any, ...]]
    engine: str
    details: dict[str, Any] = field(default_factory=dict)

    def records(self) -> list[dict[str, Any]]:
        """The rows as ``{column: value}`` with JSON-ready values."""
        return [{name: _plain(value) for name, value in zip(self.columns, row, strict=True)} for row in self.rows]

    def plain_rows(self) -> list[list[Any]]:
        """The rows as lists of JSON-ready values, by column position (two columns may share a name)."""
        return [[_plain(value) for value in row] for row in self.rows]

    def to_json(self) -> str:
        """JSON rows."""
        return json.dumps(self.records(), indent=2, ensure_ascii=False, allow_nan=False)

    def table(self) -> str:
        """A fixed-width table with a header and a row count."""
        cells = [[_cell(v) for v in row] for row in self.rows]
        widths = [max([len(name), *(len(row[i]) for row in cells)]) for i, name in enumerate(self.columns)]
        lines = [" | ".join(name.ljust(w) for name, w in zip(self.columns, widths, strict=True))]
        lines.append("-+-".join("-" * w for w in widths))
        lines += [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
        lines.append(f"({len(self.rows)} row{'s' if len(self.rows) != 1 else ''}, {self.engine})")
        return "\n".join(lines)
