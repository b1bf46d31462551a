"""The local endpoint answers a role session as AWS would: policy with resources, 403 vs 404, encoded keys, faults."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from analytics_platform.etl.catalog import table_input
from analytics_platform.infra.iam import write_catalog_tables
from analytics_platform.local.clients import local_client
from analytics_platform.local.endpoint import Endpoint, start_endpoint

REGION = "eu-west-1"
BUCKET = "endpoint-test-bucket"
NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Endpoint, Path]]:
    logs = tmp_path_factory.mktemp("endpoint")
    port = free_port()
    running = start_endpoint(port, log_dir=logs)
    url = f"http://127.0.0.1:{port}"
    s3 = local_client("s3", REGION, url)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    yield url, running, logs
    running.stop()


def role_session(url: str, name: str, statements: list[dict[str, Any]]) -> boto3.session.Session:
    """A role with exactly these statements, and a session on its AssumeRole credentials."""
    iam = local_client("iam", REGION, url)
    lambda_service = {"Service": "lambda.amazonaws.com"}
    trust = {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Principal": lambda_service, "Action": "sts:AssumeRole"}]}  # fmt: skip
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    policy = {"Version": "2012-10-17", "Statement": statements}
    iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
    found = local_client("sts", REGION, url).assume_role(RoleArn=arn, RoleSessionName=name)["Credentials"]
    return boto3.session.Session(
        aws_access_key_id=found["AccessKeyId"], aws_secret_access_key=found["SecretAccessKey"],
        aws_session_token=found["SessionToken"], region_name=REGION,
    )  # fmt: skip


def code(error: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = error.value.response
    return str(response["Error"]["Code"]), int(response["ResponseMetadata"]["HTTPStatusCode"])


def test_a_role_session_may_do_only_what_its_policy_allows_on_those_resources(
    endpoint: tuple[str, Endpoint, Path],
) -> None:
    url, _, logs = endpoint
    # GIVEN a role that may read raw/ and write processed/ of one bucket
    session = role_session(url, "reader", [
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket"],
         "Resource": [f"arn:aws:s3:::{BUCKET}/raw/*", f"arn:aws:s3:::{BUCKET}"]},
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{BUCKET}/processed/*"},
    ])  # fmt: skip
    admin = local_client("s3", REGION, url)
    admin.put_object(Bucket=BUCKET, Key="raw/a b+é.csv", Body=b"x")
    admin.put_object(Bucket=BUCKET, Key="secret/x.csv", Body=b"x")
    s3 = session.client("s3", endpoint_url=url, config=NO_RETRIES)
    # THEN what the policy names works
    assert s3.get_object(Bucket=BUCKET, Key="raw/a b+é.csv")["Body"].read() == b"x"
    s3.put_object(Bucket=BUCKET, Key="processed/out.parquet", Body=b"y")
    # AND the same actions elsewhere are denied, as AWS denies them, and logged
    with pytest.raises(ClientError) as read_elsewhere:
        s3.get_object(Bucket=BUCKET, Key="secret/x.csv")
    assert code(read_elsewhere) == ("AccessDenied", 403)
    with pytest.raises(ClientError) as write_raw:
        s3.put_object(Bucket=BUCKET, Key="raw/overwrite.csv", Body=b"z")
    assert code(write_raw) == ("AccessDenied", 403)
    denied = [json.loads(line) for line in (logs / "denied.jsonl").read_text().splitlines()]
    assert {(d["action"], d["resource"]) for d in denied} >= {
        ("s3:GetObject", f"arn:aws:s3:::{BUCKET}/secret/x.csv"),
        ("s3:PutObject", f"arn:aws:s3:::{BUCKET}/raw/overwrite.csv"),
    }


def test_a_copy_needs_read_on_its_source_as_well_as_write_on_its_target(endpoint: tuple[str, Endpoint, Path]) -> None:
    url, _, _ = endpoint
    # GIVEN a role that may write processed/ and read only raw/
    session = role_session(url, "copier", [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/raw/*"},
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{BUCKET}/processed/*"},
    ])  # fmt: skip
    admin = local_client("s3", REGION, url)
    admin.put_object(Bucket=BUCKET, Key="raw/copy me.csv", Body=b"x")
    admin.put_object(Bucket=BUCKET, Key="staging/unreadable.parquet", Body=b"x")
    s3 = session.client("s3", endpoint_url=url, config=NO_RETRIES)
    # THEN a copy from what it may read works, and one from what it may not read is denied, as S3 checks both
    s3.copy_object(Bucket=BUCKET, Key="processed/a.parquet", CopySource={"Bucket": BUCKET, "Key": "raw/copy me.csv"})
    with pytest.raises(ClientError) as denied:
        s3.copy_object(Bucket=BUCKET, Key="processed/b.parquet",
                       CopySource={"Bucket": BUCKET, "Key": "staging/unreadable.parquet"})  # fmt: skip
    assert code(denied) == ("AccessDenied", 403)


def test_dynamodb_and_sqs_are_checked_by_table_and_queue(endpoint: tuple[str, Endpoint, Path]) -> None:
    url, _, _ = endpoint
    admin_db = local_client("dynamodb", REGION, url)
    for name in ("mine", "theirs"):
        admin_db.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                              AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                              KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}])  # fmt: skip
    sqs_admin = local_client("sqs", REGION, url)
    mine_url = sqs_admin.create_queue(QueueName="mine-q")["QueueUrl"]
    theirs_url = sqs_admin.create_queue(QueueName="theirs-q")["QueueUrl"]
    session = role_session(url, "writer", [
        {"Effect": "Allow", "Action": ["dynamodb:PutItem", "dynamodb:GetItem"],
         "Resource": f"arn:aws:dynamodb:{REGION}:123456789012:table/mine"},
        {"Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": f"arn:aws:sqs:{REGION}:123456789012:mine-q"},
    ])  # fmt: skip
    db = session.client("dynamodb", endpoint_url=url, config=NO_RETRIES)
    db.put_item(TableName="mine", Item={"k": {"S": "1"}})
    with pytest.raises(ClientError) as other_table:
        db.put_item(TableName="theirs", Item={"k": {"S": "1"}})
    assert code(other_table) == ("AccessDeniedException", 400)
    with pytest.raises(ClientError) as not_granted:
        db.delete_item(TableName="mine", Key={"k": {"S": "1"}})
    assert code(not_granted)[0] == "AccessDeniedException"
    sqs = session.client("sqs", endpoint_url=url, config=NO_RETRIES)
    sqs.send_message(QueueUrl=mine_url, MessageBody="ok")
    with pytest.raises(ClientError) as other_queue:
        sqs.send_message(QueueUrl=theirs_url, MessageBody="no")
    assert code(other_queue)[0] == "AccessDenied"


def test_a_missing_object_is_403_without_list_bucket_and_404_with_it(endpoint: tuple[str, Endpoint, Path]) -> None:
    url, _, _ = endpoint
    read = {"Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"],
            "Resource": f"arn:aws:s3:::{BUCKET}/raw/*"}  # fmt: skip
    listing = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{BUCKET}"}
    without = role_session(url, "no-list", [read]).client("s3", endpoint_url=url, config=NO_RETRIES)
    with_list = role_session(url, "with-list", [read, listing]).client("s3", endpoint_url=url, config=NO_RETRIES)
    for client, expected in ((without, 403), (with_list, 404)):
        with pytest.raises(ClientError) as missing:
            client.head_object(Bucket=BUCKET, Key="raw/never-there.csv")
        assert code(missing)[1] == expected
        with pytest.raises(ClientError) as missing_get:
            client.get_object(Bucket=BUCKET, Key="raw/never-there.csv")
        assert code(missing_get)[1] == expected


def eventbridge_bucket(s3: Any, bucket: str) -> None:
    """A bucket that sends its events to EventBridge."""
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}})


def test_s3_eventbridge_events_carry_the_key_encoded_as_aws_sends_it(endpoint: tuple[str, Endpoint, Path]) -> None:
    url, _, _ = endpoint
    # GIVEN a bucket sending events to EventBridge, and a rule on raw/ that forwards them to a queue
    s3, events, sqs = (local_client(s, REGION, url) for s in ("s3", "events", "sqs"))
    bucket = "endpoint-events-bucket"
    eventbridge_bucket(s3, bucket)
    queue_url = sqs.create_queue(QueueName="events-q")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"source": ["aws.s3"], "detail-type": ["Object Created"],
               "detail": {"bucket": {"name": [bucket]}, "object": {"key": [{"prefix": "raw/"}]}}}  # fmt: skip
    events.put_rule(Name="raw-uploads", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="raw-uploads", Targets=[{"Id": "q", "Arn": queue_arn}])
    keys = ["raw/a b.csv", "raw/a+b.csv", "raw/50%41off.csv", "raw/k=v:1#x?y.csv", "raw/é 📈.csv"]
    # WHEN uploaded
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    received: list[str] = []
    deadline = time.monotonic() + 10
    while len(received) < len(keys) and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
            received.append(json.loads(message["Body"])["detail"]["object"]["key"])
    # THEN each key arrives form-encoded (space as +, + as %2B, % as %25), and unquote_plus gives it back
    assert sorted(unquote_plus(key) for key in received) == sorted(keys), received
    assert "raw/a+b.csv" in received and "raw/a%2Bb.csv" in received and "raw/50%2541off.csv" in received


def test_faults_hit_role_sessions_only_and_boto3_retries_through_them(
    endpoint: tuple[str, Endpoint, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, running, logs = endpoint
    session = role_session(url, "faulted", [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}])
    admin = local_client("s3", REGION, url)
    admin.put_object(Bucket=BUCKET, Key="raw/f.csv", Body=b"data")
    running.semantics.fault_rate = 0.5
    running.semantics.slow_reply_seconds = 0.05  # slow replies still happen, only shorter
    running.semantics._random.seed(18)  # a fixed fault sequence: the count below cannot fall short by chance
    try:
        # WHEN half the role's requests fail THEN the plain credentials never see a fault
        for _ in range(20):
            assert admin.get_object(Bucket=BUCKET, Key="raw/f.csv")["Body"].read() == b"data"
        before = len((logs / "faults.jsonl").read_text().splitlines()) if (logs / "faults.jsonl").exists() else 0
        assert before == 0
        # AND the role's client, with standard retries, still gets through
        patient = session.client(
            "s3", endpoint_url=url, config=Config(retries={"mode": "standard", "max_attempts": 10})
        )
        for _ in range(30):
            assert patient.get_object(Bucket=BUCKET, Key="raw/f.csv")["Body"].read() == b"data"
        faults = (logs / "faults.jsonl").read_text().splitlines()
        assert len(faults) >= 3
    finally:
        running.semantics.fault_rate = 0.0


def test_version_listings_encode_keys_when_asked_so_a_bucket_can_be_emptied(
    endpoint: tuple[str, Endpoint, Path],
) -> None:
    url, _, _ = endpoint
    # GIVEN keys whose raw form reads differently once URL-decoded
    s3 = local_client("s3", REGION, url)
    bucket = "endpoint-listing-bucket"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    keys = ["raw/a+b.csv", "raw/50%41off.csv", "raw/é <&>.csv"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    # WHEN listed with encoding-type=url, as Terraform's force-destroy lists them
    listed = s3.list_object_versions(Bucket=bucket, EncodingType="url")
    # THEN the keys arrive encoded and decode to the real keys, so deleting them empties the bucket
    assert listed["EncodingType"] == "url" and "raw/a%2Bb.csv" in [v["Key"] for v in listed["Versions"]]
    assert sorted(unquote_plus(v["Key"]) for v in listed["Versions"]) == sorted(keys)
    for version in listed["Versions"]:
        s3.delete_object(Bucket=bucket, Key=unquote_plus(version["Key"]), VersionId=version["VersionId"])
    assert "Versions" not in s3.list_object_versions(Bucket=bucket)


def test_a_schedule_rule_does_not_swallow_s3_events_meant_for_other_rules(endpoint: tuple[str, Endpoint, Path]) -> None:
    url, _, _ = endpoint
    # GIVEN a schedule rule with a function target created BEFORE the upload rule (Terraform's order varies)
    s3, events, sqs = (local_client(s, REGION, url) for s in ("s3", "events", "sqs"))
    bucket = "endpoint-order-bucket"
    eventbridge_bucket(s3, bucket)
    events.put_rule(Name="sweep", ScheduleExpression="rate(5 minutes)")
    function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:nothing-here"
    events.put_targets(Rule="sweep", Targets=[{"Id": "fn", "Arn": function_arn}])
    queue_url = sqs.create_queue(QueueName="order-q")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"source": ["aws.s3"], "detail-type": ["Object Created"], "detail": {"bucket": {"name": [bucket]}}}
    events.put_rule(Name="uploads", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="uploads", Targets=[{"Id": "q", "Arn": queue_arn}])
    # WHEN an object is uploaded THEN its event reaches the queue
    s3.put_object(Bucket=bucket, Key="raw/x.csv", Body=b"x")
    messages = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=2).get("Messages", [])
    assert [json.loads(m["Body"])["detail"]["object"]["key"] for m in messages] == ["raw/x.csv"]


def test_a_key_with_a_delete_marker_can_be_deleted_after_versioning_is_suspended(
    endpoint: tuple[str, Endpoint, Path],
) -> None:
    url, _, _ = endpoint
    # GIVEN a key with a version and a delete marker (a superseded output), then versioning suspended, which is
    # what destroying aws_s3_bucket_versioning does before the bucket's force-destroy empties it
    s3 = local_client("s3", REGION, url)
    bucket = "endpoint-marker-bucket"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=bucket, Key="processed/x.parquet", Body=b"x")
    s3.delete_object(Bucket=bucket, Key="processed/x.parquet")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    listed = s3.list_object_versions(Bucket=bucket)
    objects = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in listed["Versions"] + listed["DeleteMarkers"]]
    # WHEN every version is deleted in one batch THEN nothing errs and the bucket is empty
    response = s3.delete_objects(Bucket=bucket, Delete={"Objects": objects})
    assert not response.get("Errors")
    listed = s3.list_object_versions(Bucket=bucket)
    assert not listed.get("Versions") and not listed.get("DeleteMarkers")
    s3.delete_bucket(Bucket=bucket)


def test_a_disabled_rule_delivers_nothing_until_enabled_again(endpoint: tuple[str, Endpoint, Path]) -> None:
    url, _, _ = endpoint
    # GIVEN an upload rule to a queue
    s3, events, sqs = (local_client(s, REGION, url) for s in ("s3", "events", "sqs"))
    bucket = "endpoint-disabled-bucket"
    eventbridge_bucket(s3, bucket)
    queue_url = sqs.create_queue(QueueName="disabled-q")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"source": ["aws.s3"], "detail-type": ["Object Created"], "detail": {"bucket": {"name": [bucket]}}}
    events.put_rule(Name="disabled-uploads", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="disabled-uploads", Targets=[{"Id": "q", "Arn": queue_arn}])
    # WHEN the rule is disabled THEN an upload delivers nothing, as on AWS
    events.disable_rule(Name="disabled-uploads")
    s3.put_object(Bucket=bucket, Key="raw/while-disabled.csv", Body=b"x")
    assert sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", []) == []
    # AND once enabled again the next upload arrives (and only that one)
    events.enable_rule(Name="disabled-uploads")
    s3.put_object(Bucket=bucket, Key="raw/after.csv", Body=b"x")
    messages = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=2, MaxNumberOfMessages=10).get("Messages", [])
    assert [json.loads(m["Body"])["detail"]["object"]["key"] for m in messages] == ["raw/after.csv"]


def test_changing_one_queue_attribute_keeps_the_queue_policy(endpoint: tuple[str, Endpoint, Path]) -> None:
    url, _, _ = endpoint
    # GIVEN a queue with a policy
    sqs = local_client("sqs", REGION, url)
    queue_url = sqs.create_queue(QueueName="policy-q")["QueueUrl"]
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
        "Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage", "Resource": "*"}]})  # fmt: skip
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": policy})
    # WHEN only the visibility timeout is changed (as an operator might, outside Terraform)
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"VisibilityTimeout": "45"})
    # THEN the policy is still there, as SQS keeps it
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    assert attributes["VisibilityTimeout"] == "45" and json.loads(attributes["Policy"]) == json.loads(policy)


def test_conditions_and_not_resource_are_evaluated_as_iam_does(endpoint: tuple[str, Endpoint, Path]) -> None:
    url, _, _ = endpoint
    bucket_arn = f"arn:aws:s3:::{BUCKET}"
    # GIVEN a role whose statements use conditions, a NotResource Deny and an Allow that fails its condition
    session = role_session(url, "conditioned", [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{bucket_arn}/*"},
        {"Effect": "Deny", "Action": "s3:GetObject", "NotResource": f"{bucket_arn}/raw/*"},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{bucket_arn}/raw/*",
         "Condition": {"StringEquals": {"aws:RequestedRegion": "us-west-2"}}},
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": bucket_arn,
         "Condition": {"StringLike": {"s3:prefix": ["raw/*"]}}},
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"{bucket_arn}/*",
         "Condition": {"StringEquals": {"aws:SourceVpc": "vpc-0123"}}},
    ])  # fmt: skip
    local_client("s3", REGION, url).put_object(Bucket=BUCKET, Key="raw/c.csv", Body=b"c")
    local_client("s3", REGION, url).put_object(Bucket=BUCKET, Key="secret/c.csv", Body=b"c")
    s3 = session.client("s3", endpoint_url=url, config=NO_RETRIES)
    # THEN an Allow whose condition does not hold is no Deny: the unconditional Allow still grants raw/
    assert s3.get_object(Bucket=BUCKET, Key="raw/c.csv")["Body"].read() == b"c"
    # AND the NotResource Deny wins over the Allow on bucket/* outside raw/
    with pytest.raises(ClientError) as outside_raw:
        s3.get_object(Bucket=BUCKET, Key="secret/c.csv")
    assert code(outside_raw) == ("AccessDenied", 403)
    # AND s3:prefix is matched with IAM wildcards
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="raw/")["KeyCount"] >= 1
    with pytest.raises(ClientError) as other_prefix:
        s3.list_objects_v2(Bucket=BUCKET, Prefix="processed/")
    assert code(other_prefix) == ("AccessDenied", 403)
    # AND a missing key is 403: an object read carries no s3:prefix, so the conditioned ListBucket never applies
    with pytest.raises(ClientError) as missing:
        s3.get_object(Bucket=BUCKET, Key="raw/absent.csv")
    assert code(missing) == ("AccessDenied", 403)
    # AND a condition on a key the endpoint cannot know makes its Allow not apply (conservative)
    with pytest.raises(ClientError) as unknown_key:
        s3.put_object(Bucket=BUCKET, Key="raw/new.csv", Body=b"n")
    assert code(unknown_key) == ("AccessDenied", 403)


def test_index_queries_metrics_events_and_unmapped_calls(endpoint: tuple[str, Endpoint, Path]) -> None:
    url, _, logs = endpoint
    # GIVEN a table with an index, and a role that may query only the index, put metrics and use the default bus
    local_client("dynamodb", REGION, url).create_table(
        TableName="indexed", BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name in ("k", "s")],
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[{"IndexName": "by-s", "KeySchema": [{"AttributeName": "s", "KeyType": "HASH"}],
                                 "Projection": {"ProjectionType": "ALL"}}],
    )  # fmt: skip
    session = role_session(url, "observer", [
        {"Effect": "Allow", "Action": "dynamodb:Query",
         "Resource": f"arn:aws:dynamodb:{REGION}:123456789012:table/indexed/index/by-s"},
        {"Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*"},
        {"Effect": "Allow", "Action": "events:PutEvents",
         "Resource": f"arn:aws:events:{REGION}:123456789012:event-bus/default"},
    ])  # fmt: skip
    db = session.client("dynamodb", endpoint_url=url, config=NO_RETRIES)
    by_s = {":s": {"S": "x"}}
    # THEN the index may be queried, the table itself not
    assert db.query(TableName="indexed", IndexName="by-s", KeyConditionExpression="s = :s",
                    ExpressionAttributeValues=by_s)["Count"] == 0  # fmt: skip
    with pytest.raises(ClientError) as table_query:
        db.query(TableName="indexed", KeyConditionExpression="k = :s", ExpressionAttributeValues=by_s)
    assert code(table_query) == ("AccessDeniedException", 400)
    # AND metrics and events on the granted bus pass, another bus is denied as EventBridge denies
    session.client("cloudwatch", endpoint_url=url, config=NO_RETRIES).put_metric_data(
        Namespace="tap", MetricData=[{"MetricName": "m", "Value": 1.0}])  # fmt: skip
    events = session.client("events", endpoint_url=url, config=NO_RETRIES)
    assert events.put_events(Entries=[{"Source": "s", "DetailType": "d", "Detail": "{}"}])["FailedEntryCount"] == 0
    with pytest.raises(ClientError) as other_bus:
        events.put_events(Entries=[{"Source": "s", "DetailType": "d", "Detail": "{}", "EventBusName": "other"}])
    assert code(other_bus) == ("AccessDeniedException", 400)
    # AND GetCallerIdentity always works, while a call the endpoint cannot map is denied loudly and logged
    assert ":assumed-role/observer/" in session.client("sts", endpoint_url=url).get_caller_identity()["Arn"]
    with pytest.raises(ClientError) as unmapped:
        session.client("iam", endpoint_url=url, config=NO_RETRIES).list_roles()
    assert code(unmapped) == ("AccessDenied", 403)
    assert "iam:<unmapped" in (logs / "denied.jsonl").read_text()


def test_a_fault_seed_fixes_which_requests_fail_at_about_the_rate(
    endpoint: tuple[str, Endpoint, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _, _ = endpoint
    session = role_session(url, "seeded", [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}])
    local_client("s3", REGION, url).put_object(Bucket=BUCKET, Key="raw/seeded.csv", Body=b"s")
    monkeypatch.setenv("TAP_FAULT_SEED", "7")

    def outcomes(run: str) -> list[str]:
        # WHEN 100 role requests go to a fresh endpoint (same moto state) with the same seed and a 30 % rate
        faulty = start_endpoint(free_port(), log_dir=tmp_path / run, fault_rate=0.3)
        faulty.semantics.slow_reply_seconds = 0.01
        faulty_url = f"http://127.0.0.1:{faulty.server.server_port}"
        s3 = session.client("s3", endpoint_url=faulty_url, config=NO_RETRIES)
        seen = []
        try:
            for _ in range(100):
                try:
                    seen.append(s3.get_object(Bucket=BUCKET, Key="raw/seeded.csv")["Body"].read().decode())
                except ClientError as error:
                    seen.append(str(error.response["Error"]["Code"]))
            assert local_client("s3", REGION, faulty_url).get_object(Bucket=BUCKET, Key="raw/seeded.csv")
        finally:
            faulty.stop()
        return seen

    first, second = outcomes("first"), outcomes("second")
    # THEN the seed repeats the same faults, about 30 % of requests are faulted, and only role requests are
    assert first == second
    faults = (tmp_path / "first" / "faults.jsonl").read_text().splitlines()
    assert 15 <= len(faults) <= 45
    assert {json.loads(line)["role"].rsplit("/", 1)[-1] for line in faults} == {"seeded"}
    assert set(first) - {"s"} <= {"SlowDown", "InternalError", "ServiceUnavailable"}
    assert len([o for o in first if o != "s"]) == len([f for f in faults if "slow reply" not in f])


def test_glue_tables_are_checked_by_catalog_database_and_table(endpoint: tuple[str, Endpoint, Path]) -> None:
    url, _, _ = endpoint
    glue_admin = local_client("glue", REGION, url)
    for database in ("analytics_eu_west_1_t", "other_db"):
        glue_admin.create_database(DatabaseInput={"Name": database})
    # GIVEN the worker's own grant: the tables of one database
    grant = write_catalog_tables(partition="aws", region=REGION, account_id="123456789012",
                                 database="analytics_eu_west_1_t").render()  # fmt: skip
    session = role_session(url, "cataloguer", [{k: v for k, v in grant.items() if k != "Sid"}])
    glue = session.client("glue", endpoint_url=url, config=NO_RETRIES)
    body = table_input("orders", [("id", "integer")], bucket=BUCKET, prefix="processed/", version=1)
    # THEN it creates, reads and updates tables there
    glue.create_table(DatabaseName="analytics_eu_west_1_t", TableInput=body)
    assert glue.get_table(DatabaseName="analytics_eu_west_1_t", Name="orders")["Table"]["Name"] == "orders"
    glue.update_table(DatabaseName="analytics_eu_west_1_t", TableInput={**body, "Description": "v2"})
    # AND nothing in another database, and no deletes
    with pytest.raises(ClientError) as elsewhere:
        glue.create_table(DatabaseName="other_db", TableInput=body)
    assert code(elsewhere)[0] == "AccessDeniedException"
    with pytest.raises(ClientError) as delete:
        glue.delete_table(DatabaseName="analytics_eu_west_1_t", Name="orders")
    assert code(delete)[0] == "AccessDeniedException"
