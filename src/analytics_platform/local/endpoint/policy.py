"""IAM's evaluation of a role's identity policies for one request: action, resource and conditions.

What AWS does, and this module with it:

* an explicit ``Deny`` that applies wins; otherwise some ``Allow`` must apply; otherwise the call is denied;
* a statement applies when its ``Action`` (or ``NotAction``) matches the action, case-insensitively, its
  ``Resource`` (or ``NotResource``) matches the resource ARN, case-sensitively, and its ``Condition`` holds;
  ``*`` matches any run of characters and ``?`` any one character, everything else is literal;
* condition operators: ``String(Not)Equals``, ``String(Not)EqualsIgnoreCase``, ``String(Not)Like``,
  ``Arn(Not)Equals``, ``Arn(Not)Like``, ``Bool`` and ``Null``, each also with ``IfExists``; a statement
  with several operators or keys needs all of them; a key with several values needs any one of them
  (for ``Not`` operators: none of them). A key absent from the request fails a positive operator and
  satisfies a ``Not`` operator (``...IfExists``: satisfied either way), as on AWS.

The request keys known locally are :data:`KNOWN_KEYS` (region, principal, S3 listing parameters and version,
the source of the events a PutEvents request puts).
A condition the endpoint cannot evaluate (another key, ``ForAnyValue:`` / ``ForAllValues:``, numeric or date
operators) is treated conservatively, so that a local run fails where AWS might: an ``Allow`` carrying it
does not apply, and a ``Deny`` carrying it does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

#: Request context keys the endpoint derives (lower case, as IAM compares keys case-insensitively).
KNOWN_KEYS = frozenset(
    {
        "aws:requestedregion",
        "aws:securetransport",
        "aws:principalarn",
        "aws:principalaccount",
        "aws:principaltype",
        "s3:prefix",
        "s3:delimiter",
        "s3:max-keys",
        "s3:versionid",
        "events:source",
    }
)
_OPERATORS = {
    "stringequals": ("equals", False),
    "stringnotequals": ("equals", True),
    "stringequalsignorecase": ("equals-ignore-case", False),
    "stringnotequalsignorecase": ("equals-ignore-case", True),
    "stringlike": ("like", False),
    "stringnotlike": ("like", True),
    "arnequals": ("like", False),  # ARN operators accept wildcards in every component
    "arnlike": ("like", False),
    "arnnotequals": ("like", True),
    "arnnotlike": ("like", True),
    "bool": ("equals-ignore-case", False),
}


@lru_cache(maxsize=4096)
def _wildcard(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """IAM's wildcards: ``*`` any run, ``?`` one character; everything else literal."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _values(element: Any) -> list[str]:
    return [str(v) for v in element] if isinstance(element, list) else [str(element)]


def _any_matches(patterns: Iterable[str], value: str, *, ignore_case: bool) -> bool:
    return any(_wildcard(pattern, ignore_case).match(value) for pattern in patterns)


def _element_matches(statement: Mapping[str, Any], name: str, value: str, *, ignore_case: bool) -> bool:
    """``Action`` / ``Resource`` matches, or ``NotAction`` / ``NotResource`` does not; True when neither is set."""
    if name in statement:
        return _any_matches(_values(statement[name]), value, ignore_case=ignore_case)
    if f"Not{name}" in statement:
        return not _any_matches(_values(statement[f"Not{name}"]), value, ignore_case=ignore_case)
    return True


def _operator_holds(operator: str, tests: Mapping[str, Any], context: Mapping[str, str]) -> bool | None:
    """Whether one condition operator block holds; None when the endpoint cannot tell."""
    name = operator.lower()
    if_exists = name.endswith("ifexists")
    name = name.removesuffix("ifexists")
    for key, expected in tests.items():
        key = key.lower()
        if key not in KNOWN_KEYS:
            return None
        actual = context.get(key)
        if name == "null":
            if (actual is None) != (str(expected).lower() == "true"):
                return False
            continue
        if name not in _OPERATORS:
            return None
        kind, negated = _OPERATORS[name]
        if actual is None:
            if not (if_exists or negated):
                return False
            continue
        patterns = _values(expected)
        if kind == "like":
            found = _any_matches(patterns, actual, ignore_case=False)
        else:
            ignore_case = kind == "equals-ignore-case"
            found = any((p.lower() == actual.lower()) if ignore_case else p == actual for p in patterns)
        if found == negated:
            return False
    return True


def conditions_hold(condition: Mapping[str, Any] | None, context: Mapping[str, str]) -> bool | None:
    """Whether every operator of a ``Condition`` block holds; None when one cannot be evaluated here."""
    results = [_operator_holds(op, tests, context) for op, tests in (condition or {}).items()]
    if False in results:
        return False
    return None if None in results else True


def _applies(statement: Mapping[str, Any], action: str, resource: str, context: Mapping[str, str]) -> bool:
    if not _element_matches(statement, "Action", action, ignore_case=True):
        return False
    if not _element_matches(statement, "Resource", resource, ignore_case=False):
        return False
    held = conditions_hold(statement.get("Condition"), context)
    return held if held is not None else statement.get("Effect") == "Deny"  # conservative, see module docstring


def _statements(documents: Iterable[str]) -> list[Mapping[str, Any]]:
    found: list[Mapping[str, Any]] = []
    for document in documents:
        statements = json.loads(document).get("Statement", [])
        found += [statements] if isinstance(statements, dict) else statements
    return found


def is_allowed(documents: Iterable[str], action: str, resource: str, context: Mapping[str, str]) -> bool:
    """IAM's decision for one identity: an applying Deny wins, else an applying Allow is needed."""
    applying = [s.get("Effect") for s in _statements(documents) if _applies(s, action, resource, context)]
    return "Allow" in applying and "Deny" not in applying
