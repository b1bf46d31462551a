"""One region's jobs through the job table's GSIs (by status + time, by day + time), never a scan: ``tap jobs``,
``tap jobs retry --status``, the console and the demo read them here."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from boto3.dynamodb.conditions import Key

from analytics_platform.etl.job_values import DAY_INDEX, STATUS_INDEX, JobStatus, iso
from analytics_platform.local.state import LocalPaths, read_outputs, read_state

DURATION = re.compile(r"^(\d+)([smhd])$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_since(value: str | None, now: datetime | None = None) -> datetime:
    """``2h`` / ``30m`` / ``7d``, an ISO date or time; default: 24 hours ago."""
    now = now or datetime.now(UTC)
    if not value:
        return now - timedelta(hours=24)
    match = DURATION.match(value.strip())
    if match:
        return now - timedelta(**{UNITS[match.group(2)]: int(match.group(1))})
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise ValueError(f"--since: {value!r} is neither a duration (2h, 30m, 7d) nor an ISO date/time") from error
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _query_all(table: Any, **kwargs: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        response = table.query(**kwargs)
        items.extend(response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            return items
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def query_jobs(table: Any, *, since: datetime, status: str | None = None, now: datetime | None = None) -> list[dict]:
    """Jobs created at or after ``since``, newest first; never a table scan."""
    start = iso(since)
    if status:
        items = _query_all(
            table,
            IndexName=STATUS_INDEX,
            KeyConditionExpression=Key("job_status").eq(status) & Key("created_at").gte(start),
        )
    else:
        items = []
        day = since.astimezone(UTC).date()
        last = (now or datetime.now(UTC)).date()
        while day <= last:
            items += _query_all(
                table,
                IndexName=DAY_INDEX,
                KeyConditionExpression=Key("job_day").eq(day.isoformat()) & Key("created_at").gte(start),
            )
            day += timedelta(days=1)
    return sorted(items, key=lambda item: item["created_at"], reverse=True)


def job_table(region: str, config_path: str | None, env: str | None = None) -> Any:
    """The region's table: the local platform's if it is up (and runs ``env``, when one is named), else AWS's;
    resolved as every region-bound command resolves its region
    (:func:`~analytics_platform.targeting.deployment.resolve_target`)."""
    from analytics_platform.targeting.deployment import resolve_target

    paths = LocalPaths.default()  # honours TAP_LOCAL_HOME, as every local command does
    state = read_state(paths) if read_outputs(paths) is not None else None
    local = state is not None and (env is None or env == str(state.config.get("environment", "")))
    return resolve_target(region, local=local, config_path=config_path, env=env).job_table()


def format_rows(items: list[dict[str, Any]]) -> list[str]:
    """A fixed-width table."""
    header = f"{'created_at':<25} {'status':<10} {'dataset':<12} {'rows':>7} {'rejects':>7} {'ms':>7}  input / reason"
    lines = [header, "-" * len(header)]
    for item in items:
        detail = item.get("input_key", "")
        if item.get("job_status") == JobStatus.FAILED:
            detail += f"  ({item.get('error_type')}: {str(item.get('error_message', ''))[:60]})"
        elif item.get("job_status") == JobStatus.DEAD_LETTERED:
            detail += f"  (retries exhausted: {str(item.get('error_message', ''))[:60]})"
        elif item.get("job_status") == JobStatus.SUPERSEDED:
            detail += f"  (superseded by {item.get('superseded_by')})"
        elif item.get("job_status") == JobStatus.DELETED:
            detail += f"  (deleted from raw/: {item.get('superseded_by')})"
        lines.append(
            f"{item['created_at']:<25} {item['job_status']:<10} {item.get('dataset', '')!s:<12} "
            f"{int(item.get('rows_out', 0)):>7} {int(item.get('rows_rejected', 0)):>7} "
            f"{int(item.get('duration_ms', 0)):>7}  {detail}"
        )
    return lines
