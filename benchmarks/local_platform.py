"""(a) wall time of applying 3 regions in parallel vs one after another, in one run, and (b) upload-to-SUCCEEDED
latency p50 / p95 over 100 small objects spread over the three regions. Targets: parallel <= 0.6 x sequential,
p95 < 5 s. Usage: python benchmarks/local_platform.py [OBJECTS]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import boto3

from analytics_platform.etl.events import ObjectRef
from analytics_platform.local.platform import LocalPaths, platform_down, platform_up


def timed_up(parallel: bool) -> tuple[float, LocalPaths, dict]:
    paths = LocalPaths(Path(tempfile.mkdtemp(prefix="tap-bench-")))
    started = time.monotonic()
    outputs = platform_up(paths=paths, parallel=parallel, progress=lambda _line: None)
    return time.monotonic() - started, paths, outputs


def latency(outputs: dict, count: int) -> list[float]:
    endpoint = outputs["endpoint"]
    regions = list(outputs["regions"])
    pending = []
    for i in range(count):
        region = regions[i % len(regions)]
        names = outputs["regions"][region]
        s3 = boto3.client("s3", region_name=region, endpoint_url=endpoint, aws_access_key_id="t", aws_secret_access_key="t")
        body = f"id,value\n{i},{i * 2}\n".encode()
        sent = time.monotonic()
        version = s3.put_object(Bucket=names["bucket_name"], Key=f"raw/bench/o{i}.csv", Body=body)["VersionId"]
        ref = ObjectRef(names["bucket_name"], f"raw/bench/o{i}.csv", version, len(body), datetime.now(UTC), region)
        pending.append((region, ref.job_id, sent))
        time.sleep(0.05)
    done: dict[str, float] = {}
    deadline = time.monotonic() + 300
    while len(done) < count and time.monotonic() < deadline:
        for region, job_id, sent in pending:
            if job_id in done:
                continue
            table = boto3.resource("dynamodb", region_name=region, endpoint_url=endpoint, aws_access_key_id="t",
                                   aws_secret_access_key="t").Table(outputs["regions"][region]["table_name"])  # fmt: skip
            if table.get_item(Key={"job_id": job_id}).get("Item", {}).get("job_status") == "SUCCEEDED":
                done[job_id] = time.monotonic() - sent
        time.sleep(0.1)
    return sorted(done.values())


def main(count: int = 100) -> None:
    sequential, paths, _ = timed_up(parallel=False)
    platform_down(paths=paths, progress=lambda _line: None)
    parallel, paths, outputs = timed_up(parallel=True)
    print(f"up, 3 regions sequential: {sequential:.1f} s; parallel: {parallel:.1f} s; ratio {parallel / sequential:.2f}")
    values = latency(outputs, count)
    platform_down(paths=paths, progress=lambda _line: None)
    p95 = values[int(len(values) * 0.95) - 1] if values else float("nan")
    print(f"upload -> SUCCEEDED over {len(values)}/{count} objects: p50 {statistics.median(values):.2f} s, p95 {p95:.2f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
