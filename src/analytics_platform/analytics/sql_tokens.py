"""A small SQL tokenizer for the query guard: words, quoted identifiers, strings, numbers and symbols.

The guard must see a query's statements and keywords exactly where both engines see them, or a statement could
hide inside what the guard takes for a string or a comment. Athena (Trino) and DuckDB agree on the plain forms
(``'it''s'``, a doubled ``"`` inside a quoted name, ``-- to the end of the line``, ``/* ... */``) and disagree
on others; a form read differently by the two, or not at all by one of them, is refused rather than guessed:

* ``E'...'`` strings (DuckDB reads backslash escapes in them: ``E'\\''`` ends later than it seems);
* ``$$...$$`` / ``$tag$...$tag$`` strings and ``$1`` parameters (DuckDB only);
* a ``/*`` inside a block comment (DuckDB nests comments, Trino ends at the first ``*/``);
* backquoted identifiers (Athena reads them in DDL only, DuckDB not at all);
* any character outside a string or quoted identifier that is not ASCII: engines fold case differently beyond
  ASCII (Java upper-cases the dotless i, U+0131, to ``I``), so such a word could be a keyword to an engine and a
  plain name to the guard; no-break spaces and the like are whitespace to one engine, part of a name to another.

A line comment ends at a carriage return as well as a line feed, as in both engines.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from analytics_platform.analytics.refusals import StatementError, location

WORD, QUOTED, STRING, NUMBER, SYMBOL = "word", "quoted", "string", "number", "symbol"
_WHITESPACE = frozenset(" \t\r\n")
_SYMBOLS = frozenset("()[]{},.;+-*/%=<>!|&^~:?")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\w*", re.ASCII)
#: A word directly before a string changes how it reads (``E'..'``); only ``X'..'`` (binary, hex digits) is
#: read alike by both engines.
_STRING_PREFIXES = frozenset({"x"})


@dataclass(frozen=True)
class Token:
    """One token: its kind, its text as written, and where it starts and ends in the query."""

    kind: str
    text: str
    start: int
    end: int

    @property
    def keyword(self) -> str:
        """An unquoted word in upper case ("" for any other token): how both engines match keywords."""
        return self.text.upper() if self.kind == WORD else ""

    @property
    def name(self) -> str:
        """The identifier this token names, in lower case (Glue and Athena fold names), or "" if none."""
        if self.kind == WORD:
            return self.text.lower()
        if self.kind == QUOTED:
            return self.text[1:-1].replace('""', '"').lower()
        return ""

    def is_symbol(self, text: str) -> bool:
        """Whether this is the symbol ``text`` (``(``, ``;``, ...)."""
        return self.kind == SYMBOL and self.text == text


def _refuse(sql: str, offset: int, what: str, why: str = "") -> StatementError:
    return StatementError(f"{what} at {location(sql, offset)}" + (f": {why}" if why else ""))


def _quoted_end(sql: str, start: int, quote: str, what: str) -> int:
    """The end of a quoted token starting at ``start``; a doubled quote is part of it."""
    index = start + 1
    while True:
        found = sql.find(quote, index)
        if found < 0:
            raise _refuse(sql, start, f"unterminated {what}")
        if sql.startswith(quote * 2, found):
            index = found + 2
            continue
        return found + 1


def _comment_end(sql: str, start: int) -> int:
    close = sql.find("*/", start + 2)
    if close < 0:
        raise _refuse(sql, start, "unterminated /* comment")
    nested = sql.find("/*", start + 2, close)
    if nested >= 0:
        raise _refuse(
            sql, nested, "a /* comment inside a /* comment",
            "DuckDB nests comments, Athena does not, so where it ends is ambiguous",
        )  # fmt: skip
    return close + 2


def _string(sql: str, start: int, tokens: list[Token]) -> Token:
    end = _quoted_end(sql, start, "'", "string")
    previous = tokens[-1] if tokens else None
    adjacent = previous is not None and previous.kind == WORD and previous.end == start
    if previous is not None and adjacent and previous.text.lower() not in _STRING_PREFIXES:
        raise _refuse(
            sql, previous.start, f"the string prefix in {previous.text}'...'",
            "DuckDB reads backslash escapes in E'...' strings, Athena has no such strings; write a plain '...'",
        )  # fmt: skip
    return Token(STRING, sql[start:end], start, end)


def tokenize(sql: str) -> list[Token]:
    """The tokens of ``sql`` without whitespace and comments; raises :class:`StatementError` for a form the two
    engines read differently (see the module's docstring)."""
    tokens: list[Token] = []
    index, length = 0, len(sql)
    while index < length:
        char = sql[index]
        if char in _WHITESPACE:
            index += 1
        elif sql.startswith("--", index):
            ends = [found for found in (sql.find("\n", index), sql.find("\r", index)) if found >= 0]
            index = min(ends) if ends else length
        elif sql.startswith("/*", index):
            index = _comment_end(sql, index)
        elif char == "'":
            tokens.append(_string(sql, index, tokens))
            index = tokens[-1].end
        elif char == '"':
            end = _quoted_end(sql, index, '"', "quoted identifier")
            tokens.append(Token(QUOTED, sql[index:end], index, end))
            index = end
        elif (word := _WORD.match(sql, index)) is not None:
            tokens.append(Token(WORD, word.group(), index, word.end()))
            index = word.end()
        elif (number := _NUMBER.match(sql, index)) is not None:
            tokens.append(Token(NUMBER, number.group(), index, number.end()))
            index = number.end()
        elif char in _SYMBOLS:
            tokens.append(Token(SYMBOL, char, index, index + 1))
            index += 1
        else:
            raise _refuse(sql, index, *_unreadable(char))
    return tokens


def _unreadable(char: str) -> tuple[str, str]:
    if char == "`":
        return "a backquoted name", "Athena reads backquotes only in DDL, DuckDB not at all; use double quotes"
    if char == "$":
        return "a $ outside a string", "dollar-quoted strings and $ parameters are DuckDB's only"
    what = f"the character {char!r} (U+{ord(char):04X}) outside a string or quoted name"
    if char.isascii():
        return what, "it is no part of the SQL that Athena and DuckDB read alike"
    return what, "names and keywords are read as ASCII (the engines differ on the others); quote a name that is not"


def split_statements(tokens: Sequence[Token]) -> list[list[Token]]:
    """The statements of a token list, split at ``;``; empty ones (a trailing ``;``) are left out."""
    statements: list[list[Token]] = [[]]
    for token in tokens:
        if token.is_symbol(";"):
            statements.append([])
        else:
            statements[-1].append(token)
    return [statement for statement in statements if statement]


def group_end(sql: str, tokens: Sequence[Token], start: int) -> int:
    """The index of the ``)`` closing the ``(`` at ``tokens[start]``."""
    depth = 0
    for index in range(start, len(tokens)):
        if tokens[index].is_symbol("("):
            depth += 1
        elif tokens[index].is_symbol(")"):
            depth -= 1
            if depth == 0:
                return index
    raise _refuse(sql, tokens[start].start, "a ( without its )")
