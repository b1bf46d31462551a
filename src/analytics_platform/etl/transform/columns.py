"""Column names: snake_case, unique, and safely quoted into SQL."""

from __future__ import annotations

import re

from analytics_platform.etl.exceptions import SchemaError


def snake_case(name: str, position: int) -> str:
    """``"Joined At"`` -> ``joined_at``, ``"userID"`` -> ``user_id``; empty names become ``column_N``."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name.strip())
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", text)
    text = re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_").lower()
    if not text:
        return f"column_{position + 1}"
    return f"_{text}" if text[0].isdigit() else text


def normalise_columns(names: list[str]) -> list[str]:
    """snake_case every name; duplicates (before or after normalising) are a :class:`SchemaError`."""
    normalised = [snake_case(name, index) for index, name in enumerate(names)]
    seen: dict[str, str] = {}
    for original, new in zip(names, normalised, strict=True):
        if new in seen:
            raise SchemaError(f"duplicate column name {new!r} (from {seen[new]!r} and {original!r})")
        seen[new] = original
    return normalised


def quote_identifier(name: str) -> str:
    """A SQL identifier, whatever characters it holds."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def select_list(columns: list[tuple[str, str]], names: list[str]) -> str:
    """``"Original" AS "snake"`` for every column."""
    return ", ".join(
        f"{quote_identifier(original)} AS {quote_identifier(new)}"
        for (original, _), new in zip(columns, names, strict=True)
    )
