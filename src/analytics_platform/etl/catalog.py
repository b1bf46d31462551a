"""The region's data catalog: one Glue table per dataset, evolved by the files that succeed.

The schema of each dataset lives in the job table too (item ``dataset#<name>``, with a version number), so
concurrent jobs of one dataset serialize their changes with conditional writes and none is lost; the Glue
table is then brought up to that schema (:meth:`DatasetCatalog.publish`), re-reading until it is the newest.

Evolution policy (:func:`evolve`): new columns are added; a column widens integer -> double, date ->
timestamp, and anything -> string; a file whose column is narrower than the table's (an integer into a double
column) is cast up. A file with a *typed* column where the table holds text (text to integer) is refused: its
values were typed on reading and have lost their text form (leading zeros, formatting), so the job fails naming
the column and both types. Boolean against number or date is refused alike.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from analytics_platform.etl.exceptions import SchemaConflictError, TransientError

PARTITION_KEY = "ingest_date"
#: Catalog types (the contract's names) and their Glue / Athena spelling. ``decimal`` holds whole numbers of up to
#: 38 digits exactly (integers beyond BIGINT), which a double would round.
GLUE_TYPES = {"integer": "bigint", "decimal": "decimal(38,0)", "double": "double", "string": "string",
              "boolean": "boolean", "date": "date", "timestamp": "timestamp"}  # fmt: skip
_FROM_GLUE = {glue: kind for kind, glue in GLUE_TYPES.items()}
#: A column of the first type may become the second without changing a value already in the table.
WIDENINGS = frozenset({("integer", "double"), ("integer", "decimal"), ("date", "timestamp")})
MAX_ATTEMPTS = 20
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
_INTEGERS = frozenset({"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"})
_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")


def catalog_type(duckdb_type: str) -> str:
    """The catalog type of a DuckDB column type: the one its values are written as, exactly.

    Integers up to 64 bits are ``integer``; UBIGINT, HUGEINT and DECIMAL(p,0) ``decimal`` (38 digits, exact);
    FLOAT, DOUBLE and DECIMAL with a scale ``double``; every TIMESTAMP ``timestamp`` (with a time zone: UTC);
    anything else (TIME, UUID, nested, JSON, BLOB, ...) is written as text: ``string``.
    """
    kind = duckdb_type.strip().upper()
    decimal = _DECIMAL.fullmatch(kind)
    if kind in _INTEGERS:
        return "integer"
    if kind in {"UBIGINT", "HUGEINT"} or (decimal is not None and int(decimal.group(2)) == 0):
        return "decimal"
    if kind in {"DOUBLE", "FLOAT"} or kind.startswith("DECIMAL"):
        return "double"
    if kind == "BOOLEAN":
        return "boolean"
    if kind == "DATE":
        return "date"
    if kind.startswith("TIMESTAMP"):
        return "timestamp"
    return "string"


def _wider(old: str, new: str) -> bool:
    return (old, new) in WIDENINGS or (new == "string" and old != "string")


@dataclass
class Evolution:
    """The table after a file, and what the file needs to agree with it."""

    columns: list[tuple[str, str]]
    casts: dict[str, str] = field(default_factory=dict)
    added: list[str] = field(default_factory=list)
    widened: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Whether the table's columns change."""
        return bool(self.added or self.widened)


def evolve(table: list[tuple[str, str]], file_columns: list[tuple[str, str]]) -> Evolution:
    """Merge a file's (name, DuckDB type) columns into the table's (name, catalog type) columns.

    Raises :class:`SchemaConflictError` naming the column and both types for an incompatible change.
    """
    merged = dict(table)
    result = Evolution(columns=[])
    for name, duckdb_type in file_columns:
        if name == PARTITION_KEY:
            raise SchemaConflictError(
                f"column {name!r} is the table's partition key (the upload day); rename it in the file"
            )
        kind = catalog_type(duckdb_type)
        old = merged.get(name)
        if old is None:
            merged[name] = kind
            result.added.append(name)
        elif old == kind:
            continue
        elif _wider(old, kind):
            merged[name] = kind
            result.widened.append((name, old, kind))
        elif (kind, old) in WIDENINGS:
            result.casts[name] = old
        else:
            reason = (
                "its values were typed on reading and lost their text form; keep the column text in the file"
                if old == "string" else "no type holds both without changing the values already in the table"
            )  # fmt: skip
            raise SchemaConflictError(
                f"column {name!r} is {old} in the dataset's table but {kind} in this file: {reason}"
            )
    result.columns = list(merged.items())
    return result


def table_input(
    dataset: str, columns: list[tuple[str, str]], *, bucket: str, prefix: str, version: int
) -> dict[str, Any]:
    """The Glue ``TableInput`` of a dataset: Parquet under ``processed/<dataset>/``, partition projection on
    ``ingest_date`` (no crawler, no partition maintenance)."""
    location = f"s3://{bucket}/{prefix}{dataset}/"
    return {
        "Name": dataset,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {
            "classification": "parquet",
            "EXTERNAL": "TRUE",
            "projection.enabled": "true",
            f"projection.{PARTITION_KEY}.type": "date",
            f"projection.{PARTITION_KEY}.format": "yyyy-MM-dd",
            f"projection.{PARTITION_KEY}.range": "2020-01-01,NOW",
            f"projection.{PARTITION_KEY}.interval": "1",
            f"projection.{PARTITION_KEY}.interval.unit": "DAYS",
            "storage.location.template": f"{location}{PARTITION_KEY}=${{{PARTITION_KEY}}}",
            "tap.schema_version": str(version),
        },
        "PartitionKeys": [{"Name": PARTITION_KEY, "Type": "string"}],
        "StorageDescriptor": {
            "Columns": [{"Name": name, "Type": GLUE_TYPES[kind]} for name, kind in columns],
            "Location": location,
            "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
            "SerdeInfo": {"SerializationLibrary": PARQUET_SERDE, "Parameters": {"serialization.format": "1"}},
        },
    }


def glue_columns(table: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, catalog type) of a Glue table's data columns."""
    columns = table.get("StorageDescriptor", {}).get("Columns", [])
    return [(c["Name"], _FROM_GLUE.get(c["Type"], "string")) for c in columns]


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class DatasetCatalog:
    """Dataset schemas of one region: versioned in the job table, published to the region's Glue database."""

    def __init__(self, table: Any, glue: Any, *, database: str, bucket: str, prefix: str) -> None:
        self._table = table
        self._glue = glue
        self.database = database
        self._bucket = bucket
        self._prefix = prefix

    @staticmethod
    def item_key(dataset: str) -> dict[str, str]:
        """Key of the dataset's schema item in the job table."""
        return {"job_id": f"dataset#{dataset}"}

    def schema(self, dataset: str) -> tuple[list[tuple[str, str]], int]:
        """(columns, version) of a dataset; ([], 0) before its first file."""
        item = self._table.get_item(Key=self.item_key(dataset), ConsistentRead=True).get("Item") or {}
        columns = [(str(c["name"]), str(c["type"])) for c in item.get("columns", [])]
        return columns, int(item.get("schema_version", 0))

    def evolve(self, dataset: str, file_columns: list[tuple[str, str]]) -> Evolution:
        """Merge a file into the dataset's schema and commit it; concurrent commits retry, none is lost."""
        for _ in range(MAX_ATTEMPTS):
            columns, version = self.schema(dataset)
            evolution = evolve(columns, file_columns)
            if not evolution.changed and version:
                return evolution
            if self._commit(dataset, evolution.columns, version):
                return evolution
            time.sleep(0.05)
        raise TransientError(f"the {dataset!r} schema kept changing under concurrent jobs; retrying")

    def _commit(self, dataset: str, columns: list[tuple[str, str]], version: int) -> bool:
        condition = "attribute_not_exists(job_id)" if version == 0 else "schema_version = :version"
        values: dict[str, Any] = {
            ":columns": [{"name": n, "type": t} for n, t in columns],
            ":next": version + 1,
            ":dataset": dataset,
            ":kind": "dataset",
            ":now": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
        if version:
            values[":version"] = version
        try:
            self._table.update_item(
                Key=self.item_key(dataset),
                UpdateExpression=(
                    "SET #columns = :columns, schema_version = :next, dataset = :dataset, record_type = :kind, "
                    "updated_at = :now"
                ),
                ConditionExpression=condition,
                ExpressionAttributeNames={"#columns": "columns"},
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if _code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def publish(self, dataset: str) -> int:
        """Bring the Glue table up to the newest committed schema; returns the version published."""
        published = -1
        for _ in range(MAX_ATTEMPTS):
            columns, version = self.schema(dataset)
            if version == published or not columns:
                return version
            self._put_table(dataset, columns, version)
            published = version
        return published

    def _put_table(self, dataset: str, columns: list[tuple[str, str]], version: int) -> None:
        body = table_input(dataset, columns, bucket=self._bucket, prefix=self._prefix, version=version)
        try:
            current = self._glue.get_table(DatabaseName=self.database, Name=dataset)["Table"]
        except ClientError as error:
            if _code(error) != "EntityNotFoundException":
                raise
            try:
                self._glue.create_table(DatabaseName=self.database, TableInput=body)
                return
            except ClientError as create_error:
                if _code(create_error) != "AlreadyExistsException":
                    raise
                current = self._glue.get_table(DatabaseName=self.database, Name=dataset)["Table"]
        if int(current.get("Parameters", {}).get("tap.schema_version", "0")) >= version:
            return  # as new or newer already
        self._glue.update_table(DatabaseName=self.database, TableInput=body)
