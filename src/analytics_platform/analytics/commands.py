"""CLI entries of ``tap query`` and ``tap datasets``."""

from __future__ import annotations

import json
import sys
from typing import Any

from analytics_platform.analytics.guard import QueryRefusedError, check_query
from analytics_platform.analytics.result import QueryResult
from analytics_platform.analytics.role_session import assume_role, chosen_role
from analytics_platform.analytics.tables import (
    CatalogLocationError,
    CatalogTable,
    catalog_tables,
    check_locations,
    dataset_stats,
    describe,
)
from analytics_platform.exit_codes import ExitCode
from analytics_platform.targeting.deployment import resolve_target
from analytics_platform.targeting.region_target import RegionTarget, TargetError


def run_query(target: RegionTarget, sql: str) -> QueryResult:
    """Check the query (one read statement over the region's own database), then run ``sql`` locally (DuckDB) or on
    Athena."""
    check_query(sql, region=target.region, bucket=target.bucket, database=target.database)
    if target.local:
        from analytics_platform.analytics.local_engine import run_local

        return run_local(target, sql)
    from analytics_platform.analytics.athena_engine import run_athena

    check_locations(catalog_tables(target.client("glue"), target.database), region=target.region, bucket=target.bucket)
    return run_athena(target, sql)


def query_command(
    *,
    region: str,
    sql: str,
    local: bool,
    as_json: bool,
    config_path: str | None,
    env: str | None = None,
    role_arn: str | None = None,
    as_query_role: bool = False,
) -> int:
    """``tap query``: print the result table (or JSON rows); exit 2 when the query is refused. With
    ``as_query_role`` (or ``role_arn``) the query runs on a session of the region's query role (or that role)."""
    try:
        target = resolve_target(region, local=local, config_path=config_path, env=env)
        check_query(sql, region=target.region, bucket=target.bucket, database=target.database)  # before any session
        role = chosen_role(target, role_arn=role_arn, as_query_role=as_query_role)
        if role is not None:
            target = assume_role(target, role)
        result = run_query(target, sql)
    except (QueryRefusedError, CatalogLocationError) as error:
        print(f"error: refused: {error}", file=sys.stderr)
        return ExitCode.USAGE
    except TargetError as error:
        print(f"error: {error}", file=sys.stderr)
        return ExitCode.USAGE
    print(result.to_json() if as_json else result.table())
    return ExitCode.OK


def dataset_documents(target: RegionTarget) -> tuple[list[CatalogTable], list[dict[str, Any]]]:
    """The region's catalog tables and, for each, the ``tap datasets --json`` document (``tap.datasets`` schema):
    columns and types from the catalog, current files, rows and last update from the job table."""
    tables = catalog_tables(target.client("glue"), target.database)
    stats = dataset_stats(target.job_table())
    documents = []
    for table in tables:
        entry = stats.get(table.name)
        documents.append({
            "dataset": table.name, "columns": [{"name": n, "type": t} for n, t in table.columns],
            "schema_version": table.schema_version, "location": table.location,
            "files": entry.files if entry else 0, "rows": entry.rows if entry else 0,
            "last_update": entry.last_update if entry else None,
        })  # fmt: skip
    return tables, documents


def datasets_command(
    *, region: str, local: bool, as_json: bool, config_path: str | None, env: str | None = None
) -> int:
    """``tap datasets``: each dataset's columns and types, current files, rows and last update."""
    try:
        target = resolve_target(region, local=local, config_path=config_path, env=env)
    except TargetError as error:
        print(f"error: {error}", file=sys.stderr)
        return ExitCode.USAGE
    tables, documents = dataset_documents(target)
    if as_json:
        print(json.dumps(documents, indent=2))
        return ExitCode.OK
    print(f"datasets of {region} (catalog {target.database})")
    for table, document in zip(tables, documents, strict=True):
        print(f"\n{table.name}: {document['files']} file(s), {document['rows']} row(s), last update "
              f"{document['last_update'] or '-'}, schema v{table.schema_version}, {table.location}")  # fmt: skip
        print(f"  columns: {describe(table)}")
    if not tables:
        print("(no dataset yet: the first successful upload of raw/<dataset>/... creates its table)")
    return ExitCode.OK
