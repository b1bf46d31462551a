"""Soak: many uploads across the regions, with faults and killed runtimes; every upload must end exactly once,
and what ``tap query`` returns must be exactly what raw/ holds.

Uploads good and bad files, the odd-key set, a CSV whose column type drifts after 30,000 rows, re-uploads of
some keys (corrected files), deletes (delete markers, and a current version deleted for good, which brings the one
below back) and one version deleted right after upload, to every region of a local platform started with
``--fault-rate``; kills the execution environment of running invocations mid-job; then waits for every upload to
end and prints: objects, terminal records by status, records not terminal, objects with 0 or 2+ records, Parquet
files whose row count differs from the source, DLQ messages whose record is not DEAD_LETTERED, p50 / p95
upload-to-terminal latency, and per region the query's ``count(*)`` and ``sum(id)`` next to the ground truth
computed from the uploads themselves (each key's current version in S3's own listing) and the SUCCEEDED jobs' row
counts. Exit code 1 if any of the "must be 0" figures is not 0 or a region's figures disagree.

Usage: python benchmarks/soak.py [--objects 1000] [--fault-rate 0.05] [--kills 2]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from analytics_platform.demo import parquet_rows
from analytics_platform.etl.events import ObjectRef, parse_object_event
from analytics_platform.etl.exceptions import MalformedMessageError
from analytics_platform.etl.job_values import settled
from analytics_platform.local.clients import local_client, local_resource
from analytics_platform.local.platform import LocalPaths, platform_down, platform_up
from analytics_platform.local.state import LocalOutputs

TERMINAL = {"SUCCEEDED", "FAILED", "DEAD_LETTERED", "SUPERSEDED", "DELETED"}
#: Short timings so retries, the DLQ and the sweep all happen within minutes.
SOAK_OVERRIDES = {
    "environment_suffix": "soak", "lambda_timeout_seconds": 10, "queue_visibility_timeout_seconds": 60,
    "dead_letter_sweep_minutes": 1, "lambda_reserved_concurrency": 2, "max_receive_count": 3,
}  # fmt: skip
ODD_NAMES = ["a b.csv", "a+b.csv", "50%41off.csv", "k=v.csv", "12:30.csv", "no#tag.csv", "what?.csv",
             "Q1 report é.csv", "chart 📈.csv"]  # fmt: skip


@dataclass
class Upload:
    """One object put into a region, and what its Parquet must hold if it succeeds."""

    region: str
    ref: ObjectRef
    sent: float
    expected_rows: int | None
    #: sum of the ``id`` column its Parquet holds (0 for files without one)
    expected_ids: int = 0


@dataclass(frozen=True)
class RegionTruth:
    """One region's query results next to the ground truth."""

    region: str
    query_rows: int
    query_ids: int
    truth_rows: int
    truth_ids: int
    succeeded_rows: int

    @property
    def agrees(self) -> bool:
        """The query equals the truth and the SUCCEEDED jobs' rows."""
        return self.query_rows == self.truth_rows == self.succeeded_rows and self.query_ids == self.truth_ids


@dataclass
class SoakReport:
    """The figures the soak prints."""

    objects: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    not_terminal: int = 0
    zero_or_many_records: int = 0
    wrong_row_counts: int = 0
    dlq_not_dead_lettered: int = 0
    latencies: list[float] = field(default_factory=list)
    kills: int = 0
    faults: int = 0
    truths: list[RegionTruth] = field(default_factory=list)

    def violations(self) -> int:
        """Sum of the figures that must be 0 (a region whose query disagrees with the truth counts one)."""
        disagreeing = sum(not truth.agrees for truth in self.truths)
        return (
            self.not_terminal
            + self.zero_or_many_records
            + self.wrong_row_counts
            + self.dlq_not_dead_lettered
            + (disagreeing)
        )

    def lines(self) -> list[str]:
        """The report as printed."""
        p50 = statistics.median(self.latencies) if self.latencies else float("nan")
        p95 = sorted(self.latencies)[max(0, int(len(self.latencies) * 0.95) - 1)] if self.latencies else float("nan")
        return [
            f"objects:                                   {self.objects}",
            f"terminal records by status:                {dict(sorted(self.by_status.items()))}",
            f"records not terminal (must be 0):          {self.not_terminal}",
            f"objects with 0 or 2+ records (must be 0):  {self.zero_or_many_records}",
            f"Parquet row count != source (must be 0):   {self.wrong_row_counts}",
            f"DLQ messages not DEAD_LETTERED (must be 0): {self.dlq_not_dead_lettered}",
            f"upload -> terminal latency:                p50 {p50:.2f} s, p95 {p95:.2f} s",
            f"runtimes killed mid-job: {self.kills}; faults injected: {self.faults}",
            *(
                f"{t.region}: query count(*) {t.query_rows}, sum(id) {t.query_ids} | ground truth {t.truth_rows}, "
                f"{t.truth_ids} | SUCCEEDED jobs' rows {t.succeeded_rows} -> {'agree' if t.agrees else 'DISAGREE'}"
                for t in self.truths
            ),
        ]


def csv_rows(rows: int, seed: int) -> bytes:
    generator = random.Random(seed)
    lines = ["id,name,amount"] + [f"{i},n{generator.randint(0, 99)},{generator.random():.3f}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def late_drift() -> bytes:
    """30,000 integer codes, then an alphanumeric one: every row is valid."""
    return ("code,value\n" + "".join(f"{i},{i % 7}\n" for i in range(30_000)) + "A1B2,7\n").encode()


def ids(rows: int) -> int:
    """Sum of the ids 0 .. rows - 1 that :func:`csv_rows` writes."""
    return rows * (rows - 1) // 2


def catalogue(index: int) -> tuple[str, bytes, int | None]:
    """The ``index``-th upload of the mix: (name, body, rows its Parquet must hold or None if it must fail)."""
    kind = index % 10
    if kind in (0, 1, 2, 3):
        rows = 1 + index % 50
        return f"good/f{index}.csv", csv_rows(rows, index), rows
    if kind == 4:
        return f"json/f{index}.jsonl", b"".join(b'{"id": %d, "ok": true}\n' % i for i in range(5)), 5
    if kind == 5:
        return f"gz/f{index}.csv.gz", gzip.compress(csv_rows(7, index), mtime=0), 7
    if kind == 6:
        return f"bad/f{index}.json", b'{"a": 1, broken', None
    if kind == 7:
        return f"bad/f{index}.csv", b"\x00\x01\x02binary", None
    if kind == 8:
        name = ODD_NAMES[(index // 10) % len(ODD_NAMES)]
        return f"odd/{index}-{name}", csv_rows(3, index), 3
    return f"medium/f{index}.csv", csv_rows(100_000, index), 100_000  # long enough to be killed mid-job


def _client(service: str, region: str, endpoint: str) -> Any:
    return local_client(service, region, endpoint)


def _region_names(outputs: LocalOutputs, region: str) -> dict[str, str]:
    return asdict(outputs.regions[region])


def _endpoint(outputs: LocalOutputs) -> str:
    return outputs.endpoint


def upload_all(outputs: LocalOutputs, regions: list[str], count: int) -> list[Upload]:
    """Put the mix round-robin over the regions, plus the drift file and a deleted version in the first."""
    endpoint = _endpoint(outputs)
    s3 = {region: _client("s3", region, endpoint) for region in regions}
    uploads: list[Upload] = []

    def put(region: str, key: str, body: bytes, rows: int | None) -> ObjectRef:
        bucket = _region_names(outputs, region)["bucket_name"]
        sent = time.monotonic()
        version = s3[region].put_object(Bucket=bucket, Key=key, Body=body)["VersionId"]
        ref = ObjectRef(bucket, key, version, len(body), datetime.now(UTC), region)
        has_ids = rows is not None and "/drift/" not in key
        uploads.append(Upload(region, ref, sent, rows, ids(rows) if has_ids and rows else 0))
        return ref

    put(regions[0], "raw/drift/late-type-change.csv", late_drift(), 30_001)
    deleted = put(regions[0], "raw/deleted/gone.csv", csv_rows(3, 0), None)
    s3[regions[0]].delete_object(Bucket=deleted.bucket, Key=deleted.key, VersionId=deleted.version_id)
    uploads[-1].expected_rows = -1  # either outcome is truthful: processed before, or FAILED after deletion
    for index in range(count - 2):
        name, body, rows = catalogue(index)
        region = regions[index % len(regions)]
        ref = put(region, f"raw/{name}", body, rows)
        if index % 10 == 1 and index % 20 == 1:  # a corrected re-upload of the same key
            put(region, ref.key, csv_rows(2 + index % 5, index + 1), 2 + index % 5)
        elif index % 10 == 2 and index % 30 == 2:  # deleted: a delete marker takes the key's rows out
            s3[region].delete_object(Bucket=ref.bucket, Key=ref.key)
        elif index % 10 == 3 and index % 30 == 3:  # re-uploaded, then that upload deleted for good
            newer = put(region, ref.key, csv_rows(4, index + 2), 4)
            s3[region].delete_object(Bucket=ref.bucket, Key=ref.key, VersionId=newer.version_id)
            uploads[-1].expected_rows = -1  # gone before or after it was processed: the older one is current again
    return uploads


def kill_running(paths: LocalPaths, count: int, give_up_after: float = 120) -> int:
    """SIGKILL the execution environments of ``count`` invocations while they hold messages (mid-job)."""
    killed: set[str] = set()
    deadline = time.monotonic() + give_up_after
    while len(killed) < count and time.monotonic() < deadline:
        lines = paths.journal.read_text().splitlines() if paths.journal.exists() else []
        entries = [json.loads(line) for line in lines]
        finished = {e["message_id"] for e in entries if e.get("event") == "attempt"}
        busy = [e for e in entries if e.get("event") == "invoke" and not set(e["message_ids"]) & finished]
        for entry in busy:
            pid_file = Path(entry["pid_file"])
            if entry["pid_file"] in killed or not pid_file.exists():
                continue
            try:
                os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)
            except (ValueError, OSError):
                continue
            killed.add(entry["pid_file"])
            break
        time.sleep(0.2)
    return len(killed)


def _scan(table: Any) -> list[dict[str, Any]]:
    items, start = [], None
    while True:
        page = table.scan(**({"ExclusiveStartKey": start} if start else {}))
        # job records only: the table also holds dataset schemas (dataset#...) and latest versions (latest#...)
        items += [item for item in page.get("Items", []) if "job_status" in item]
        start = page.get("LastEvaluatedKey")
        if not start:
            return items


def _queues_drained(outputs: LocalOutputs, regions: list[str]) -> bool:
    endpoint = _endpoint(outputs)
    for region in regions:
        sqs = _client("sqs", region, endpoint)
        attributes = sqs.get_queue_attributes(QueueUrl=_region_names(outputs, region)["queue_url"],
                                              AttributeNames=["All"])["Attributes"]  # fmt: skip
        if int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"]):
            return False
    return True


def _dlq_bodies(sqs: Any, dlq_url: str) -> list[str]:
    bodies: dict[str, str] = {}
    for _ in range(200):
        messages = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=30).get(
            "Messages", []
        )
        if not messages:
            break
        bodies.update({m["MessageId"]: m["Body"] for m in messages})
    return list(bodies.values())


def settle(outputs: LocalOutputs, regions: list[str], uploads: list[Upload], timeout: float) -> SoakReport:
    """Wait until every upload is terminal and the queues are empty (or ``timeout``), then measure."""
    endpoint = _endpoint(outputs)
    tables = {r: local_resource("dynamodb", r, endpoint).Table(outputs.regions[r].table_name) for r in regions}
    deadline = time.monotonic() + timeout
    records: dict[str, dict[str, Any]] = {}
    first_seen: dict[str, float] = {}
    while True:
        records = {item["job_id"]: item for r in regions for item in _scan(tables[r])}
        now = time.monotonic()
        for job_id, item in records.items():
            if item.get("job_status") in TERMINAL:
                first_seen.setdefault(job_id, now)
        done = all(settled(records.get(u.ref.job_id, {})) for u in uploads)
        if (done and _queues_drained(outputs, regions)) or now > deadline:
            break
        time.sleep(1)
    report = SoakReport(objects=len(uploads))
    per_object = Counter((item["input_bucket"], item["input_key"], item["input_version"]) for item in records.values())
    for upload in uploads:
        item = records.get(upload.ref.job_id)
        copies = per_object[(upload.ref.bucket, upload.ref.key, upload.ref.version_id)]
        report.zero_or_many_records += copies != 1
        if item is None:
            continue
        status = str(item["job_status"])
        if status not in TERMINAL:
            report.not_terminal += 1
            continue
        report.by_status[status] += 1
        report.latencies.append(first_seen[upload.ref.job_id] - upload.sent)
        if status == "SUCCEEDED" and upload.expected_rows is not None and upload.expected_rows >= 0:
            s3 = _client("s3", upload.region, endpoint)
            report.wrong_row_counts += parquet_rows(s3, str(item["output_uri"])) != upload.expected_rows
        if status == "SUCCEEDED" and upload.expected_rows is None:
            report.wrong_row_counts += 1  # a file that must fail produced Parquet
    for region in regions:
        sqs = _client("sqs", region, endpoint)
        for body in _dlq_bodies(sqs, _region_names(outputs, region)["dlq_url"]):
            try:
                ref = parse_object_event(body)
            except MalformedMessageError:
                ref = None
            if ref is not None and ref.is_deletion:
                continue  # no job: a redrive applies the deletion again
            job_id = ref.job_id if ref is not None else ""
            if records.get(job_id, {}).get("job_status") != "DEAD_LETTERED":
                report.dlq_not_dead_lettered += 1
    report.truths = [region_truth(outputs, region, uploads, records) for region in regions]
    return report


def _current_versions(s3: Any, bucket: str) -> dict[str, tuple[str, bool]]:
    """Each key under raw/ and its current entry as S3 lists it: (version id, whether it is a delete marker)."""
    current: dict[str, tuple[str, bool]] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix="raw/"):
        current |= {v["Key"]: (v["VersionId"], False) for v in page.get("Versions", []) if v.get("IsLatest")}
        current |= {m["Key"]: (m["VersionId"], True) for m in page.get("DeleteMarkers", []) if m.get("IsLatest")}
    return current


def region_truth(outputs: LocalOutputs, region: str, uploads: list[Upload], records: dict[str, Any]) -> RegionTruth:
    """The query's figures, the truth from the uploads and S3's listing, and the SUCCEEDED jobs' rows."""
    from analytics_platform.analytics.local_engine import run_local
    from analytics_platform.analytics.tables import catalog_tables
    from analytics_platform.targeting.region_target import target_from_outputs

    target = target_from_outputs(outputs, region)
    s3 = _client("s3", region, _endpoint(outputs))
    by_version = {(u.ref.key, u.ref.version_id): u for u in uploads if u.region == region}
    truth_rows = truth_ids = 0
    for key, (version, is_marker) in _current_versions(s3, target.bucket).items():
        upload = by_version.get((key, version))
        job = records.get(upload.ref.job_id, {}) if upload else {}
        if is_marker or upload is None or job.get("job_status") != "SUCCEEDED":
            continue  # deleted, failed (its job says why), or dead-lettered by the injected faults
        truth_rows += max(0, upload.expected_rows or 0)
        truth_ids += upload.expected_ids
    query_rows = query_ids = 0
    for table in catalog_tables(target.client("glue"), target.database):
        names = {name for name, _ in table.columns}
        select = "count(*), " + ("coalesce(sum(id), 0)" if "id" in names else "0")
        (row,) = run_local(target, f'SELECT {select} FROM "{table.name}"').rows
        query_rows, query_ids = query_rows + int(row[0]), query_ids + int(row[1])
    bucket = target.bucket
    succeeded = sum(int(r.get("rows_out", 0)) for r in records.values()
                    if r.get("job_status") == "SUCCEEDED" and r.get("input_bucket") == bucket)  # fmt: skip
    return RegionTruth(region, query_rows, query_ids, truth_rows, truth_ids, succeeded)


def run_soak(
    *, objects: int, fault_rate: float, kills: int, root: Path, progress: Callable[[str], None] = print
) -> SoakReport:
    """Up, upload, kill, settle, measure, down."""
    paths = LocalPaths(root)
    outputs = platform_up(paths=paths, overrides=SOAK_OVERRIDES, fault_rate=fault_rate, progress=progress)
    try:
        regions = list(outputs.regions)
        progress(f"uploading {objects} objects over {len(regions)} region(s), fault rate {fault_rate}")
        killer_result: list[int] = []
        killer = threading.Thread(target=lambda: killer_result.append(kill_running(paths, kills)), daemon=True)
        killer.start()
        uploads = upload_all(outputs, regions, objects)
        killer.join()
        killed = killer_result[0] if killer_result else 0
        progress(f"killed {killed} execution environment(s) mid-job; waiting for every upload to end")
        bound = SOAK_OVERRIDES["queue_visibility_timeout_seconds"] * 3 + 60 * 2 + objects * 0.5
        report = settle(outputs, regions, uploads, timeout=bound + 120)
        report.kills = killed
        faults = paths.runtime / "faults.jsonl"
        report.faults = len(faults.read_text().splitlines()) if faults.exists() else 0
    finally:
        platform_down(paths=paths, progress=progress)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--fault-rate", type=float, default=0.05)
    parser.add_argument("--kills", type=int, default=2)
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tap-soak-") as root:
        report = run_soak(objects=args.objects, fault_rate=args.fault_rate, kills=args.kills, root=Path(root),
                          progress=lambda line: print(f"  {line}", flush=True))  # fmt: skip
    print("\n".join(report.lines()))
    print(f"soak took {time.monotonic() - started:.0f} s")
    return 1 if report.violations() else 0


if __name__ == "__main__":
    sys.exit(main())
