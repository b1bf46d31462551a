"""In-process AWS (moto decorators) around the real worker and handler."""

from __future__ import annotations

import copy
import itertools
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.server import ThreadedMotoServer

from analytics_platform.etl import handler as handler_module
from analytics_platform.etl.events import ObjectRef, object_created_event
from analytics_platform.etl.jobs import DAY_INDEX, STATUS_INDEX
from analytics_platform.local.endpoint.moto_patches import encode_keys_in_version_listings

# In-process moto lists versions as S3 does (encoded keys), as the local endpoint does.
encode_keys_in_version_listings()

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
#: S3's per-key event order, as the upload helper hands it out (increasing, like S3's sequencers).
_SEQUENCE = itertools.count(0x617F08299329D189)


def next_sequencer() -> str:
    """The next sequencer, as S3 writes them (upper-case hexadecimal)."""
    return f"{next(_SEQUENCE):018X}"


REGION = "us-east-1"
BUCKET = "analytics-bucket-us-east-1-test"
TABLE = "analytics-jobs-us-east-1-test"
DATABASE = "analytics_us_east_1_test"
QUEUE_URL = f"https://sqs.{REGION}.amazonaws.com/123456789012/analytics-queue-us-east-1-test"
DLQ_URL = f"https://sqs.{REGION}.amazonaws.com/123456789012/analytics-dlq-us-east-1-test"


class FakeContext:
    """The parts of the Lambda context object the handler and Powertools read."""

    function_name = "analytics-etl-us-east-1-test"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:analytics-etl-us-east-1-test"

    def __init__(self, remaining_ms: int = 240_000) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def create_job_table(client: Any, name: str) -> None:
    """The job table with the stack's key schema and indexes."""
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": n, "AttributeType": "S"} for n in ("job_id", "job_day", "job_status", "created_at")
        ],
        KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": index,
                "KeySchema": [
                    {"AttributeName": hash_key, "KeyType": "HASH"},
                    {"AttributeName": "created_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for index, hash_key in ((DAY_INDEX, "job_day"), (STATUS_INDEX, "job_status"))
        ],
    )


@dataclass
class Platform:
    """One region's bucket and table inside moto, plus helpers to upload and invoke."""

    s3: Any
    table: Any
    tmp: Path
    sqs: Any
    queue_url: str
    dlq_url: str
    #: The sequencer S3 gave each (key, version) at upload; what its event carries.
    sequencers: dict[tuple[str, str | None], str] = field(default_factory=dict)

    def upload(self, key: str, data: bytes) -> tuple[str, str]:
        """Put an object; returns (key, version id)."""
        response = self.s3.put_object(Bucket=BUCKET, Key=key, Body=data)
        version = response.get("VersionId", "null")  # versioning suspended: the null version
        self.sequencers[(key, version)] = next_sequencer()
        return key, version

    def body_for(self, key: str, version: str | None, size: int | None = None) -> str:
        """The EventBridge event body SQS would carry for that object."""
        if size is None:
            size = self.s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"]
        sequencer = self.sequencers.get((key, version)) or next_sequencer()
        event = object_created_event(BUCKET, key, version_id=version, size=size, region=REGION, sequencer=sequencer)
        return json.dumps(event)

    def sqs_event(self, *bodies: str, receive_count: int = 1, message_id: str | None = None) -> dict[str, Any]:
        """An SQS event of several records, shaped like the fixture (received from the real queue)."""
        template = json.loads((FIXTURES / "sqs_record_template.json").read_text())
        records = []
        for body in bodies:
            record = copy.deepcopy(template)
            sent = self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=body)
            received = self.sqs.receive_message(QueueUrl=self.queue_url, VisibilityTimeout=300)["Messages"][0]
            record["messageId"] = message_id or sent["MessageId"]
            record["receiptHandle"] = received["ReceiptHandle"]
            record["body"] = body
            record["attributes"]["ApproximateReceiveCount"] = str(receive_count)
            records.append(record)
        return {"Records": records}

    def invoke(self, event: dict[str, Any], remaining_ms: int = 240_000) -> dict[str, Any]:
        """Run the real Lambda handler."""
        return handler_module.lambda_handler(event, FakeContext(remaining_ms))

    def upload_and_process(self, key: str, data: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
        """Upload, invoke once, return (handler response, job record)."""
        key, version = self.upload(key, data)
        response = self.invoke(self.sqs_event(self.body_for(key, version)))
        return response, self.job(key, version)

    def job(self, key: str, version: str) -> dict[str, Any]:
        """The job record of one object version."""
        ref = ObjectRef(BUCKET, key, version, 0, datetime.now(UTC), REGION)
        return self.table.get_item(Key={"job_id": ref.job_id}, ConsistentRead=True).get("Item", {})

    def keys(self, prefix: str) -> list[str]:
        """Object keys under a prefix."""
        listing = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
        return [item["Key"] for item in listing.get("Contents", [])]


@pytest.fixture
def platform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Platform]:
    """A fresh moto account with the region's bucket and table, and the worker's environment set."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "DATA_REGION": REGION,
        "BUCKET_NAME": BUCKET,
        "TABLE_NAME": TABLE,
        "QUEUE_URL": QUEUE_URL,
        "DLQ_URL": DLQ_URL,
        "GLUE_DATABASE": DATABASE,
        "MAX_OBJECT_MB": "50",
        "MAX_REJECT_RATIO": "0.1",
        "MAX_RECEIVE_COUNT": "3",  # the specification's count; the tests walk every delivery
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        "TAP_WORK_DIR": str(tmp_path),
        "POWERTOOLS_METRICS_NAMESPACE": "Test",
        "POWERTOOLS_DEV": "false",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        create_job_table(dynamodb, TABLE)
        boto3.client("glue", region_name=REGION).create_database(DatabaseInput={"Name": DATABASE})
        sqs = boto3.client("sqs", region_name=REGION)
        dlq_url = sqs.create_queue(QueueName=DLQ_URL.rsplit("/", 1)[1])["QueueUrl"]
        queue_url = sqs.create_queue(QueueName=QUEUE_URL.rsplit("/", 1)[1])["QueueUrl"]
        monkeypatch.setenv("QUEUE_URL", queue_url)
        monkeypatch.setenv("DLQ_URL", dlq_url)
        handler_module.get_runtime.cache_clear()
        table = boto3.resource("dynamodb", region_name=REGION).Table(TABLE)
        yield Platform(s3, table, tmp_path, sqs, queue_url, dlq_url)
        handler_module.get_runtime.cache_clear()


@pytest.fixture
def endpoint() -> Iterator[str]:
    """A moto server on a free loopback port, for the local Lambda service's tests."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{server.get_host_and_port()[1]}"
    server.stop()
