"""What a region's catalog holds: its Glue tables (columns, types, location) and, from the job table, each
dataset's current files, rows and last update."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from boto3.dynamodb.conditions import Key

from analytics_platform.etl.catalog import PARTITION_KEY, glue_columns
from analytics_platform.etl.job_values import STATUS_INDEX, SUCCEEDED


@dataclass(frozen=True)
class CatalogTable:
    """One dataset's Glue table."""

    name: str
    columns: list[tuple[str, str]]
    location: str
    schema_version: int
    location_template: str = ""

    def locations(self) -> list[str]:
        """Every S3 location the table reads: its location and, with partition projection, its template."""
        return [value for value in (self.location, self.location_template) if value]

    @property
    def prefix(self) -> str:
        """The table's S3 prefix (``processed/<dataset>/``) inside its bucket."""
        return self.location.removeprefix("s3://").split("/", 1)[1] if "/" in self.location[5:] else ""

    @property
    def bucket(self) -> str:
        """The bucket the table's location is in."""
        return self.location.removeprefix("s3://").split("/", 1)[0]


@dataclass
class DatasetStats:
    """What the job table says is in ``processed/`` for a dataset: one SUCCEEDED job per current file."""

    files: int = 0
    rows: int = 0
    last_update: str = ""
    outputs: list[str] = field(default_factory=list)


def _pages(glue: Any, database: str) -> Iterator[dict[str, Any]]:
    for page in glue.get_paginator("get_tables").paginate(DatabaseName=database):
        yield from page.get("TableList", [])


def catalog_tables(glue: Any, database: str) -> list[CatalogTable]:
    """Every table of ``database``, by name."""
    tables = []
    for table in _pages(glue, database):
        parameters = table.get("Parameters", {})
        tables.append(
            CatalogTable(
                name=table["Name"],
                columns=glue_columns(table),
                location=table.get("StorageDescriptor", {}).get("Location", ""),
                schema_version=int(parameters.get("tap.schema_version", "0") or 0),
                location_template=parameters.get("storage.location.template", ""),
            )
        )
    return sorted(tables, key=lambda t: t.name)


class CatalogLocationError(ValueError):
    """A catalog table reads from outside the region's own bucket."""


def check_locations(tables: list[CatalogTable], *, region: str, bucket: str) -> None:
    """Refuse a catalog whose tables (location or projection template) read outside ``bucket``."""
    for table in tables:
        for location in table.locations():
            if not location.startswith(f"s3://{bucket}/"):
                raise CatalogLocationError(
                    f"catalog table {table.name!r} reads {location!r}, outside {region}'s bucket {bucket}; refusing "
                    "to query this catalog"
                )


def dataset_stats(job_table: Any) -> dict[str, DatasetStats]:
    """Per dataset, its SUCCEEDED jobs (through the by-status index, never a scan).

    Latest version wins keeps exactly one Parquet file per SUCCEEDED job in ``processed/``: superseded versions
    leave both ``processed/`` and the SUCCEEDED status together.
    """
    stats: dict[str, DatasetStats] = {}
    kwargs: dict[str, Any] = {"IndexName": STATUS_INDEX, "KeyConditionExpression": Key("job_status").eq(SUCCEEDED)}
    while True:
        response = job_table.query(**kwargs)
        for item in response.get("Items", []):
            entry = stats.setdefault(str(item.get("dataset", "")), DatasetStats())
            entry.files += 1
            entry.rows += int(item.get("rows_out", 0))
            entry.last_update = max(entry.last_update, str(item.get("finished_at", "")))
            entry.outputs.append(str(item.get("output_uri", "")))
        if "LastEvaluatedKey" not in response:
            return stats
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def describe(table: CatalogTable) -> str:
    """``name type, ...`` with the partition key last."""
    return ", ".join([f"{name} {kind}" for name, kind in table.columns] + [f"{PARTITION_KEY} string (partition)"])
