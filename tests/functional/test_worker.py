"""The worker end to end in one process: real handler, real DuckDB, moto S3 and DynamoDB."""

from __future__ import annotations

import gzip
import io
import json
import threading
from types import SimpleNamespace
from typing import Any

import duckdb
import pytest
from botocore.exceptions import ClientError

from analytics_platform.etl import handler as handler_module
from analytics_platform.etl.exceptions import JobInProgressError
from analytics_platform.etl.jobs import DAY_INDEX, STATUS_INDEX
from analytics_platform.etl.worker import Budget

from .conftest import BUCKET, Platform

GOOD_CSV = (
    b"Order ID,Customer Name,Amount,Is Paid,Ordered At\n1,Ann,10.5,true,2026-11-01 10:00:00\n"
    b'2,"Bo, Jr",7.25,false,2026-11-02 11:30:00\n3,Cy,3,true,2026-11-03 09:15:00\n'
)
GOOD_JSONL = b'{"userId": 1, "score": 0.5, "active": true}\n{"userId": 2, "score": 1.5, "active": false}\n'
GOOD_ARRAY = b'[{"userId": 1, "city": "Oslo"}, {"userId": 2, "city": "Lima"}, {"userId": 3, "city": "Pune"}]'
RECORD_FIELDS = {
    "job_id", "job_status", "dataset", "input_uri", "output_uri", "rows_in", "rows_out", "rows_rejected",
    "bytes_in", "bytes_out", "started_at", "finished_at", "duration_ms", "attempts", "region", "job_day",
    "created_at", "input_version", "output_schema",
}  # fmt: skip


def budget(seconds: float = 240) -> Budget:
    """A fresh invocation's time budget."""
    return Budget.from_remaining(int(seconds * 1000))


def read_parquet(platform: Platform, key: str) -> tuple[list[tuple[str, str]], list[tuple[Any, ...]]]:
    body = platform.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    path = platform.tmp / "check.parquet"
    path.write_bytes(body)
    con = duckdb.connect()
    schema = [(r[0], r[1]) for r in con.execute(f"DESCRIBE SELECT * FROM '{path}'").fetchall()]
    rows = con.execute(f"SELECT * FROM '{path}' ORDER BY 1").fetchall()
    return schema, rows


def test_good_csv_becomes_typed_snake_case_parquet_and_a_complete_job_record(platform: Platform) -> None:
    # GIVEN a CSV upload with a header, a quoted field and mixed types
    # WHEN the handler processes its event
    response, job = platform.upload_and_process("raw/sales/orders.csv", GOOD_CSV)
    # THEN the message is acknowledged and the job SUCCEEDED with every field recorded
    assert response == {"batchItemFailures": []}
    assert job["job_status"] == "SUCCEEDED"
    assert set(job) >= RECORD_FIELDS
    assert (job["rows_in"], job["rows_out"], job["rows_rejected"], job["attempts"]) == (3, 3, 0, 1)
    assert job["dataset"] == "sales" and job["region"] == "us-east-1"
    # AND the output sits under processed/<dataset>/ingest_date=.../<name>-<version>.parquet
    version = job["input_version"]
    expected_key = f"processed/sales/ingest_date={job['event_time'][:10]}/orders-{version}.parquet"
    assert job["output_uri"] == f"s3://{BUCKET}/{expected_key}"
    schema, rows = read_parquet(platform, expected_key)
    assert schema == [
        ("order_id", "BIGINT"), ("customer_name", "VARCHAR"), ("amount", "DOUBLE"),
        ("is_paid", "BOOLEAN"), ("ordered_at", "TIMESTAMP"),
    ]  # fmt: skip
    assert rows[1][1] == "Bo, Jr" and len(rows) == 3
    # AND the job can be found through both GSIs
    by_day = platform.table.query(
        IndexName=DAY_INDEX,
        KeyConditionExpression="job_day = :d AND created_at >= :t",
        ExpressionAttributeValues={":d": job["job_day"], ":t": job["job_day"]},
    )["Items"]
    by_status = platform.table.query(
        IndexName=STATUS_INDEX,
        KeyConditionExpression="job_status = :s",
        ExpressionAttributeValues={":s": "SUCCEEDED"},
    )["Items"]
    assert [i["job_id"] for i in by_day] == [job["job_id"]] == [i["job_id"] for i in by_status]


@pytest.mark.parametrize(
    ("key", "data", "rows"),
    [
        ("raw/users/u.jsonl", GOOD_JSONL, 2),
        ("raw/users/u.json", GOOD_ARRAY, 3),
        ("raw/users/u2.json", GOOD_JSONL, 2),
        ("raw/sales/o.csv.gz", gzip.compress(GOOD_CSV), 3),
        ("raw/users/u.jsonl.gz", gzip.compress(GOOD_JSONL), 2),
        ("raw/users/a.json.gz", gzip.compress(GOOD_ARRAY), 3),
        ("raw/sales/semi.csv", GOOD_CSV.replace(b",", b";").replace(b"Bo; Jr", b"Bo, Jr"), 3),
        ("raw/sales/tabs.tsv", b"a\tb\n1\tx\n2\ty\n", 2),
        ("raw/no-dataset.csv", b"a,b\n1,2\n", 1),
    ],
)
def test_every_supported_format_succeeds(platform: Platform, key: str, data: bytes, rows: int) -> None:
    # GIVEN a supported file WHEN processed THEN it succeeds with all rows out
    response, job = platform.upload_and_process(key, data)
    assert response == {"batchItemFailures": []}
    assert job["job_status"] == "SUCCEEDED", job.get("error_message")
    assert job["rows_out"] == rows
    _, out_rows = read_parquet(platform, job["output_uri"].split(f"{BUCKET}/", 1)[1])
    assert len(out_rows) == rows


def test_unparseable_rows_go_to_quarantine_below_the_reject_share(platform: Platform) -> None:
    # GIVEN a CSV with one ragged row out of 20
    lines = [b"id,name"] + [f"{i},n{i}".encode() for i in range(19)] + [b"99,too,many,fields"]
    # WHEN processed
    response, job = platform.upload_and_process("raw/people/p.csv", b"\n".join(lines) + b"\n")
    # THEN the job succeeds, counts the reject and writes it to quarantine/
    assert response == {"batchItemFailures": []}
    assert job["job_status"] == "SUCCEEDED"
    assert (job["rows_in"], job["rows_out"], job["rows_rejected"]) == (20, 19, 1)
    quarantine_key = job["quarantine_uri"].split(f"{BUCKET}/", 1)[1]
    assert quarantine_key.startswith("quarantine/people/ingest_date=")
    rejects = platform.s3.get_object(Bucket=BUCKET, Key=quarantine_key)["Body"].read().decode().splitlines()
    assert len(rejects) == 1 and json.loads(rejects[0])["raw"] == "99,too,many,fields"


BIG_LINE = b"a,b\n1," + b"x" * (9 * 1024 * 1024) + b"\n"
#: 50,000 rows, gzip, of which only the first half of the compressed bytes arrived: DuckDB alone read ~25,000.
WHOLE_GZIP = gzip.compress(b"id,v\n" + b"".join(b"%d,%d\n" % (i, i * 7) for i in range(50_000)))
HALF_GZIP = WHOLE_GZIP[: len(WHOLE_GZIP) // 2]
BAD_INPUTS = {
    "zero_bytes": ("raw/d/empty.csv", b"", "EmptyInputError"),
    "whitespace_only": ("raw/d/blank.csv", b"  \n\n ", "EmptyInputError"),
    "header_only": ("raw/d/header.csv", b"a,b,c\n", "NoRowsError"),
    "binary_garbage": ("raw/d/garbage.csv", bytes(range(256)) * 64, "EncodingError"),
    "wrong_encoding_latin1": ("raw/d/latin1.csv", "name\nJos\u00e9 M\u00fcller\n".encode("latin-1"), "EncodingError"),
    "utf16": ("raw/d/utf16.csv", "a,b\n1,2\n".encode("utf-16"), "EncodingError"),
    "gzip_that_is_not_gzip": ("raw/d/fake.csv.gz", b"a,b\n1,2\n", "CompressionError"),
    "truncated_gzip": ("raw/d/cut.csv.gz", gzip.compress(GOOD_CSV * 50)[:40], "CompressionError"),
    "gzip_cut_in_half": ("raw/d/half.csv.gz", HALF_GZIP, "CompressionError"),
    "unsupported_extension": ("raw/d/sheet.xlsx", b"PK\x03\x04 not really", "UnsupportedFormatError"),
    "parquet_upload": ("raw/d/x.parquet", b"PAR1....PAR1", "UnsupportedFormatError"),
    "json_wrong_shape_scalar": ("raw/d/n.json", b"42", "MalformedContentError"),
    "json_array_of_scalars": ("raw/d/s.json", b"[1, 2, 3]", "MalformedContentError"),
    "json_truncated_array": ("raw/d/t.json", b'[{"a": 1}, {"a": ', "MalformedContentError"),
    "jsonl_all_garbage": ("raw/d/g.jsonl", b"not json\nstill not\n{broken\n", "RejectShareExceededError"),
    "ragged_rows_over_share": ("raw/d/r.csv", b"a,b\n1,2\n1,2,3,4\n5\n6,7,8\n", "RejectShareExceededError"),
    "huge_single_line": ("raw/d/huge.csv", BIG_LINE, None),
    "empty_json_array": ("raw/d/e.json", b"[]", "NoRowsError"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_ends_failed_with_reason_and_leaves_the_upload_untouched(platform: Platform, case: str) -> None:
    key, data, expected_error = BAD_INPUTS[case]
    # GIVEN a bad upload
    key, version = platform.upload(key, data)
    # WHEN processed
    response = platform.invoke(platform.sqs_event(platform.body_for(key, version)))
    job = platform.job(key, version)
    # THEN the message is acknowledged (no retries) and the job FAILED with its reason
    assert response == {"batchItemFailures": []}
    assert job["job_status"] == "FAILED"
    assert job["error_message"]
    if expected_error:
        assert job["error_type"] == expected_error, job["error_message"]
    # AND the original object is untouched: same single version, same bytes; nothing was published
    versions = platform.s3.list_object_versions(Bucket=BUCKET, Prefix=key)["Versions"]
    assert [v["VersionId"] for v in versions] == [version]
    assert platform.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == data
    assert platform.keys("processed/") == []


@pytest.mark.parametrize(
    ("data", "names"),
    [(b"id,Id,name\n1,2,x\n", ["id", "id_2", "name"]), (b"User Id,user_id\n1,2\n", ["user_id", "user_id_2"])],
)
def test_headers_naming_one_column_twice_get_distinct_names(platform: Platform, data: bytes, names: list[str]) -> None:
    # GIVEN headers that differ only in case or spelling WHEN processed THEN the file converts, each column named
    _, job = platform.upload_and_process("raw/dup/d.csv", data)
    assert job["job_status"] == "SUCCEEDED"
    assert [column.split(":")[0] for column in job["output_schema"]] == names


def test_too_large_object_fails_before_download(platform: Platform) -> None:
    # GIVEN an event announcing an object above MAX_OBJECT_BYTES
    key, version = platform.upload("raw/big/b.csv", b"a\n1\n")
    body = platform.body_for(key, version, size=60 * 1024 * 1024)
    # WHEN processed THEN it fails cleanly with the reason
    assert platform.invoke(platform.sqs_event(body)) == {"batchItemFailures": []}
    job = platform.job(key, version)
    assert job["job_status"] == "FAILED" and job["error_type"] == "TooLargeError"
    assert "at most" in job["error_message"]


def test_duplicate_delivery_is_a_no_op(platform: Platform) -> None:
    # GIVEN a processed upload
    key, version = platform.upload("raw/sales/dup.csv", GOOD_CSV)
    body = platform.body_for(key, version)
    platform.invoke(platform.sqs_event(body))
    first = platform.job(key, version)
    # WHEN the same event is delivered again, once alone and twice within one batch
    assert platform.invoke(platform.sqs_event(body)) == {"batchItemFailures": []}
    assert platform.invoke(platform.sqs_event(body, body)) == {"batchItemFailures": []}
    # THEN nothing changes: one attempt, one output version
    again = platform.job(key, version)
    assert again["attempts"] == 1 and again["finished_at"] == first["finished_at"]
    out_key = first["output_uri"].split(f"{BUCKET}/", 1)[1]
    assert len(platform.s3.list_object_versions(Bucket=BUCKET, Prefix=out_key)["Versions"]) == 1


class AtomicRequests:
    """Serialises each request to the table: DynamoDB evaluates a condition and writes atomically,
    moto's in-process backend does not, so without this the test would exercise moto, not our code."""

    def __init__(self, table: Any, lock: Any = None) -> None:
        self._table = table
        self._lock = lock or threading.Lock()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._table, name)
        if name == "meta":  # transactions go through the resource's client: the same lock
            return SimpleNamespace(client=AtomicRequests(method.client, self._lock))
        if not callable(method):
            return method

        def atomic(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return method(*args, **kwargs)

        return atomic


def test_concurrent_delivery_processes_once(platform: Platform) -> None:
    # GIVEN the same event delivered to two invocations at the same time
    key, version = platform.upload("raw/sales/race.csv", GOOD_CSV)
    body = platform.body_for(key, version)
    worker = handler_module.get_worker()
    worker.jobs._table = AtomicRequests(worker.jobs._table)
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def deliver(owner: str) -> None:
        barrier.wait()
        try:
            outcome = worker.process(worker.parse(body), owner=owner, receive_count=1, budget=budget())
            outcomes.append(outcome.status.value)
        except JobInProgressError:
            outcomes.append("in_progress")

    threads = [threading.Thread(target=deliver, args=(f"owner-{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # THEN exactly one of them did the work
    assert sorted(outcomes).count("succeeded") == 1
    assert set(outcomes) <= {"succeeded", "in_progress", "duplicate"}
    assert platform.job(key, version)["attempts"] == 1


def test_expired_lease_is_taken_over(platform: Platform) -> None:
    # GIVEN a job left RUNNING by an invocation that died (lease already expired)
    key, version = platform.upload("raw/sales/orphan.csv", GOOD_CSV)
    body = platform.body_for(key, version)
    worker = handler_module.get_worker()
    ref = worker.parse(body)
    from datetime import UTC, datetime, timedelta

    past = datetime.now(UTC) - timedelta(hours=1)
    worker.jobs.ensure(ref, "sales", past)
    worker.jobs.claim(ref.job_id, "dead-owner", past, lease_expires_at=int(past.timestamp()) + 60, receive_count=1)
    # WHEN the message is redelivered
    outcome = worker.process(ref, owner="new-owner", receive_count=2, budget=budget())
    # THEN the new invocation takes over and finishes the job
    assert outcome.status == "succeeded"
    job = platform.job(key, version)
    assert job["job_status"] == "SUCCEEDED" and job["attempts"] == 2


class FlakyS3:
    """Wraps the S3 client; the first ``failures`` downloads raise a throttling error."""

    def __init__(self, real: Any, failures: int) -> None:
        self._real = real
        self.failures = failures

    def download_file(self, *args: Any, **kwargs: Any) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate"},
                               "ResponseMetadata": {"HTTPStatusCode": 503}}, "GetObject")  # fmt: skip
        self._real.download_file(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def test_transient_failure_is_retried_and_then_succeeds(platform: Platform) -> None:
    # GIVEN S3 throttles the first download
    key, version = platform.upload("raw/sales/flaky.csv", GOOD_CSV)
    worker = handler_module.get_worker()
    worker._store._s3 = FlakyS3(worker._store._s3, failures=1)
    body = platform.body_for(key, version)
    # WHEN the first delivery runs THEN only that record fails and the job waits for the retry
    event = platform.sqs_event(body)
    response = platform.invoke(event)
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    waiting = platform.job(key, version)
    assert waiting["job_status"] == "PENDING" and waiting["error_type"] == "TransientError"
    # WHEN SQS redelivers THEN the job succeeds on attempt 2
    assert platform.invoke(platform.sqs_event(body, receive_count=2)) == {"batchItemFailures": []}
    done = platform.job(key, version)
    assert done["job_status"] == "SUCCEEDED" and done["attempts"] == 2
    assert "error_type" not in done


def test_persistent_transient_failure_keeps_the_attempts_and_last_error(platform: Platform) -> None:
    # GIVEN S3 throttles every download
    key, version = platform.upload("raw/sales/down.csv", GOOD_CSV)
    worker = handler_module.get_worker()
    worker._store._s3 = FlakyS3(worker._store._s3, failures=99)
    body = platform.body_for(key, version)
    # WHEN all three receives fail
    for attempt in (1, 2, 3):
        response = platform.invoke(platform.sqs_event(body, receive_count=attempt))
        assert len(response["batchItemFailures"]) == 1
    # THEN the record shows three attempts, the last error, and that retries are exhausted
    job = platform.job(key, version)
    assert job["attempts"] == 3 and job["job_status"] == "DEAD_LETTERED"
    assert "SlowDown" in job["error_message"]
    assert platform.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == GOOD_CSV


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        json.dumps({"source": "aws.ec2", "detail-type": "Object Created", "detail": {}}),
        json.dumps({"source": "aws.s3", "detail-type": "Object Created", "detail": {"bucket": {"name": BUCKET}}}),
    ],
)
def test_unprocessable_message_fails_its_record_only(platform: Platform, body: str) -> None:
    # GIVEN a batch with one good and one unprocessable message
    key, version = platform.upload("raw/sales/ok.csv", GOOD_CSV)
    event = platform.sqs_event(platform.body_for(key, version), body)
    # WHEN processed THEN only the bad message is reported failed (it will reach the DLQ)
    response = platform.invoke(event)
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}
    assert platform.job(key, version)["job_status"] == "SUCCEEDED"


def test_event_for_another_regions_bucket_is_refused_without_reading_it(platform: Platform) -> None:
    # GIVEN an event naming a bucket of another region
    other = "analytics-bucket-eu-west-1-test"
    platform.s3.create_bucket(Bucket=other, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    platform.s3.put_object(Bucket=other, Key="raw/x/a.csv", Body=GOOD_CSV)
    body = json.loads(platform.body_for("raw/sales/none.csv", "v1", size=10))
    body["detail"]["bucket"]["name"] = other
    body["detail"]["object"]["key"] = "raw/x/a.csv"
    event = platform.sqs_event(json.dumps(body))
    # WHEN processed THEN the record fails, and nothing is written anywhere
    response = platform.invoke(event)
    assert len(response["batchItemFailures"]) == 1
    assert platform.table.scan()["Items"] == []
    assert platform.keys("processed/") == []


def test_structured_logs_carry_the_job_id(platform: Platform, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN the worker's log handler writing to a buffer
    buffer = io.StringIO()
    previous = handler_module.logger.registered_handler.setStream(buffer)
    try:
        # WHEN a job runs
        _, job = platform.upload_and_process("raw/sales/logged.csv", GOOD_CSV)
    finally:
        handler_module.logger.registered_handler.setStream(previous)
    # THEN every worker log line about it is JSON with the job id, and EMF metrics are emitted
    output = buffer.getvalue() + capsys.readouterr().out
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    job_lines = [line for line in lines if line.get("message") == "job succeeded"]
    assert job_lines and job_lines[0]["job_id"] == job["job_id"]
    emf = [line for line in lines if "_aws" in line]
    assert emf, "no embedded-metric-format line"
    assert emf[0]["JobsSucceeded"] in ([1.0], 1.0)
    assert emf[0]["RowsOut"] in ([3.0], 3.0)
