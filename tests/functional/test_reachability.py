"""A service the worker's VPC has no route to: the call times out as on AWS, quickly, on the transient path.

The worker runs in-process against moto with one service pointed at the local runtime's blackhole (as the local
runtime does for a service without a route); then the local Lambda service itself decides the routes of a VPC
function from the EC2 API of a network built like the stack's, and follows an endpoint being deleted.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ConnectTimeoutError

from analytics_platform.etl import handler as handler_module
from analytics_platform.etl.clients import WORKER_SERVICES, EndpointType, unreachable_call_seconds
from analytics_platform.etl.exceptions import TransientError
from analytics_platform.infra.config import PlatformConfig
from analytics_platform.local import vpc_reachability as reachability
from analytics_platform.local.clients import local_client
from analytics_platform.local.server import LocalLambdaService
from analytics_platform.local.vpc_reachability import Blackhole, endpoint_variable
from tests.functional.conftest import FakeContext, Platform

GOOD_CSV = b"id,name\n1,a\n2,b\n"
REGION = "us-east-1"
#: The function's time on AWS by default: a call without a route must fail well inside it.
FUNCTION_SECONDS = PlatformConfig().lambda_timeout_seconds


@pytest.fixture
def blackhole() -> Iterator[Blackhole]:
    hole = Blackhole()
    yield hole
    hole.close()


def without_route(monkeypatch: pytest.MonkeyPatch, service: str, hole: Blackhole) -> None:
    """What the local runtime does for a service the stack gives no route to; the worker is built afresh."""
    monkeypatch.setenv(endpoint_variable(service), hole.url)
    handler_module.get_runtime.cache_clear()


def sweep_event() -> dict[str, Any]:
    return {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {"task": "dead-letter-sweep"}}


def test_a_sweep_without_a_route_to_sqs_fails_as_a_connect_timeout_and_marks_nothing(
    platform: Platform, blackhole: Blackhole, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an upload whose message is in the DLQ, and a VPC without a route to SQS
    key, version = platform.upload("raw/sales/stuck.csv", GOOD_CSV)
    platform.sqs.send_message(QueueUrl=platform.dlq_url, MessageBody=platform.body_for(key, version))
    without_route(monkeypatch, "sqs", blackhole)
    # WHEN the scheduled sweep runs
    with pytest.raises(TransientError) as failure:
        handler_module.lambda_handler(sweep_event(), FakeContext())
    # THEN it fails as on AWS (a connect timeout, classified transient), marking nothing; the clients' connect
    # timeout, attempts and back-off bound that failure well inside the function's time
    assert isinstance(failure.value.__cause__, ConnectTimeoutError)
    assert unreachable_call_seconds() < FUNCTION_SECONDS
    assert platform.job(key, version) == {}
    attributes = platform.sqs.get_queue_attributes(QueueUrl=platform.dlq_url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "1"


def test_a_record_whose_bucket_has_no_route_is_retried_as_a_transient_failure(
    platform: Platform, blackhole: Blackhole, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an upload, and a VPC without a route to S3
    key, version = platform.upload("raw/sales/far.csv", GOOD_CSV)
    event = platform.sqs_event(platform.body_for(key, version))
    without_route(monkeypatch, "s3", blackhole)
    # WHEN its message is processed
    response = platform.invoke(event)
    # THEN the record fails for SQS to deliver again; the job is back to PENDING with the connect timeout as reason
    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == [event["Records"][0]["messageId"]]
    job = platform.job(key, version)
    assert job["job_status"] == "PENDING" and job["error_type"] == "TransientError"
    assert "ConnectTimeoutError" in job["error_message"]
    assert unreachable_call_seconds() < FUNCTION_SECONDS


# --- the local Lambda service decides a VPC function's routes ------------------------------------------------
PROBE = """
import boto3
from botocore.config import Config

def handler(event, context):
    config = Config(connect_timeout=1, retries={"mode": "standard", "max_attempts": 1})
    calls = {"sqs": lambda c: c.list_queues(), "s3": lambda c: c.list_buckets()}
    outcome = {}
    for service, call in calls.items():
        try:
            call(boto3.client(service, config=config))
            outcome[service] = "ok"
        except Exception as error:
            outcome[service] = type(error).__name__
    return outcome
"""


def probe_package() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", PROBE)
    return buffer.getvalue()


def stack_like_network(ec2: Any) -> dict[str, Any]:
    """A VPC as the Network construct makes it: private subnets on one route table, the worker's and the
    endpoints' security groups (HTTPS between them), an endpoint for every service the worker declares."""
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{16 * i}.0/20")["Subnet"]["SubnetId"] for i in (0, 1)]
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    for subnet in subnets:
        ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
    worker = ec2.create_security_group(GroupName="worker", Description="worker", VpcId=vpc)["GroupId"]
    endpoints = ec2.create_security_group(GroupName="endpoints", Description="endpoints", VpcId=vpc)["GroupId"]
    ec2.revoke_security_group_egress(
        GroupId=worker, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    )
    https = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443}
    ec2.authorize_security_group_ingress(
        GroupId=endpoints, IpPermissions=[{**https, "UserIdGroupPairs": [{"GroupId": worker}]}]
    )
    ec2.authorize_security_group_egress(
        GroupId=worker, IpPermissions=[{**https, "UserIdGroupPairs": [{"GroupId": endpoints}]}]
    )
    ids = {}
    for service in WORKER_SERVICES:
        name = f"com.amazonaws.{REGION}.{service.name}"
        if service.endpoint is EndpointType.GATEWAY:
            created = ec2.create_vpc_endpoint(
                VpcId=vpc, ServiceName=name, VpcEndpointType="Gateway", RouteTableIds=[table]
            )
            prefix = ec2.describe_prefix_lists(Filters=[{"Name": "prefix-list-name", "Values": [name]}])
            ec2.authorize_security_group_egress(GroupId=worker, IpPermissions=[
                {**https, "PrefixListIds": [{"PrefixListId": prefix["PrefixLists"][0]["PrefixListId"]}]}
            ])  # fmt: skip
        else:
            created = ec2.create_vpc_endpoint(
                VpcId=vpc, ServiceName=name, VpcEndpointType="Interface", SubnetIds=subnets,
                SecurityGroupIds=[endpoints], PrivateDnsEnabled=True,
            )  # fmt: skip
        ids[service.name] = created["VpcEndpoint"]["VpcEndpointId"]
    return {"subnets": subnets, "worker": worker, "endpoints": ids}


TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
         "Principal": {"Service": "lambda.amazonaws.com"}}]}  # fmt: skip


def probe_function(endpoint: str, name: str, **extra: Any) -> tuple[Any, str]:
    """The probe deployed as function ``name``; returns (lambda client, function ARN)."""
    role = local_client("iam", REGION, endpoint).create_role(
        RoleName=f"{name}-role", AssumeRolePolicyDocument=json.dumps(TRUST)
    )["Role"]["Arn"]
    lam = local_client("lambda", REGION, endpoint)
    code = {"ZipFile": probe_package()}
    created = lam.create_function(
        FunctionName=name, Runtime="python3.11", Role=role, Handler="app.handler", Code=code, Timeout=15,
        MemorySize=256, **extra,
    )  # fmt: skip
    arn = str(created["FunctionArn"])
    return lam, arn


def unreachable_events(work_dir: Path) -> list[dict[str, Any]]:
    lines = (work_dir / "invocations.jsonl").read_text().splitlines()
    return [entry for entry in map(json.loads, lines) if entry["event"] == "unreachable"]


def test_the_local_runtime_routes_a_vpc_function_as_its_applied_network_does(
    endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a function in a VPC built like the stack's, every declared service with its endpoint
    monkeypatch.setattr(reachability, "ROUTES_TTL_SECONDS", 0.0)  # read the network before every invocation
    network = stack_like_network(local_client("ec2", REGION, endpoint))
    local_client("s3", REGION, endpoint).create_bucket(Bucket="probe")
    vpc_config = {"SubnetIds": network["subnets"], "SecurityGroupIds": [network["worker"]]}
    lam, arn = probe_function(endpoint, "probe", VpcConfig=vpc_config)
    service = LocalLambdaService(endpoint, [REGION], tmp_path)
    try:
        runtime = service._pool(lam, REGION, arn).runtimes[0]
        # WHEN it calls SQS and S3 THEN both answer
        assert runtime.invoke({}) == {"sqs": "ok", "s3": "ok"}
        assert [e["services"] for e in unreachable_events(tmp_path)] == [{}]
        # WHEN the SQS endpoint is deleted THEN the next invocation's SQS call times out; S3 still answers
        local_client("ec2", REGION, endpoint).delete_vpc_endpoints(VpcEndpointIds=[network["endpoints"]["sqs"]])
        assert runtime.invoke({}) == {"sqs": "ConnectTimeoutError", "s3": "ok"}
        changes = unreachable_events(tmp_path)
        assert len(changes) == 2 and list(changes[1]["services"]) == ["sqs"]
        assert changes[1]["function"] == "probe" and "no sqs endpoint" in changes[1]["services"]["sqs"]
    finally:
        service.stop()


def test_a_function_outside_a_vpc_reaches_everything(endpoint: str, tmp_path: Path) -> None:
    lam, arn = probe_function(endpoint, "public")
    service = LocalLambdaService(endpoint, [REGION], tmp_path)
    try:
        assert service._pool(lam, REGION, arn).runtimes[0].invoke({}) == {"sqs": "ok", "s3": "ok"}
    finally:
        service.stop()
