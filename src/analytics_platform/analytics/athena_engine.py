"""``tap query`` on AWS: the SQL runs through the region's own Athena workgroup, against its own catalog.

The workgroup enforces its settings (results in the region's bucket, encrypted, a bytes-scanned limit), so
nothing here chooses an output location. Results come back through ``GetQueryResults`` pages and are typed
from the result set's column metadata.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from analytics_platform.analytics.result import QueryResult
from analytics_platform.targeting.region_target import RegionTarget

#: Longest a query may take before ``tap query`` cancels it.
DEFAULT_TIMEOUT_SECONDS = 600.0
#: Athena's query execution states (not job states) in which a query has ended.
ATHENA_SUCCEEDED = "SUCCEEDED"
ATHENA_FAILED = "FAILED"
ATHENA_CANCELLED = "CANCELLED"
FINAL_STATES = frozenset({ATHENA_SUCCEEDED, ATHENA_FAILED, ATHENA_CANCELLED})
_INTEGERS = {"tinyint", "smallint", "integer", "int", "bigint"}
_FLOATS = {"double", "float", "real"}


class AthenaQueryError(RuntimeError):
    """Athena refused, failed or cancelled the query (its reason included)."""


def _typed(value: str | None, kind: str) -> Any:
    if value is None:
        return None
    kind = kind.lower()
    if kind in _INTEGERS:
        return int(value)
    if kind in _FLOATS or kind.startswith("decimal"):
        return float(value)
    if kind == "boolean":
        return value.lower() == "true"
    return value


def run_athena(
    target: RegionTarget,
    sql: str,
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    poll_seconds: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> QueryResult:
    """Start the query in the region's workgroup, wait for it, and read every result page."""
    athena = target.client("athena")
    query_id = athena.start_query_execution(
        QueryString=sql,
        WorkGroup=target.workgroup,
        QueryExecutionContext={"Catalog": "AwsDataCatalog", "Database": target.database},
    )["QueryExecutionId"]
    deadline = clock() + timeout
    try:
        while True:
            execution = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
            status = execution["Status"]
            if status["State"] in FINAL_STATES:
                break
            if clock() >= deadline:
                raise AthenaQueryError(f"query {query_id} still {status['State']} after {timeout:.0f} s; cancelled")
            sleep(poll_seconds)
    except BaseException:
        athena.stop_query_execution(QueryExecutionId=query_id)
        raise
    if status["State"] != ATHENA_SUCCEEDED:
        reason = status.get("StateChangeReason") or status.get("AthenaError", {}).get("ErrorMessage", "no reason given")
        raise AthenaQueryError(f"Athena query {query_id} {status['State']}: {reason}")
    columns: list[str] = []
    kinds: list[str] = []
    rows: list[tuple[Any, ...]] = []
    skip_header = execution.get("StatementType", "DML") == "DML"  # a SELECT's first row holds the column names
    for page in athena.get_paginator("get_query_results").paginate(QueryExecutionId=query_id):
        result_set = page["ResultSet"]
        if not columns:
            info = result_set.get("ResultSetMetadata", {}).get("ColumnInfo", [])
            columns = [c["Name"] for c in info]
            kinds = [c.get("Type", "varchar") for c in info]
        for row in result_set.get("Rows", []):
            values = [cell.get("VarCharValue") for cell in row.get("Data", [])]
            if skip_header:
                skip_header = False
                continue
            rows.append(tuple(_typed(v, k) for v, k in zip(values, kinds, strict=False)))
    statistics = execution.get("Statistics", {})
    return QueryResult(
        columns, rows, engine=f"Athena workgroup {target.workgroup} in {target.region}",
        details={"query_id": query_id, "bytes_scanned": statistics.get("DataScannedInBytes"),
                 "output": execution.get("ResultConfiguration", {}).get("OutputLocation")},
    )  # fmt: skip
