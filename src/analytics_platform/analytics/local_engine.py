"""``tap query --local``: the region's SQL through DuckDB, since the local endpoint does not run Athena.

The region's catalog (its Glue database on the local endpoint) decides the tables and their types: every
dataset becomes a view named like the table, over the Parquet files currently under its location, with each
column cast to the catalog's type (older files that lack a newer column read it as NULL, as in Athena) and the
``ingest_date`` partition as text. The files are copied from the region's bucket into a private folder first;
then DuckDB is locked down to that folder (no other file, no network, no extension, no setting changes), so
the query can read nothing but the region's own data.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import duckdb

from analytics_platform.analytics.result import QueryResult
from analytics_platform.analytics.tables import CatalogTable, catalog_tables
from analytics_platform.analytics.target import RegionTarget
from analytics_platform.etl.catalog import PARTITION_KEY

#: Catalog (Glue / Athena) types as DuckDB spells them.
DUCKDB_TYPES = {"integer": "BIGINT", "double": "DOUBLE", "string": "VARCHAR", "boolean": "BOOLEAN", "date": "DATE",
                "timestamp": "TIMESTAMP"}  # fmt: skip
PARTITION_VALUE = re.compile(rf"(?:^|/){PARTITION_KEY}=(\d{{4}}-\d{{2}}-\d{{2}})/")


class CatalogLocationError(ValueError):
    """A catalog table points outside the region's own bucket."""


def quote_identifier(name: str) -> str:
    """A DuckDB identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def fetch_files(s3: Any, table: CatalogTable, folder: Path) -> list[Path]:
    """Copy the table's Parquet files into ``folder/<ingest_date=D>/<n>.parquet`` (names DuckDB cannot
    mistake for glob patterns); returns the local paths."""
    paths: list[Path] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=table.bucket, Prefix=table.prefix):
        for entry in page.get("Contents", []):
            key = entry["Key"]
            if not key.endswith(".parquet"):
                continue
            day = PARTITION_VALUE.search(key[len(table.prefix) - 1 :])
            partition = folder / f"{PARTITION_KEY}={day.group(1) if day else '__HIVE_DEFAULT_PARTITION__'}"
            partition.mkdir(parents=True, exist_ok=True)
            target = partition / f"{len(paths)}.parquet"
            s3.download_file(table.bucket, key, str(target))
            paths.append(target)
    return paths


def view_sql(table: CatalogTable, files: list[Path], file_columns: set[str]) -> str:
    """The view of one table: catalog columns cast to catalog types, missing columns NULL, partition text."""
    selects = []
    for name, kind in table.columns:
        duck_type = DUCKDB_TYPES.get(kind, "VARCHAR")
        source = quote_identifier(name) if name in file_columns else "NULL"
        selects.append(f"CAST({source} AS {duck_type}) AS {quote_identifier(name)}")
    if not files:
        selects.append(f"CAST(NULL AS VARCHAR) AS {PARTITION_KEY}")
        return f"CREATE VIEW {quote_identifier(table.name)} AS SELECT {', '.join(selects)} WHERE false"
    selects.append(f"CAST({PARTITION_KEY} AS VARCHAR) AS {PARTITION_KEY}")
    listing = ", ".join(_literal(str(path)) for path in files)
    source = f"read_parquet([{listing}], hive_partitioning = true, union_by_name = true)"
    return f"CREATE VIEW {quote_identifier(table.name)} AS SELECT {', '.join(selects)} FROM {source}"


def _file_columns(connection: duckdb.DuckDBPyConnection, files: list[Path]) -> set[str]:
    if not files:
        return set()
    listing = ", ".join(_literal(str(path)) for path in files)
    rows = connection.execute(f"DESCRIBE SELECT * FROM read_parquet([{listing}], union_by_name = true)").fetchall()
    return {str(row[0]) for row in rows}


def prepare(target: RegionTarget, folder: Path) -> duckdb.DuckDBPyConnection:
    """A locked-down DuckDB connection holding one view per catalog table of the region."""
    s3, glue = target.client("s3"), target.client("glue")
    connection = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False,
                                                     "autoload_known_extensions": False})  # fmt: skip
    for index, table in enumerate(catalog_tables(glue, target.database)):
        if table.bucket != target.bucket or not table.prefix:
            raise CatalogLocationError(
                f"catalog table {table.name!r} points at {table.location!r}, outside {target.region}'s bucket "
                f"{target.bucket}; refusing to read it"
            )
        files = fetch_files(s3, table, folder / f"t{index}")
        connection.execute(view_sql(table, files, _file_columns(connection, files)))
    connection.execute(f"SET allowed_directories = [{_literal(str(folder) + '/')}]")
    connection.execute("SET enable_external_access = false")
    connection.execute("SET lock_configuration = true")
    return connection


def run_local(target: RegionTarget, sql: str) -> QueryResult:
    """Run ``sql`` over the region's catalog and Parquet on the local endpoint."""
    with tempfile.TemporaryDirectory(prefix=f"tap-query-{target.region}-") as folder:
        connection = prepare(target, Path(folder))
        try:
            cursor = connection.execute(sql)
            columns = [str(d[0]) for d in cursor.description or []]
            rows = cursor.fetchall() if cursor.description else []
        finally:
            connection.close()
    return QueryResult(columns, rows, engine=f"DuckDB over {target.region}'s Parquet on the local endpoint")
