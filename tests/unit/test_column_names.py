"""Column names: case-insensitive identity, Unicode kept, collisions suffixed, the partition key renamed."""

from __future__ import annotations

import pytest

from analytics_platform.etl.column_names import MAX_NAME_BYTES, column_name, is_column_name, normalise_columns
from analytics_platform.etl.contracts import ContractError, parse_contract


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("Joined At", "joined_at"),
        ("userID", "userid"),
        ("USERID", "userid"),
        ("  Order   ID  ", "order_id"),
        ("_id", "id"),
        ("2024 total", "_2024_total"),
        ("Größe (cm)", "größe_cm"),
        ("Gro\u0308\u00dfe", "größe"),  # decomposed umlaut: the same name as the composed one
        ("名前", "名前"),
        ("Имя", "имя"),
        ("\uff21\uff22\uff23", "abc"),  # full-width letters
        ("€", "euro_sign"),
        ("%", "percent_sign"),
        ("", "column_4"),
    ],
)
def test_a_header_becomes_a_lower_case_name_that_keeps_its_letters(header: str, name: str) -> None:
    assert column_name(header, 3) == name


def test_names_differing_only_in_case_are_one_column_across_files() -> None:
    # GIVEN the same columns spelled in different case in two files WHEN named THEN the names are equal
    assert normalise_columns(["userID", "Amount"]) == normalise_columns(["USERID", "amount"]) == ["userid", "amount"]


def test_collisions_within_one_file_get_the_first_free_suffix_in_column_order() -> None:
    # GIVEN headers that name the same column, one of them colliding with a suffixed name the file already has
    assert normalise_columns(["id", "ID", "Id", "id_2"]) == ["id", "id_3", "id_4", "id_2"]
    assert normalise_columns(["User Id", "user_id"]) == ["user_id", "user_id_2"]


def test_the_partition_key_is_renamed_not_refused() -> None:
    assert normalise_columns(["id", "Ingest Date"]) == ["id", "source_ingest_date"]
    assert normalise_columns(["ingest_date", "source_ingest_date"]) == ["source_ingest_date", "source_ingest_date_2"]


def test_long_names_fit_glue_and_stay_apart() -> None:
    # GIVEN two 300-character headers that differ only at their end
    first, second = normalise_columns(["ä" * 300 + "1", "ä" * 300 + "2"])
    # THEN both fit Glue's 255 bytes (with room for a suffix) and differ
    assert first != second
    assert all(len(name.encode()) <= MAX_NAME_BYTES - 15 for name in (first, second))
    assert is_column_name(first)


def test_contracts_name_columns_as_the_worker_writes_them() -> None:
    parse_contract("d", {"columns": {"größe": {"type": "double"}, "名前": {"not_null": True}}})
    with pytest.raises(ContractError, match="'userid'"):
        parse_contract("d", {"columns": {"userId": {"type": "integer"}}})
    with pytest.raises(ContractError, match="source_ingest_date"):
        parse_contract("d", {"columns": {"ingest_date": {"type": "date"}}})
