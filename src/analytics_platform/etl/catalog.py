"""The region's data catalog: one Glue table per dataset, whose schema follows the dataset's current files.

Each dataset's schema item in the job table (``dataset#<name>``) counts, per column and type, the current
SUCCEEDED files that hold that column with that type (``type_counts``), with a version number. A job's success
adds its columns, in the same transaction that records it SUCCEEDED; retiring a job (superseded, deleted)
subtracts them, in the same transaction that records that. So the counts are exact whatever crashes, and the
Glue table, brought up to them after every change (:meth:`DatasetCatalog.publish`), declares each column with the
widest type its current files hold: a column widens when a file needs it and narrows back when the file that
widened it is replaced or deleted; a column no current file holds leaves the table.

Policy (:func:`evolve`, checked again at commit): a column widens integer -> double and date -> timestamp (a file
narrower than the table is cast up before it is written); any other mix of types in one column (text and a
number, a boolean and a date) is refused: the file fails naming the column and both types, the table and the
other files unchanged. The key's own current version does not count against its replacement, so a corrected
re-upload always fits. A dataset contract's ``type`` pins a column (the transform casts it; values that do not
cast are rejected rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from analytics_platform.etl.catalog_types import (  # noqa: F401  # re-exported: the catalog's names
    _FROM_GLUE,
    GLUE_TYPES,
    WIDENINGS,
    _wider,
    catalog_type,
    widest,
)
from analytics_platform.etl.exceptions import SchemaConflictError
from analytics_platform.etl.schema_counts import SchemaItem, written_columns  # noqa: F401  # re-exported

PARTITION_KEY = "ingest_date"
MAX_ATTEMPTS = 20
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"


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
                if old == "string"
                else "the dataset's current files hold it typed: correct the file, or pin the column's type with a "
                "dataset contract so stray values become rejected rows"
                if kind == "string"
                else "no type holds both without changing the values already in the table"
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
    """Dataset schemas of one region: counted in the job table, published to the region's Glue database."""

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

    def read(self, dataset: str) -> SchemaItem:
        """The dataset's schema item (empty before its first file)."""
        item = self._table.get_item(Key=self.item_key(dataset), ConsistentRead=True).get("Item") or {}
        counts = {str(k): int(v) for k, v in (item.get("type_counts") or {}).items()}
        first_seen = {str(k): int(v) for k, v in (item.get("first_seen") or {}).items()}
        return SchemaItem(counts, first_seen, int(item.get("schema_version", 0)))

    def schema(self, dataset: str) -> tuple[list[tuple[str, str]], int]:
        """(columns, version) of a dataset; ([], 0) before its first file."""
        item = self.read(dataset)
        return item.columns(), item.version

    def evolve(
        self, dataset: str, file_columns: list[tuple[str, str]], exclude: Sequence[tuple[str, str]] = ()
    ) -> Evolution:
        """Check a file against the dataset's current files (without ``exclude``, the file it replaces) and say
        which of its columns to cast up; raises SchemaConflictError. Nothing is written: the job's success counts
        its columns (:meth:`counting_update`)."""
        return evolve(self.read(dataset).columns(exclude), file_columns)

    def counting_update(self, dataset: str, columns: list[tuple[str, str]], delta: int) -> dict[str, Any]:
        """The TransactWriteItems ``Update`` that adds ``delta`` to the counts of ``columns`` (catalog types), on
        the condition that nobody changed the item since it was read here (the caller retries then)."""
        seen = self.read(dataset)
        after = seen.counted(columns, delta)
        condition = "attribute_not_exists(schema_version)" if seen.version == 0 else "schema_version = :seen"
        values: dict[str, Any] = {":counts": after.counts, ":first": after.first_seen, ":next": after.version,
                                  ":dataset": dataset, ":kind": "dataset",
                                  ":now": datetime.now(UTC).isoformat(timespec="milliseconds")}  # fmt: skip
        if seen.version:
            values[":seen"] = seen.version
        return {"Update": {
            "TableName": self._table.name, "Key": self.item_key(dataset),
            "UpdateExpression": "SET type_counts = :counts, first_seen = :first, schema_version = :next, "
            "dataset = :dataset, record_type = :kind, updated_at = :now",
            "ConditionExpression": condition, "ExpressionAttributeValues": values,
        }}  # fmt: skip

    def publish(self, dataset: str) -> int:
        """Bring the Glue table up to the newest counts; returns the version published."""
        published = -1
        for _ in range(MAX_ATTEMPTS):
            item = self.read(dataset)
            columns = item.columns()
            if item.version == published or not columns:
                return item.version
            self._put_table(dataset, columns, item.version)
            published = item.version
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
