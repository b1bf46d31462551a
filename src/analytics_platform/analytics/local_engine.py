"""``tap query --local``: the region's SQL through DuckDB, since the local endpoint does not run Athena.

The region's catalog (its Glue database on the local endpoint) decides the tables and their types: every
dataset becomes an in-memory table named like the Glue table (in a schema named like the Glue database, of a
catalog named ``awsdatacatalog``, so ``t``, ``<database>.t`` and ``awsdatacatalog.<database>.t`` all read it, as
on Athena), loaded from the Parquet files currently under
its location (``ingest_date=YYYY-MM-DD/`` partitions only, as partition projection reads them), with each column
cast to the catalog's type (older files that lack a newer column read it as NULL, as in Athena) and the
``ingest_date`` partition as text. Then DuckDB is locked down before the user's SQL runs: no file system at all
(no allowed directory, no temporary directory), no network, no extension, no setting changes. The query can
read nothing but the region's tables. (An allowed directory would not do: DuckDB 1.2's path check is fooled by
``./..`` segments.) The tables are held in memory: the local platform is for samples and tests.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import duckdb

from analytics_platform.analytics.guard import DATA_CATALOG
from analytics_platform.analytics.result import QueryResult
from analytics_platform.analytics.tables import CatalogTable, catalog_tables, check_locations
from analytics_platform.etl.catalog import PARTITION_KEY
from analytics_platform.targeting.region_target import RegionTarget

#: Catalog (Glue / Athena) types as DuckDB spells them: the types the worker writes each catalog type as.
DUCKDB_TYPES = {"integer": "BIGINT", "decimal": "DECIMAL(38,0)", "double": "DOUBLE", "string": "VARCHAR",
                "boolean": "BOOLEAN", "date": "DATE", "timestamp": "TIMESTAMP"}  # fmt: skip
#: A Parquet file directly inside a projected partition: ``ingest_date=YYYY-MM-DD/<name>.parquet``.
PARTITION_FILE = re.compile(rf"^{PARTITION_KEY}=(\d{{4}}-\d{{2}}-\d{{2}})/[^/]+\.parquet$")


def quote_identifier(name: str) -> str:
    """A DuckDB identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def fetch_files(s3: Any, table: CatalogTable, folder: Path) -> list[Path]:
    """Copy the table's Parquet files into ``folder/<ingest_date=D>/<n>.parquet`` (names DuckDB cannot
    mistake for glob patterns); returns the local paths."""
    paths: list[Path] = []
    prefix = table.prefix.rstrip("/") + "/"
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=table.bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            key = entry["Key"]
            day = PARTITION_FILE.match(key[len(prefix) :])
            if day is None:
                continue  # outside the projected partitions: Athena does not read it either
            partition = folder / f"{PARTITION_KEY}={day.group(1)}"
            partition.mkdir(parents=True, exist_ok=True)
            target = partition / f"{len(paths)}.parquet"
            s3.download_file(table.bucket, key, str(target))
            paths.append(target)
    return paths


def table_sql(table: CatalogTable, files: list[Path], file_columns: set[str]) -> str:
    """One table: catalog columns cast to catalog types, missing columns NULL, partition text. Column names
    match case-insensitively, as in Glue and Athena."""
    by_lower = {name.lower(): name for name in file_columns}
    selects = []
    for name, kind in table.columns:
        duck_type = DUCKDB_TYPES.get(kind, "VARCHAR")
        found = by_lower.get(name.lower())
        source = quote_identifier(found) if found is not None else "NULL"
        selects.append(f"CAST({source} AS {duck_type}) AS {quote_identifier(name)}")
    if not files:
        selects.append(f"CAST(NULL AS VARCHAR) AS {PARTITION_KEY}")
        return f"CREATE TABLE {quote_identifier(table.name)} AS SELECT {', '.join(selects)} WHERE false"
    selects.append(f"CAST({PARTITION_KEY} AS VARCHAR) AS {PARTITION_KEY}")
    listing = ", ".join(_literal(str(path)) for path in files)
    source = f"read_parquet([{listing}], hive_partitioning = true, hive_types_autocast = false, union_by_name = true)"
    return f"CREATE TABLE {quote_identifier(table.name)} AS SELECT {', '.join(selects)} FROM {source}"


def _file_columns(connection: duckdb.DuckDBPyConnection, files: list[Path]) -> set[str]:
    if not files:
        return set()
    listing = ", ".join(_literal(str(path)) for path in files)
    rows = connection.execute(f"DESCRIBE SELECT * FROM read_parquet([{listing}], union_by_name = true)").fetchall()
    return {str(row[0]) for row in rows} - {PARTITION_KEY}


def prepare(target: RegionTarget, folder: Path) -> duckdb.DuckDBPyConnection:
    """A locked-down DuckDB connection holding one table per catalog table of the region."""
    s3, glue = target.client("s3"), target.client("glue")
    connection = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False,
                                                     "autoload_known_extensions": False})  # fmt: skip
    # The tables live in <database> of a catalog named like Athena's, so the names Athena accepts for them
    # (t, <database>.t, awsdatacatalog.<database>.t) read the same here.
    schema = f"{DATA_CATALOG}.{quote_identifier(target.database)}"
    connection.execute(f"ATTACH ':memory:' AS {DATA_CATALOG}")
    connection.execute(f"CREATE SCHEMA {schema}")
    connection.execute(f"USE {schema}")
    tables = catalog_tables(glue, target.database)
    check_locations(tables, region=target.region, bucket=target.bucket)
    for index, table in enumerate(tables):
        files = fetch_files(s3, table, folder / f"t{index}")
        connection.execute(table_sql(table, files, _file_columns(connection, files)))
    connection.execute("SET temp_directory = ''")
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
