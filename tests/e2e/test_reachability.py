"""End to end: the local platform holds the worker to its VPC's routes, as AWS does.

One region, the sweep every minute. With every endpoint the stack creates, uploads succeed and the sweep marks
what reached the DLQ; once the SQS endpoint is deleted (through the local endpoint's EC2 API), the sweep's calls
time out and it fails, marking nothing, while uploads still succeed over the S3 and DynamoDB gateway endpoints.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import pytest

from analytics_platform.etl.events import ObjectRef, object_created_event
from analytics_platform.etl.job_values import settled
from analytics_platform.local.clients import local_client, local_resource
from analytics_platform.local.platform import LocalPaths, platform_down, platform_up
from analytics_platform.local.vpc_reachability import ROUTES_TTL_SECONDS

pytestmark = pytest.mark.e2e
REGION = "eu-west-1"
GOOD = b"id,name\n1,Ann\n2,Bo\n"
#: The smallest platform that shows it: one region, a short function timeout (visibility 6x), the sweep every minute.
OVERRIDES = {
    "regions": [REGION], "environment_suffix": "reach", "lambda_timeout_seconds": 15,
    "queue_visibility_timeout_seconds": 90, "dead_letter_sweep_minutes": 1,
}  # fmt: skip
TERMINAL = {"SUCCEEDED", "FAILED", "DEAD_LETTERED", "SUPERSEDED", "DELETED"}
SWEEP_WAIT_SECONDS = 150


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    paths = LocalPaths(tmp_path_factory.mktemp("local-reach"))
    outputs = platform_up(paths=paths, overrides=OVERRIDES)
    yield {"outputs": outputs, "paths": paths, "names": asdict(outputs.regions[REGION])}
    assert platform_down(paths=paths) is True


def client(local: dict[str, Any], service: str) -> Any:
    return local_client(service, REGION, local["outputs"].endpoint)


def job(local: dict[str, Any], job_id: str) -> dict[str, Any]:
    table = local_resource("dynamodb", REGION, local["outputs"].endpoint).Table(local["names"]["table_name"])
    return dict(table.get_item(Key={"job_id": job_id}, ConsistentRead=True).get("Item", {}))


def wait_terminal(local: dict[str, Any], job_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if settled(found := job(local, job_id)):
            return found
        time.sleep(0.5)
    return job(local, job_id)


def upload(local: dict[str, Any], key: str) -> ObjectRef:
    bucket = local["names"]["bucket_name"]
    version = client(local, "s3").put_object(Bucket=bucket, Key=key, Body=GOOD)["VersionId"]
    return ObjectRef(bucket, key, version, len(GOOD), datetime.now(UTC), REGION)


def dead_lettered_unprocessed(local: dict[str, Any], key: str) -> ObjectRef:
    """An upload's event that reached the DLQ without ever being processed (as when throttled to death)."""
    bucket = local["names"]["bucket_name"]
    version = client(local, "s3").put_object(Bucket=bucket, Key=f"staging/{key}", Body=GOOD)["VersionId"]
    event = object_created_event(bucket, f"raw/{key}", version_id=version, size=len(GOOD), region=REGION)
    client(local, "sqs").send_message(QueueUrl=local["names"]["dlq_url"], MessageBody=json.dumps(event))
    return ObjectRef(bucket, f"raw/{key}", version, len(GOOD), datetime.now(UTC), REGION)


def journal(local: dict[str, Any]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in local["paths"].journal.read_text().splitlines()]


def next_sweep_after(local: dict[str, Any], moment: float) -> dict[str, Any]:
    deadline = time.monotonic() + SWEEP_WAIT_SECONDS
    while time.monotonic() < deadline:
        sweeps = [e for e in journal(local) if e.get("event") == "schedule" and e["at"] > moment]
        if sweeps:
            return sweeps[0]
        time.sleep(1)
    raise AssertionError(f"no sweep ran within {SWEEP_WAIT_SECONDS} s")


def test_without_its_sqs_endpoint_the_sweep_fails_as_on_aws_and_with_it_everything_succeeds(
    local: dict[str, Any],
) -> None:
    # GIVEN the platform as applied, every service the worker calls with its endpoint
    # WHEN a file is uploaded and another upload's message reaches the DLQ unprocessed
    good = upload(local, "raw/scores/first.csv")
    stuck = dead_lettered_unprocessed(local, "scores/stuck.csv")
    # THEN the file succeeds and the sweep marks the other job DEAD_LETTERED
    assert wait_terminal(local, good.job_id, 90)["job_status"] == "SUCCEEDED"
    assert wait_terminal(local, stuck.job_id, SWEEP_WAIT_SECONDS)["job_status"] == "DEAD_LETTERED"
    # (that sweep is over before anything changes: its last long poll would take a message sent now)
    assert next_sweep_after(local, 0)["result"]["marked"] == 1

    # WHEN the SQS endpoint is deleted through the local endpoint's EC2 API
    ec2 = client(local, "ec2")
    service_filter = [{"Name": "service-name", "Values": [f"com.amazonaws.{REGION}.sqs"]}]
    (endpoint,) = ec2.describe_vpc_endpoints(Filters=service_filter)["VpcEndpoints"]
    ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint["VpcEndpointId"]])
    # (the runtime reads the network again after ROUTES_TTL_SECONDS; sweeps are a minute apart)
    deleted_at = time.time() + ROUTES_TTL_SECONDS
    # AND another upload's message reaches the DLQ unprocessed
    unmarked = dead_lettered_unprocessed(local, "scores/unmarked.csv")
    # THEN the next sweep fails as on AWS: its SQS calls time out (a transient error) and it marks nothing
    sweep = next_sweep_after(local, deleted_at)
    assert sweep["result"] is None and sweep["error"].startswith("TransientError: ConnectTimeoutError"), sweep
    assert job(local, unmarked.job_id) == {}
    attributes = client(local, "sqs").get_queue_attributes(
        QueueUrl=local["names"]["dlq_url"], AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "2"  # both still there, visible: nothing was lost
    # AND the runtime journaled why, and the worker's log says the sweep failed
    unreachable = [e for e in journal(local) if e.get("event") == "unreachable" and e["services"]]
    assert unreachable and list(unreachable[-1]["services"]) == ["sqs"]
    log = (local["paths"].runtime / "logs" / f"{local['names']['function_name']}.log").read_text()
    assert "dead-letter sweep failed; no job was marked" in log
    # AND uploads still succeed: S3 and DynamoDB keep their gateway endpoints
    later = upload(local, "raw/scores/later.csv")
    assert wait_terminal(local, later.job_id, 90)["job_status"] == "SUCCEEDED"
