"""Why ``tap query`` refuses a query, before anything runs (``tap query`` exits 2 on each)."""

from __future__ import annotations


class QueryRefusedError(ValueError):
    """The query is refused before it runs; the message says what was refused and why."""


class StatementError(QueryRefusedError):
    """The query is not exactly one read statement, or cannot be read unambiguously."""


class ResidencyError(QueryRefusedError):
    """The query reaches outside its region: another region, bucket, database, catalog or an external source."""


def location(sql: str, offset: int) -> str:
    """``line L, column C`` of ``offset`` in ``sql`` (both from 1)."""
    line = sql.count("\n", 0, offset) + 1
    column = offset - (sql.rfind("\n", 0, offset) + 1) + 1
    return f"line {line}, column {column}"
