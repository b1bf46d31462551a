"""``tap demo``: the platform end to end on this machine, with checks on every expected outcome."""

from __future__ import annotations

import gzip
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from analytics_platform.analytics.job_listing import format_rows, query_jobs
from analytics_platform.etl.events import ObjectRef
from analytics_platform.etl.job_values import FAILED, SUCCEEDED, settled
from analytics_platform.exit_codes import ExitCode
from analytics_platform.local.clients import local_client, local_resource
from analytics_platform.local.platform import LocalPlatformError, platform_down, platform_up
from analytics_platform.local.state import LocalOutputs

SAMPLES = Path(__file__).parent / "local" / "samples"
#: The query ``tap demo`` ends with, in every region: the same SQL, each region's own data.
DEMO_QUERY = (
    "SELECT is_paid, count(*) AS orders, round(sum(amount_eur), 2) AS amount_eur, min(ingest_date) AS ingest_date "
    "FROM orders GROUP BY is_paid ORDER BY is_paid"
)
WAIT_SECONDS = 180


@dataclass(frozen=True)
class Sample:
    """One upload and what must come of it."""

    file: str
    key: str
    status: str
    rows_out: int
    rows_rejected: int = 0
    compress: bool = False

    def body(self) -> bytes:
        data = (SAMPLES / self.file).read_bytes()
        return gzip.compress(data, mtime=0) if self.compress else data


DEMO_SAMPLES = (
    Sample("orders.csv", "raw/orders/orders.csv", SUCCEEDED, rows_out=40, rows_rejected=1),
    Sample("clicks.jsonl", "raw/clicks/clicks.jsonl", SUCCEEDED, rows_out=25),
    Sample("sensors.csv", "raw/sensors/sensors.csv.gz", SUCCEEDED, rows_out=30, compress=True),
    Sample("broken.json", "raw/orders/broken.json", FAILED, rows_out=0),
)


def upload_samples(outputs: LocalOutputs) -> dict[str, list[tuple[Sample, str]]]:
    """Put every sample into every region's ``raw/``; returns (sample, job id) per region."""
    uploaded: dict[str, list[tuple[Sample, str]]] = {}
    for region, names in outputs.regions.items():
        s3 = local_client("s3", region, outputs.endpoint)
        uploaded[region] = []
        for sample in DEMO_SAMPLES:
            body = sample.body()
            version = s3.put_object(Bucket=names.bucket_name, Key=sample.key, Body=body)["VersionId"]
            ref = ObjectRef(names.bucket_name, sample.key, version, len(body), datetime.now(UTC), region)
            uploaded[region].append((sample, ref.job_id))
    return uploaded


def wait_for_jobs(outputs: LocalOutputs, uploaded: dict[str, list[tuple[Sample, str]]]) -> dict[str, dict]:
    """Poll the job tables until every job is finished (or the wait runs out)."""
    records: dict[str, dict] = {}
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        for region, items in uploaded.items():
            table = local_resource("dynamodb", region, outputs.endpoint).Table(outputs.regions[region].table_name)
            for _, job_id in items:
                if not settled(records.get(job_id, {})):
                    records[job_id] = table.get_item(Key={"job_id": job_id}, ConsistentRead=True).get("Item", {})
        if all(settled(r) for r in records.values()):
            break
        time.sleep(1)
    return records


def parquet_rows(s3: Any, uri: str) -> int:
    """Download an output and count its rows."""
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    with tempfile.NamedTemporaryFile(suffix=".parquet") as handle:
        s3.download_fileobj(bucket, key, handle)
        handle.flush()
        row = duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{handle.name}')").fetchone()
        return int(row[0]) if row else -1


def check_region(
    region: str, outputs: LocalOutputs, items: list[tuple[Sample, str]], records: dict[str, dict]
) -> list[str]:
    """Print the region's table; return what did not hold."""
    problems: list[str] = []
    s3 = local_client("s3", region, outputs.endpoint)
    print(f"\n== {region} ==")
    print(f"{'file':<28} {'status':<10} {'rows':>5} {'rejects':>7} {'ms':>6}  output / reason")
    for sample, job_id in items:
        record = records.get(job_id, {})
        status = record.get("job_status", "MISSING")
        detail = record.get("output_uri", "") or f"{record.get('error_type')}: {record.get('error_message', '')}"[:70]
        rows = int(record.get("rows_out", 0))
        print(f"{sample.key.removeprefix('raw/'):<28} {status:<10} {rows:>5} {int(record.get('rows_rejected', 0)):>7} "
              f"{int(record.get('duration_ms', 0)):>6}  {detail}")  # fmt: skip
        if status != sample.status:
            problems.append(f"{region} {sample.key}: expected {sample.status}, got {status}")
            continue
        if status == SUCCEEDED:
            if (rows, int(record.get("rows_rejected", 0))) != (sample.rows_out, sample.rows_rejected):
                problems.append(f"{region} {sample.key}: rows {rows}/{record.get('rows_rejected')} unexpected")
            read_back = parquet_rows(s3, record["output_uri"])
            if read_back != sample.rows_out:
                problems.append(f"{region} {sample.key}: Parquet reads back {read_back} rows, not {sample.rows_out}")
            if not record["output_uri"].startswith(f"s3://{outputs.regions[region].bucket_name}/processed/"):
                problems.append(f"{region} {sample.key}: output outside this region's bucket")
    table = local_resource("dynamodb", region, outputs.endpoint).Table(outputs.regions[region].table_name)
    recent = query_jobs(table, since=datetime.now(UTC) - timedelta(hours=1))
    print(f"-- time-range query (GSI by-day, last hour): {len(recent)} job(s)")
    print("\n".join("   " + line for line in format_rows(recent)))
    sqs = local_client("sqs", region, outputs.endpoint)
    depth = sqs.get_queue_attributes(
        QueueUrl=outputs.regions[region].dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]["ApproximateNumberOfMessages"]
    print(f"-- dead-letter queue depth: {depth}")
    if int(depth) != 0:
        problems.append(f"{region}: DLQ holds {depth} message(s)")
    return problems


def query_region(region: str, outputs: LocalOutputs) -> list[str]:
    """Run :data:`DEMO_QUERY` as ``tap query --local`` does and print it; return what did not hold."""
    from analytics_platform.analytics.commands import run_query
    from analytics_platform.targeting.region_target import target_from_outputs

    print(f'\n$ tap query --local --region {region} "{DEMO_QUERY}"')
    result = run_query(target_from_outputs(outputs, region), DEMO_QUERY)
    print(result.table())
    expected = sum(s.rows_out for s in DEMO_SAMPLES if s.key.startswith("raw/orders/") and s.status == SUCCEEDED)
    counted = sum(int(row[1]) for row in result.rows)
    return [] if counted == expected else [f"{region}: the query counts {counted} orders, not {expected}"]


def run_demo(*, config_path: str | None, port: int | None, keep: bool, env: str | None = None) -> int:
    """Up, upload, wait, report, check, down; exit 0 only if every expected outcome held."""
    try:
        outputs = platform_up(config_path=config_path, port=port, env=env)
    except LocalPlatformError as error:
        print(f"error: {error}")
        return ExitCode.FAILED
    problems: list[str] = []
    try:
        print("\nuploading sample datasets into every region's raw/ prefix")
        uploaded = upload_samples(outputs)
        records = wait_for_jobs(outputs, uploaded)
        for region, items in uploaded.items():
            problems += check_region(region, outputs, items, records)
        print("\nthe same SQL in every region, over that region's catalog and Parquet only:")
        for region in outputs.regions:
            problems += query_region(region, outputs)
    finally:
        if keep:
            print(f"\nthe platform stays up (--keep): endpoint {outputs.endpoint}; stop it with 'tap local down'")
        else:
            print()
            platform_down()
    print()
    if problems:
        print("DEMO FAILED:")
        print("\n".join(f"  - {problem}" for problem in problems))
        return ExitCode.FAILED
    print(f"DEMO OK: {len(DEMO_SAMPLES)} uploads x {len(outputs.regions)} regions, every outcome as expected")
    return ExitCode.OK
