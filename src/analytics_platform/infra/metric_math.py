"""CloudWatch metric math, checked before AWS sees it: a parser and type checker of the documented syntax.

CloudWatch accepts a malformed expression in ``PutDashboard`` and shows an error in the widget, and
``PutMetricAlarm`` refuses it only at apply time; a wrongly typed one (``MAX([m, 1])``: a scalar where an array
of time series is expected) may even be accepted and evaluate to nothing. This module checks every expression
against the function table of the CloudWatch User Guide ("Metric math syntax and functions",
``using-metric-math``): each function with its argument types (S scalar, TS time series, TS[] array of time
series) and return type, the arithmetic, comparison and logical operators with the operand pairs the guide
lists, ``IF`` with its six valid forms, ids that start with a lowercase letter and name a query of the same
request. An alarm must end in one time series and should avoid the functions the guide advises against in alarms.
No cdktf import: ``tap check`` and the unit tests read the synthesized JSON with it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

S, TS, ARRAY, TEXT = "S", "TS", "TS[]", "string"
#: Bare words some functions take as arguments (FILL's filler, SORT's function and order).
KEYWORDS = {"REPEAT", "LINEAR", "ASC", "DESC", "AVG", "MIN", "MAX", "SUM"}
Signature = tuple[tuple[str, ...], str]


def _each(*types: str, returns: Callable[[str], str] = lambda t: t) -> list[Signature]:
    return [((t,), returns(t)) for t in types]


_REDUCE = {TS: S, ARRAY: TS}.__getitem__
#: Functions of one TS or TS[] that keep the shape (``ABS(m1)`` is a TS, ``ABS(METRICS())`` a TS[]).
ELEMENTWISE = ("ABS", "CEIL", "FLOOR", "DIFF", "DIFF_TIME", "LOG", "LOG10", "RATE", "RUNNING_SUM")
#: Functions that reduce: a TS to a scalar, a TS[] to one TS.
REDUCING = ("AVG", "DATAPOINT_COUNT", "MAX", "MIN", "STDDEV", "SUM")
#: Functions of exactly one TS giving a TS.
OF_ONE_SERIES = ("MINUTE", "HOUR", "DAY", "DATE", "MONTH", "YEAR", "EPOCH", "SERVICE_QUOTA")
_SORTS: list[Signature] = [
    ((ARRAY, f"kw:{function}", f"kw:{order}", *limit), ARRAY)
    for function in ("AVG", "MIN", "MAX", "SUM")
    for order in ("ASC", "DESC")
    for limit in ((), (S,))
]
_FILLS: list[Signature] = [((TS, f), TS) for f in (S, "kw:REPEAT", "kw:LINEAR")]
_FILLS += [((ARRAY, f), ARRAY) for f in (TS, S, "kw:REPEAT", "kw:LINEAR")]
#: The guide's table: function -> accepted argument tuples, each with its return type. ``kw:`` marks a bare word.
FUNCTIONS: Mapping[str, list[Signature]] = {
    **{name: _each(TS, ARRAY) for name in ELEMENTWISE},
    **{name: _each(TS, ARRAY, returns=_REDUCE) for name in REDUCING},
    **{name: _each(TS) for name in OF_ONE_SERIES},
    "ANOMALY_DETECTION_BAND": [((TS,), ARRAY), ((TS, S), ARRAY)],
    "FILL": _FILLS,
    "FIRST": [((ARRAY,), TS)],
    "LAST": [((ARRAY,), TS)],
    "IF": [((c, t), TS) for c, t in ((TS, TS), (TS, S), (S, TS))]
    + [((c, t, f), TS) for c, t, f in ((TS, TS, TS), (TS, S, TS), (TS, TS, S), (TS, S, S), (S, TS, TS))],
    "INSIGHT_RULE_METRIC": [((TEXT, TEXT), TS)],
    "METRIC_COUNT": [((ARRAY,), S)],
    "METRICS": [((), ARRAY), ((TEXT,), ARRAY)],
    "PERIOD": [((TS,), S)],
    "REMOVE_EMPTY": [((ARRAY,), ARRAY)],
    "SEARCH": [((TEXT,), ARRAY)],
    "SLICE": [((ARRAY, S), ARRAY), ((ARRAY, S, S), ARRAY)],
    "SORT": _SORTS,
    "TIME_SERIES": [((S,), TS)],
}
#: "We recommend that you do not use this function in CloudWatch alarms" (the alarm fetches more datapoints than
#: it evaluates, and these functions answer differently then).
NOT_FOR_ALARMS = frozenset({"AVG", "DATAPOINT_COUNT", "MAX", "MIN", "REMOVE_EMPTY", "RUNNING_SUM", "STDDEV", "SUM"})
#: An alarm cannot be based on SEARCH (many time series).
NEVER_IN_ALARMS = frozenset({"SEARCH"})

TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<text>\"[^\"]*\")"
    r"|(?P<op>&&|\|\||==|!=|<=|>=|[-+*/^<>(),\[\]]))"
)
LEVELS: tuple[frozenset[str], ...] = (
    frozenset({"OR", "||"}), frozenset({"AND", "&&"}), frozenset({"==", "!=", "<=", ">=", "<", ">"}),
    frozenset({"+", "-"}), frozenset({"*", "/"}), frozenset({"^"}),
)  # fmt: skip
ARITHMETIC = frozenset({"+", "-", "*", "/", "^"})


class MetricMathError(ValueError):
    """An expression CloudWatch would refuse or evaluate to nothing."""


@dataclass(frozen=True)
class Checked:
    """An expression's result type and the functions it calls."""

    type: str
    functions: frozenset[str]


class _Parser:
    """Recursive descent over the tokens; each method returns the type of what it parsed."""

    def __init__(self, expression: str, ids: frozenset[str]) -> None:
        self.tokens = _tokens(expression)
        self.position = 0
        self.ids = ids
        self.functions: set[str] = set()

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise MetricMathError(f"expected {expected or 'more'} at token {self.position}, found {token!r}")
        self.position += 1
        return token

    def binary(self, level: int = 0) -> str:
        if level == len(LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while self.peek() in LEVELS[level]:
            operator = self.take()
            left = _combine(operator, left, self.binary(level + 1))
        return left

    def unary(self) -> str:
        if self.peek() == "-":
            self.take()
            operand = self.unary()
            if operand not in (S, TS, ARRAY):
                raise MetricMathError(f"unary minus of {operand}")
            return operand
        return self.primary()

    def primary(self) -> str:
        token = self.take()
        if token == "(":
            inner = self.binary()
            self.take(")")
            return inner
        if token == "[":
            return self.array()
        if token.startswith('"'):
            return TEXT
        if re.fullmatch(r"\d+(?:\.\d+)?", token):
            return S
        if self.peek() == "(":
            return self.call(token)
        if token in KEYWORDS:
            return f"kw:{token}"
        if not re.fullmatch(r"[a-z][A-Za-z0-9_]*", token):
            raise MetricMathError(f"{token!r} is neither a function call nor an id (ids start with a lowercase letter)")
        if token not in self.ids:
            raise MetricMathError(f"id {token!r} names no query of this request (known: {', '.join(sorted(self.ids))})")
        return TS

    def array(self) -> str:
        while True:
            element = self.binary()
            if element not in (TS, ARRAY):
                raise MetricMathError(f"an array holds time series only, not {element}")
            if self.take() == "]":
                return ARRAY

    def call(self, name: str) -> str:
        if name not in FUNCTIONS:
            raise MetricMathError(f"{name} is not a metric math function (they are written in uppercase)")
        self.take("(")
        arguments: list[str] = []
        while self.peek() != ")":
            arguments.append(self.binary())
            if self.peek() != ")":
                self.take(",")
        self.take(")")
        self.functions.add(name)
        for accepted, returns in FUNCTIONS[name]:
            if tuple(arguments) == accepted:
                return returns
        forms = "; ".join(f"{name}({', '.join(a)})" for a, _ in FUNCTIONS[name])
        raise MetricMathError(f"{name}({', '.join(arguments)}) matches none of {forms}")


def _tokens(expression: str) -> list[str]:
    tokens, position = [], 0
    while position < len(expression.rstrip()):
        match = TOKEN.match(expression, position)
        if match is None or match.end() == position:
            raise MetricMathError(f"unexpected character at {position}: {expression[position : position + 10]!r}")
        tokens.append(match.group(match.lastgroup or "op"))
        position = match.end()
    return tokens


def _combine(operator: str, left: str, right: str) -> str:
    """The result type of ``left operator right``, for the operand pairs the guide lists."""
    if operator in ARITHMETIC:
        pairs = {(S, S): S, (S, TS): TS, (TS, S): TS, (TS, TS): TS, (ARRAY, S): ARRAY, (S, ARRAY): ARRAY,
                 (ARRAY, TS): ARRAY, (TS, ARRAY): ARRAY}  # fmt: skip
    else:  # comparison and logical operators: a pair of time series or scalars (or one of each)
        pairs = {(S, S): S, (S, TS): TS, (TS, S): TS, (TS, TS): TS}
    if (left, right) not in pairs:
        raise MetricMathError(f"{left} {operator} {right} is not a valid operation")
    return pairs[(left, right)]


def check_expression(expression: str, ids: Sequence[str], *, alarm: bool) -> Checked:
    """Parse and type-check one expression whose request holds the queries ``ids``.

    Raises :class:`MetricMathError` if CloudWatch would refuse it: unknown or lowercase function, wrong number or
    type of arguments, unknown id, a scalar result; for an ``alarm`` also anything but one time series, and the
    functions the guide keeps out of alarms.
    """
    parser = _Parser(expression, frozenset(ids))
    result = parser.binary()
    if parser.peek() is not None:
        raise MetricMathError(f"unexpected {parser.peek()!r} after a complete expression")
    if result not in ((TS,) if alarm else (TS, ARRAY)):
        needed = "an alarm watches one time series" if alarm else "a graph shows time series"
        raise MetricMathError(f"the result is {result}; {needed}")
    avoided = parser.functions & (NOT_FOR_ALARMS | NEVER_IN_ALARMS) if alarm else set()
    if avoided:
        raise MetricMathError(f"{', '.join(sorted(avoided))} should not be used in an alarm (CloudWatch User Guide)")
    return Checked(result, frozenset(parser.functions))


def stack_expressions(stack: dict[str, Any]) -> Iterator[tuple[str, str, list[str], bool]]:
    """``(where, expression, ids of its request, is_alarm)`` for every metric math expression of a stack."""
    for name, alarm in stack.get("resource", {}).get("aws_cloudwatch_metric_alarm", {}).items():
        queries = alarm.get("metric_query") or []
        ids = [q["id"] for q in queries]
        for query in queries:
            if query.get("expression"):
                yield f"aws_cloudwatch_metric_alarm.{name}", query["expression"], ids, True
    for name, dashboard in stack.get("resource", {}).get("aws_cloudwatch_dashboard", {}).items():
        for widget in json.loads(dashboard["dashboard_body"]).get("widgets", []):
            metrics = widget.get("properties", {}).get("metrics", [])
            options = [m[-1] if m and isinstance(m[-1], dict) else {} for m in metrics]
            ids = [o["id"] for o in options if "id" in o]
            for option in options:
                if "expression" in option:
                    yield f"aws_cloudwatch_dashboard.{name}", option["expression"], ids, False


def check_metric_math(stack_name: str, stack: dict[str, Any]) -> list[str]:
    """``tap check``: every alarm and dashboard expression of the stack is one CloudWatch accepts."""
    findings = []
    for where, expression, ids, alarm in stack_expressions(stack):
        try:
            check_expression(expression, ids, alarm=alarm)
        except MetricMathError as error:
            findings.append(f"{stack_name}/{where}: metric math {expression!r}: {error}")
    return findings
