"""(a) wall time of applying 3 regions in parallel vs one after another, in one run, and (b) upload-to-SUCCEEDED
latency p50 / p95 over 100 small objects spread over the three regions, (c) wall time of the last down, with each
region's Terraform time for up and down (``applied:`` / ``destroyed:``, as ``tap local up`` / ``down`` print them).
Targets: parallel <= 0.6 x sequential, p95 < 5 s. Usage: python benchmarks/local_platform.py [OBJECTS]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from analytics_platform.etl.events import ObjectRef
from analytics_platform.local.clients import local_client
from analytics_platform.local.platform import LocalPaths, platform_down, platform_up
from analytics_platform.local.state import LocalOutputs


def per_region_line(line: str) -> None:
    """Keep only the platform's per-region summary lines."""
    if line.startswith(("applied:", "destroyed:")):
        print(f"  {line}")


def timed_up(parallel: bool) -> tuple[float, LocalPaths, LocalOutputs]:
    paths = LocalPaths(Path(tempfile.mkdtemp(prefix="tap-bench-")))
    started = time.monotonic()
    outputs = platform_up(paths=paths, parallel=parallel, progress=per_region_line)
    return time.monotonic() - started, paths, outputs


def _client(service: str, region: str, endpoint: str):  # type: ignore[no-untyped-def]
    return local_client(service, region, endpoint)


def latency(outputs: LocalOutputs, count: int) -> list[float]:
    """Upload ``count`` small CSVs round-robin over the regions; seconds from each PUT to its SUCCEEDED record.

    A watcher thread polls the job tables (BatchGetItem, every 0.1 s) while the uploads are still going, so
    an early object's latency does not include the time spent uploading the later ones.
    """
    endpoint = outputs.endpoint
    regions = list(outputs.regions)
    s3 = {region: _client("s3", region, endpoint) for region in regions}
    dynamodb = {region: _client("dynamodb", region, endpoint) for region in regions}
    pending: dict[str, tuple[str, float]] = {}
    done: dict[str, float] = {}
    lock = threading.Lock()
    uploads_finished = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not (uploads_finished.is_set() and len(done) >= count):
            for region in regions:
                table = outputs.regions[region].table_name
                with lock:
                    waiting = [job for job, (r, _) in pending.items() if r == region and job not in done][:100]
                if not waiting:
                    continue
                keys = [{"job_id": {"S": job}} for job in waiting]
                response = dynamodb[region].batch_get_item(
                    RequestItems={table: {"Keys": keys, "ProjectionExpression": "job_id, job_status"}}
                )
                now = time.monotonic()
                with lock:
                    for item in response["Responses"].get(table, []):
                        if item["job_status"]["S"] == "SUCCEEDED":
                            done[item["job_id"]["S"]] = now - pending[item["job_id"]["S"]][1]
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    for i in range(count):
        region = regions[i % len(regions)]
        bucket, key = outputs.regions[region].bucket_name, f"raw/bench/o{i}.csv"
        body = f"id,value\n{i},{i * 2}\n".encode()
        sent = time.monotonic()
        version = s3[region].put_object(Bucket=bucket, Key=key, Body=body)["VersionId"]
        with lock:
            pending[ObjectRef(bucket, key, version, len(body), datetime.now(UTC), region).job_id] = (region, sent)
        time.sleep(0.05)
    uploads_finished.set()
    watcher.join()
    return sorted(done.values())


def main(count: int = 100) -> None:
    sequential, paths, _ = timed_up(parallel=False)
    platform_down(paths=paths, progress=lambda _line: None)
    parallel, paths, outputs = timed_up(parallel=True)
    ratio = parallel / sequential
    print(f"up, 3 regions one after another: {sequential:.1f} s; in parallel: {parallel:.1f} s; ratio {ratio:.2f}")
    values = latency(outputs, count)
    started = time.monotonic()
    platform_down(paths=paths, progress=per_region_line)
    print(f"down, 3 regions in parallel: {time.monotonic() - started:.1f} s")
    p95 = values[int(len(values) * 0.95) - 1] if values else float("nan")
    p50 = statistics.median(values) if values else float("nan")
    print(f"upload -> SUCCEEDED over {len(values)}/{count} objects: p50 {p50:.2f} s, p95 {p95:.2f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
