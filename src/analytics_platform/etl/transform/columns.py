"""Column names (defined in :mod:`analytics_platform.etl.column_names`) and their safe quoting into SQL."""

from __future__ import annotations

from analytics_platform.etl.column_names import column_name, normalise_columns

__all__ = ["column_name", "normalise_columns", "quote_identifier", "quote_literal"]


def quote_identifier(name: str) -> str:
    """A SQL identifier, whatever characters it holds."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"
