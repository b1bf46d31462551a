"""Exactly one read statement: what may start a statement, wherever one may start.

A statement may start at the beginning of the query (after any ``(``), after ``EXPLAIN`` and its options,
inside each part of a ``WITH`` clause, and after the ``WITH`` clause. DuckDB runs ``WITH x AS (...) INSERT ...``
and both engines run the statement under ``EXPLAIN ANALYZE``, so each of these places is checked, against an
allow-list: a query (SELECT, WITH, VALUES, TABLE) everywhere, and at the top also SHOW, DESCRIBE and EXPLAIN.
Subqueries need no check: both engines accept only a query inside parentheses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from analytics_platform.analytics.refusals import StatementError, location
from analytics_platform.analytics.sql_tokens import QUOTED, STRING, WORD, Token, group_end, split_statements

QUERIES = frozenset({"SELECT", "WITH", "VALUES", "TABLE"})
READ_STATEMENTS = QUERIES | {"SHOW", "DESCRIBE", "DESC", "EXPLAIN"}
#: Options in ``EXPLAIN ( ... )`` (Trino: FORMAT, TYPE; DuckDB also the PostgreSQL words).
EXPLAIN_OPTIONS = frozenset({"FORMAT", "TYPE", "ANALYZE", "VERBOSE"})
#: Statements Athena reads with Hive's grammar, where a backslash escapes a quote inside a string.
HIVE_STATEMENTS = frozenset({"SHOW", "DESCRIBE", "DESC"})
#: Why a statement that is not a read is refused, for the ones a user is likely to try.
WHY_NOT: Mapping[str, str] = {
    **dict.fromkeys(("INSERT", "UPDATE", "DELETE", "MERGE", "TRUNCATE"), "changes rows"),
    **dict.fromkeys(("CREATE", "DROP", "ALTER", "COMMENT", "MSCK", "REFRESH", "VACUUM", "OPTIMIZE", "ANALYZE"),
                    "changes the catalog or a table"),
    "UNLOAD": "writes query results to S3",
    **dict.fromkeys(("COPY", "EXPORT", "IMPORT", "ATTACH", "DETACH", "INSTALL", "LOAD"), "reads or writes files"),
    **dict.fromkeys(("PREPARE", "EXECUTE", "DEALLOCATE"), "prepares or runs SQL the guard does not see"),
    **dict.fromkeys(("SET", "RESET", "USE", "PRAGMA"), "changes the session's settings, catalog or database"),
    **dict.fromkeys(("GRANT", "REVOKE", "DENY"), "changes permissions"),
    "CALL": "runs a procedure",
}  # fmt: skip
ALLOWED = "SELECT, WITH, VALUES, TABLE, SHOW, DESCRIBE, or EXPLAIN of a query"


def single_statement(sql: str, tokens: Sequence[Token]) -> list[Token]:
    """The one statement of ``tokens``; refuses none and more than one (a trailing ``;`` is fine)."""
    statements = split_statements(tokens)
    if not statements:
        raise StatementError("the query is empty (only whitespace, comments or ;)")
    if len(statements) > 1:
        second = statements[1][0]
        raise StatementError(
            f"more than one statement: a second one starts at {location(sql, second.start)} ({second.text} ...); "
            "tap query runs exactly one statement (a trailing ; is fine)"
        )
    return statements[0]


def check_read_statement(sql: str, tokens: Sequence[Token]) -> str:
    """Refuse anything but one read statement (:data:`READ_STATEMENTS`); returns its first keyword."""
    keyword = _start(sql, tokens, 0, READ_STATEMENTS, "")
    if keyword in HIVE_STATEMENTS:
        for token in tokens:
            if token.kind in (STRING, QUOTED) and "\\" in token.text:
                raise StatementError(
                    f"a backslash in {token.text} at {location(sql, token.start)}: Athena reads {keyword} with Hive's "
                    "rules, where a backslash escapes a quote, so where the string ends is ambiguous"
                )
    return keyword


def _start(sql: str, tokens: Sequence[Token], index: int, allowed: frozenset[str], context: str) -> str:
    """Check the statement starting at ``tokens[index]`` (after any ``(``) and what it holds."""
    position = index
    while position < len(tokens) and tokens[position].is_symbol("("):
        position += 1
    if position >= len(tokens):
        where = location(sql, tokens[-1].end if tokens else 0)
        raise StatementError(f"the query ends at {where} where a statement should start{context and ' ' + context}")
    if position > index:
        allowed = allowed & QUERIES  # only a query may stand in parentheses
    token = tokens[position]
    if token.keyword not in allowed:
        raise _not_read(sql, token, context, explained="EXPLAIN" in context)
    if token.keyword == "EXPLAIN":
        _explain(sql, tokens, position + 1)
    elif token.keyword == "WITH":
        _with(sql, tokens, position + 1)
    return token.keyword


def _not_read(sql: str, token: Token, context: str, *, explained: bool) -> StatementError:
    word = token.keyword or token.text
    default = "may not stand here (only a query may)" if token.keyword in READ_STATEMENTS else "is not a read statement"
    why = WHY_NOT.get(token.keyword, default)
    where = location(sql, token.start)
    if explained:
        runs = " (EXPLAIN ANALYZE runs the statement it explains)" if "ANALYZE" in context else ""
        because = f"{word} {why}; " if token.keyword in WHY_NOT else ""
        return StatementError(
            f"{context} {word} at {where}: {because}only a query (SELECT, WITH, VALUES, TABLE) may be explained{runs}"
        )
    placed = f" {context}" if context else ""
    return StatementError(f"{word}{placed} at {where} {why}: tap query runs exactly one read statement ({ALLOWED})")


def _explain(sql: str, tokens: Sequence[Token], index: int) -> None:
    analyze, position = False, index
    while position < len(tokens):
        token = tokens[position]
        if token.keyword in ("ANALYZE", "VERBOSE"):
            analyze, position = analyze or token.keyword == "ANALYZE", position + 1
        elif token.is_symbol("(") and position + 1 < len(tokens) and tokens[position + 1].keyword in EXPLAIN_OPTIONS:
            end = group_end(sql, tokens, position)
            analyze = analyze or any(t.keyword == "ANALYZE" for t in tokens[position:end])
            position = end + 1
        else:
            break
    _start(sql, tokens, position, QUERIES, "EXPLAIN ANALYZE of" if analyze else "EXPLAIN of")


def _expect(sql: str, tokens: Sequence[Token], position: int, what: str) -> Token:
    if position >= len(tokens):
        raise StatementError(f"the WITH clause ends at {location(sql, len(sql))} where {what} should follow")
    return tokens[position]


def _with(sql: str, tokens: Sequence[Token], index: int) -> None:
    """``WITH [RECURSIVE] name [(columns)] AS [[NOT] MATERIALIZED] (query) [, ...] query``."""
    position = index + (index < len(tokens) and tokens[index].keyword == "RECURSIVE")
    while True:
        name = _expect(sql, tokens, position, "a name")
        if name.kind not in (WORD, QUOTED):
            raise StatementError(f"{name.text} at {location(sql, name.start)} where the WITH clause names a query")
        position += 1
        if _expect(sql, tokens, position, "AS").is_symbol("("):
            position = group_end(sql, tokens, position) + 1
        if _expect(sql, tokens, position, "AS").keyword != "AS":
            token = tokens[position]
            raise StatementError(f"{token.text} at {location(sql, token.start)} where the WITH clause has AS")
        position += 1
        for optional in ("NOT", "MATERIALIZED"):
            position += _expect(sql, tokens, position, "(").keyword == optional
        body = _expect(sql, tokens, position, "(")
        if not body.is_symbol("("):
            raise StatementError(f"{body.text} at {location(sql, body.start)} where a WITH query's ( should be")
        _start(sql, tokens, position + 1, QUERIES, "inside a WITH clause")
        position = group_end(sql, tokens, position) + 1
        if position < len(tokens) and tokens[position].is_symbol(","):
            position += 1
            continue
        break
    _start(sql, tokens, position, QUERIES, "after a WITH clause")
