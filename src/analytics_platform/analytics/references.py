"""What a statement reads: every table, database, table function and file it names, found in its tokens.

A table is read only from a table position: after a query's FROM and after JOIN, after a comma of a FROM list,
inside a parenthesised join, after TABLE, and as the subject of SHOW and DESCRIBE. A name there is a
``[catalog.][database.]table`` chain, a table function when ``(`` follows it (``read_parquet(...)``,
``TABLE(...)``), or a string DuckDB would read as a file (``FROM 'x.parquet'``). A FROM that is part of an
expression (``EXTRACT(YEAR FROM d)``, ``a IS DISTINCT FROM b``) is not a table position: a FROM counts in a
parenthesis level that has seen SELECT, or right after ``(`` (DuckDB's FROM-first subqueries).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from analytics_platform.analytics.refusals import StatementError, location
from analytics_platform.analytics.sql_tokens import QUOTED, STRING, WORD, Token
from analytics_platform.analytics.statement import QUERIES

TABLE, DATABASE, FUNCTION, FILE, LISTING = "table", "database", "table function", "file", "listing"
#: Keywords that end a FROM list at their parenthesis level (a comma after them is not a table's).
FROM_LIST_ENDS = frozenset({"WHERE", "GROUP", "HAVING", "ORDER", "LIMIT", "OFFSET", "FETCH", "WINDOW", "UNION",
                            "INTERSECT", "EXCEPT", "QUALIFY"})  # fmt: skip
#: SHOW statements that list databases or catalogs, not the region's own tables.
LISTINGS = frozenset({"DATABASES", "SCHEMAS", "CATALOGS"})
SHOW_FORMS = "SHOW TABLES, VIEWS, COLUMNS, CREATE TABLE / VIEW, PARTITIONS, TBLPROPERTIES, STATS, FUNCTIONS"


@dataclass(frozen=True)
class Reference:
    """One thing a statement reads: its kind, its name's parts (lower case), its text and where it starts."""

    kind: str
    parts: tuple[str, ...]
    text: str
    start: int


@dataclass
class _Level:
    """One parenthesis level of the scan."""

    select_seen: bool = False
    in_from: bool = False


def _chain(sql: str, tokens: Sequence[Token], index: int) -> tuple[list[Token], int]:
    """The dotted name starting at ``tokens[index]`` and the index after it."""
    if index >= len(tokens) or tokens[index].kind not in (WORD, QUOTED):
        found = tokens[index] if index < len(tokens) else None
        where = location(sql, found.start if found else len(sql))
        raise StatementError(f"{found.text if found else 'the end of the query'} at {where} where a name should be")
    parts, position = [tokens[index]], index + 1
    while (
        position + 1 < len(tokens) and tokens[position].is_symbol(".") and tokens[position + 1].kind in (WORD, QUOTED)
    ):
        parts.append(tokens[position + 1])
        position += 2
    return parts, position


def _reference(sql: str, kind: str, parts: Sequence[Token]) -> Reference:
    text = sql[parts[0].start : parts[-1].end]
    return Reference(kind, tuple(part.name for part in parts), text, parts[0].start)


def _named(sql: str, tokens: Sequence[Token], index: int, kind: str) -> list[Reference]:
    parts, _ = _chain(sql, tokens, index)
    return [_reference(sql, kind, parts)]


def _show(sql: str, tokens: Sequence[Token]) -> list[Reference]:
    what = tokens[1].keyword if len(tokens) > 1 else ""
    following = [token.keyword for token in tokens[2:4]] + ["", ""]
    if what in LISTINGS:
        return [Reference(LISTING, (what.lower(),), f"SHOW {tokens[1].text}", tokens[0].start)]
    if what in ("TABLES", "VIEWS"):
        return _named(sql, tokens, 3, DATABASE) if following[0] in ("IN", "FROM") else []
    if what == "COLUMNS" and following[0] in ("IN", "FROM"):
        parts, after = _chain(sql, tokens, 3)
        found = [_reference(sql, TABLE, parts)]
        if after < len(tokens) and tokens[after].keyword in ("IN", "FROM"):
            found += _named(sql, tokens, after + 1, DATABASE)
        return found
    if what == "CREATE" and following[0] in ("TABLE", "VIEW"):
        return _named(sql, tokens, 3, TABLE)
    if what in ("PARTITIONS", "TBLPROPERTIES"):
        return _named(sql, tokens, 2, TABLE)
    if what == "STATS" and following[0] == "FOR":
        return [] if len(tokens) > 3 and tokens[3].is_symbol("(") else _named(sql, tokens, 3, TABLE)
    if what == "FUNCTIONS":
        return []
    shown = tokens[1].text if len(tokens) > 1 else "(nothing)"
    raise StatementError(
        f"SHOW {shown} at {location(sql, tokens[0].start)} is not one of the SHOW statements tap query runs "
        f"({SHOW_FORMS}); DESCRIBE <table> describes a table"
    )


def _describe(sql: str, tokens: Sequence[Token]) -> list[Reference]:
    position = 1
    while position < len(tokens) and tokens[position].keyword in ("EXTENDED", "FORMATTED"):
        position += 1
    if position < len(tokens) and (tokens[position].keyword in QUERIES or tokens[position].is_symbol("(")):
        return []  # DuckDB's DESCRIBE SELECT ...: the scan finds the query's tables
    return _named(sql, tokens, position, TABLE)


def statement_references(sql: str, tokens: Sequence[Token]) -> list[Reference]:
    """Every table, database, table function, file and catalog listing the statement ``tokens`` reads."""
    first = tokens[0].keyword if tokens else ""
    found = _show(sql, tokens) if first == "SHOW" else _describe(sql, tokens) if first in ("DESCRIBE", "DESC") else []
    return found + _scan(sql, tokens)


def _is_distinct_from(tokens: Sequence[Token], index: int) -> bool:
    """Whether the FROM at ``index`` ends ``IS [NOT] DISTINCT FROM`` (a comparison, not a table position)."""
    return index >= 2 and tokens[index - 1].keyword == "DISTINCT" and tokens[index - 2].keyword in ("IS", "NOT")


def _scan(sql: str, tokens: Sequence[Token]) -> list[Reference]:
    found: list[Reference] = []
    levels = [_Level()]
    expect_table = False
    index = 0
    while index < len(tokens):
        token, level = tokens[index], levels[-1]
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        if expect_table:
            expect_table = token.keyword == "LATERAL"
            if token.kind == STRING:
                found.append(Reference(FILE, (token.text,), token.text, token.start))
            elif token.kind in (WORD, QUOTED) and not expect_table:
                parts, index = _chain(sql, tokens, index)
                called = index < len(tokens) and tokens[index].is_symbol("(")
                found.append(_reference(sql, FUNCTION if called else TABLE, parts))
                continue
            elif token.is_symbol("("):
                # a parenthesised join, unless a query: its first name is a table, and so is each after a comma
                levels.append(_Level(in_from=following is not None and following.keyword not in QUERIES))
                expect_table = levels[-1].in_from
            index += 1
            continue
        if token.is_symbol("("):
            levels.append(_Level())
        elif token.is_symbol(")"):
            if len(levels) > 1:
                levels.pop()
        elif token.keyword == "SELECT":
            level.select_seen, level.in_from = True, False
        elif token.keyword == "FROM":
            previous = tokens[index - 1] if index else None
            table_from = level.select_seen or previous is None or previous.is_symbol("(")
            if table_from and not _is_distinct_from(tokens, index):
                level.in_from = expect_table = True
        elif token.keyword == "JOIN" or (token.is_symbol(",") and level.in_from):
            expect_table = True
        elif token.keyword == "TABLE":
            if following is not None and following.is_symbol("("):
                found.append(Reference(FUNCTION, ("table",), token.text, token.start))
            else:
                expect_table = True
        elif token.keyword in FROM_LIST_ENDS:
            level.in_from = False
        index += 1
    return found
