"""Contract configuration: literals and bounds must be values of the rule's type; date ranges are dates."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from analytics_platform.etl.contracts import ContractError, contracts_from_json, contracts_to_json, parse_contract


def rule(**body: Any) -> Any:
    return parse_contract("d", {"columns": {"c": body}}).columns[0]


def test_date_and_timestamp_ranges_take_iso_text_and_toml_dates() -> None:
    day = rule(type="date", min=datetime.date(2024, 1, 1), max="2024-12-31")
    assert (day.minimum, day.maximum) == ("2024-01-01", "2024-12-31")
    at = rule(
        type="timestamp", min=datetime.datetime(2024, 1, 1, 12, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    )
    assert at.minimum == "2024-01-01 10:00:00"  # stored timestamps are UTC


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"type": "date", "min": "2024-13-01"}, "not a date"),
        ({"type": "date", "min": datetime.datetime(2024, 1, 1, 10)}, "values are dates"),
        ({"type": "date", "min": "2024-02-01", "max": "2024-01-01"}, "above max"),
        ({"min": "2024-01-01"}, "needs type"),
        ({"type": "string", "min": 1}, "numeric, date or timestamp type"),
        ({"type": "integer", "allowed": [1, "2.0"]}, "'2.0' is not a integer"),
        ({"type": "integer", "allowed": [2**63]}, "is not a integer"),
        ({"type": "boolean", "allowed": ["T", "maybe"]}, "'maybe' is not a boolean"),
        ({"type": "double", "allowed": ["1.50", "lots"]}, "'lots' is not a double"),
        ({"type": "decimal", "allowed": ["1" * 39]}, "is not a decimal"),
    ],
)
def test_values_that_are_not_of_the_rule_type_are_refused_before_synth(body: dict[str, Any], message: str) -> None:
    with pytest.raises(ContractError, match=message):
        rule(**body)


def test_typed_literals_of_every_spelling_are_accepted() -> None:
    assert rule(type="boolean", allowed=["T", "F", True, 0]).allowed == ("T", "F", True, 0)
    assert rule(type="decimal", allowed=["9" * 38], min=0).allowed == ("9" * 38,)
    assert rule(type="double", allowed=["1.50", 2, "1e3"]).allowed == ("1.50", 2, "1e3")


def test_contracts_travel_as_json_unchanged() -> None:
    contract = parse_contract("d", {"columns": {
        "n": {"type": "decimal", "min": 10**19}, "day": {"type": "date", "max": datetime.date(2024, 12, 31)},
        "größe": {"allowed": ["s", "m"]},
    }})  # fmt: skip
    assert contracts_from_json(contracts_to_json({"d": contract})) == {"d": contract}
