"""``tap bootstrap`` against moto: the state bucket and lock table of each region, in that region, idempotently."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from analytics_platform.infra.config import PlatformConfig
from analytics_platform.ops import state_storage as bootstrap_module
from analytics_platform.ops.stack_commands import bootstrap_command
from analytics_platform.ops.state_storage import BLOCK_ALL, LOCK_KEY, bootstrap, bootstrap_region, tls_only_policy
from analytics_platform.targeting.deployment import Deployment, resolve_deployment

REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-1")


@pytest.fixture
def aws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An empty moto account, and a working directory with a ``dev`` environment (suffix dev, three regions)."""
    environments = tmp_path / "environments"
    environments.mkdir()
    (environments / "dev.toml").write_text('backend = "s3"\n')
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "TAP_ENVIRONMENTS_DIR": str(environments),
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "ENVIRONMENT_SUFFIX", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    with mock_aws():
        yield


def dev(*regions: str) -> Deployment:
    return resolve_deployment(env="dev", regions=list(regions) or None)


def s3(region: str) -> Any:
    return boto3.client("s3", region_name=region)


def dynamodb(region: str) -> Any:
    return boto3.client("dynamodb", region_name=region)


def test_first_run_creates_a_locked_down_bucket_and_lock_table_in_the_region(aws: None) -> None:
    # GIVEN an empty account
    deployment = dev("eu-west-1")
    names = deployment.config.names("eu-west-1")
    # WHEN
    (result,) = bootstrap(deployment, out=lambda line: None)
    # THEN the bucket is in eu-west-1, versioned, encrypted, private, TLS-only and tagged
    bucket = names.state_bucket
    assert (result.region, result.bucket, result.table) == ("eu-west-1", bucket, names.lock_table)
    assert result.changes[:2] == [f"created bucket {bucket}", "enabled versioning"]
    client = s3("eu-west-1")
    assert client.get_bucket_location(Bucket=bucket)["LocationConstraint"] == "eu-west-1"
    assert client.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    (rule,) = client.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert client.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == BLOCK_ALL
    assert json.loads(client.get_bucket_policy(Bucket=bucket)["Policy"]) == tls_only_policy(bucket, "eu-west-1")
    (ownership,) = client.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
    assert ownership["ObjectOwnership"] == "BucketOwnerEnforced"
    tags = {t["Key"]: t["Value"] for t in client.get_bucket_tagging(Bucket=bucket)["TagSet"]}
    assert tags["Purpose"] == "terraform-state"
    assert (tags["Environment"], tags["Region"], tags["ManagedBy"]) == ("dev", "eu-west-1", "cdktf")
    # THEN the lock table is in eu-west-1: keyed on LockID, on demand, with point-in-time recovery
    table = dynamodb("eu-west-1").describe_table(TableName=names.lock_table)["Table"]
    assert table["KeySchema"] == [{"AttributeName": LOCK_KEY, "KeyType": "HASH"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    backups = dynamodb("eu-west-1").describe_continuous_backups(TableName=names.lock_table)
    assert backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == (
        "ENABLED"
    )
    # THEN no other region got anything
    assert [b["Name"] for b in s3("us-east-1").list_buckets()["Buckets"]] == [bucket]
    for other in ("us-east-1", "ap-southeast-1"):
        assert dynamodb(other).list_tables()["TableNames"] == []


def test_us_east_1_bucket_is_created_without_a_location_constraint(aws: None) -> None:
    (result,) = bootstrap(dev("us-east-1"), out=lambda line: None)
    assert s3("us-east-1").get_bucket_location(Bucket=result.bucket)["LocationConstraint"] is None
    assert dynamodb("us-east-1").list_tables()["TableNames"] == [result.table]
    assert dynamodb("eu-west-1").list_tables()["TableNames"] == []


def test_second_run_changes_nothing(aws: None) -> None:
    # GIVEN every region bootstrapped once
    deployment = dev()
    bootstrap(deployment, out=lambda line: None)
    printed: list[str] = []
    # WHEN
    results = bootstrap(deployment, out=printed.append)
    # THEN
    assert [(r.region, r.changes) for r in results] == [(region, []) for region in REGIONS]
    assert all("already in place, nothing changed" in line for line in printed) and len(printed) == 3


def test_a_run_after_tampering_puts_back_exactly_what_was_changed(aws: None) -> None:
    # GIVEN a bootstrapped region whose bucket versioning was suspended and policy deleted by hand
    deployment = dev("eu-west-1")
    bootstrap(deployment, out=lambda line: None)
    bucket = deployment.config.names("eu-west-1").state_bucket
    client = s3("eu-west-1")
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    client.delete_bucket_policy(Bucket=bucket)
    # WHEN
    result = bootstrap_region(deployment, "eu-west-1")
    # THEN exactly those two are reported and put back
    assert result.changes == ["enabled versioning", "put the TLS-only bucket policy"]
    assert client.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert json.loads(client.get_bucket_policy(Bucket=bucket)["Policy"]) == tls_only_policy(bucket, "eu-west-1")
    assert bootstrap_region(deployment, "eu-west-1").changes == []


def test_a_run_after_public_access_and_pitr_were_loosened_puts_them_back(aws: None) -> None:
    deployment = dev("ap-southeast-1")
    bootstrap(deployment, out=lambda line: None)
    names = deployment.config.names("ap-southeast-1")
    s3("ap-southeast-1").put_public_access_block(
        Bucket=names.state_bucket, PublicAccessBlockConfiguration={**BLOCK_ALL, "RestrictPublicBuckets": False}
    )
    dynamodb("ap-southeast-1").update_continuous_backups(
        TableName=names.lock_table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False}
    )
    result = bootstrap_region(deployment, "ap-southeast-1")
    assert result.changes == ["blocked public access", "enabled point-in-time recovery"]


def test_a_tightened_policy_and_added_tags_are_kept(aws: None) -> None:
    # GIVEN someone added a statement to the state bucket's policy and a tag of their own
    deployment = dev("eu-west-1")
    bootstrap(deployment, out=lambda line: None)
    bucket = deployment.config.names("eu-west-1").state_bucket
    client = s3("eu-west-1")
    tightened = tls_only_policy(bucket, "eu-west-1")
    extra = {
        "Sid": "DenyDeletes", "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteBucket",
        "Resource": f"arn:aws:s3:::{bucket}",
    }  # fmt: skip
    tightened["Statement"].append(extra)
    client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(tightened))
    tags = client.get_bucket_tagging(Bucket=bucket)["TagSet"]
    client.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [*tags, {"Key": "Owner", "Value": "platform"}]})
    # WHEN
    result = bootstrap_region(deployment, "eu-west-1")
    # THEN nothing is rewritten
    assert result.changes == []
    assert json.loads(client.get_bucket_policy(Bucket=bucket)["Policy"]) == tightened
    assert {"Key": "Owner", "Value": "platform"} in client.get_bucket_tagging(Bucket=bucket)["TagSet"]


def test_a_changed_tls_statement_is_put_back_next_to_the_others(aws: None) -> None:
    # GIVEN the TLS-only statement was turned into an Allow, next to another statement
    deployment = dev("eu-west-1")
    bootstrap(deployment, out=lambda line: None)
    bucket = deployment.config.names("eu-west-1").state_bucket
    client = s3("eu-west-1")
    loosened = tls_only_policy(bucket, "eu-west-1")
    loosened["Statement"][0]["Effect"] = "Allow"
    other = {"Sid": "DenyDeletes", "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteBucket",
             "Resource": f"arn:aws:s3:::{bucket}"}  # fmt: skip
    loosened["Statement"].append(other)
    client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(loosened))
    # WHEN
    result = bootstrap_region(deployment, "eu-west-1")
    # THEN
    assert result.changes == ["put the TLS-only bucket policy"]
    statements = json.loads(client.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]
    assert statements == [other, tls_only_policy(bucket, "eu-west-1")["Statement"][0]]


def test_an_existing_table_with_another_key_is_refused_and_left_alone(aws: None) -> None:
    # GIVEN a table of the lock table's name keyed on something else
    deployment = dev("eu-west-1")
    table = deployment.config.names("eu-west-1").lock_table
    dynamodb("eu-west-1").create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1},
    )
    # WHEN / THEN
    with pytest.raises(RuntimeError, match=f"{table} exists but is not keyed on LockID"):
        bootstrap_region(deployment, "eu-west-1")
    description = dynamodb("eu-west-1").describe_table(TableName=table)["Table"]
    assert description["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert description["BillingModeSummary"]["BillingMode"] == "PROVISIONED"
    backups = dynamodb("eu-west-1").describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "DISABLED"


def test_a_provisioned_lock_table_is_switched_to_on_demand(aws: None) -> None:
    deployment = dev("eu-west-1")
    table = deployment.config.names("eu-west-1").lock_table
    dynamodb("eu-west-1").create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": LOCK_KEY, "AttributeType": "S"}],
        KeySchema=[{"AttributeName": LOCK_KEY, "KeyType": "HASH"}],
        ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1},
    )
    result = bootstrap_region(deployment, "eu-west-1")
    assert "switched the lock table to on-demand" in result.changes
    described = dynamodb("eu-west-1").describe_table(TableName=table)["Table"]
    assert described["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"


class WithoutBillingSummary:
    """A DynamoDB client answering as AWS does for a table that was always provisioned: no BillingModeSummary."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def describe_table(self, **kwargs: Any) -> Any:
        answer = self.client.describe_table(**kwargs)
        answer["Table"].pop("BillingModeSummary", None)
        return answer

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def test_a_provisioned_lock_table_without_billing_summary_is_switched_too(aws: None) -> None:
    table = "tflock-provisioned"
    dynamodb("eu-west-1").create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": LOCK_KEY, "AttributeType": "S"}],
        KeySchema=[{"AttributeName": LOCK_KEY, "KeyType": "HASH"}],
        ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
    )
    changes: list[str] = []
    bootstrap_module._ensure_lock_table(WithoutBillingSummary(dynamodb("eu-west-1")), table, {}, changes)
    assert "switched the lock table to on-demand" in changes


def test_one_failing_region_does_not_stop_the_next(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN eu-west-1 (the second region) has a foreign table under the lock table's name
    config = dev().config
    dynamodb("eu-west-1").create_table(
        TableName=config.names("eu-west-1").lock_table,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    # WHEN
    code = bootstrap_command(env="dev", regions=None, local=False, config_path=None)
    # THEN eu-west-1 failed with its reason, the regions around it were bootstrapped, the exit code says so
    out = capsys.readouterr().out
    assert code == 1
    assert "[eu-west-1] FAILED: RuntimeError:" in out and "not keyed on LockID" in out
    for region in ("us-east-1", "ap-southeast-1"):
        names = config.names(region)
        assert f"[{region}] s3://{names.state_bucket} + {names.lock_table}: created bucket" in out
        assert dynamodb(region).describe_table(TableName=names.lock_table)["Table"]["TableStatus"] == "ACTIVE"
    # and a second run of the healthy regions changes nothing
    assert bootstrap_command(env="dev", regions=["us-east-1", "ap-southeast-1"], local=False, config_path=None) == 0
    assert capsys.readouterr().out.count("already in place, nothing changed") == 2


def test_a_bucket_name_owned_by_another_account_is_refused(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN S3 answers 403 for the name (another account's bucket)
    def forbidden(**kwargs: Any) -> None:
        raise ClientError({"Error": {"Code": "403", "Message": "Forbidden"}}, "HeadBucket")

    client = s3("eu-west-1")
    monkeypatch.setattr(client, "head_bucket", forbidden)
    with pytest.raises(RuntimeError, match="is not this account's"):
        bootstrap_module._ensure_bucket(client, "eu-west-1", "taken", {}, [])
    assert client.list_buckets()["Buckets"] == []


def test_an_environment_with_a_local_backend_gets_nothing_created(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from analytics_platform.ops import stack_commands as commands

    with mock_aws():
        monkeypatch.setattr(
            commands, "_resolve", lambda *args: Deployment("dev", PlatformConfig(), REGIONS, Path("/x"))
        )
        assert commands.bootstrap_command(env="dev", regions=None, local=False, config_path=None) == 0
        assert "no state bucket or lock table to create" in capsys.readouterr().out
        assert boto3.client("s3", region_name="us-east-1").list_buckets()["Buckets"] == []
