"""``tap bootstrap``: the S3 backend's state bucket and lock table, in each stack's own region, idempotently.

Each setting is read first and written only if it differs, so a second run reports no change and never
rewrites a policy someone tightened: the project's TLS-only statement is put back (and reported) when it is missing
or changed, statements and tags someone added stay.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from analytics_platform.etl.arns import s3_bucket_arn
from analytics_platform.infra.iam import deny_insecure_transport_policy
from analytics_platform.targeting.deployment import Deployment

LOCK_KEY = "LockID"  # the attribute Terraform's S3 backend locks on


@dataclass
class BootstrapResult:
    """What bootstrap found and changed in one region."""

    region: str
    bucket: str
    table: str
    changes: list[str] = field(default_factory=list)


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def tls_only_policy(bucket: str, region: str) -> dict[str, Any]:
    """Deny every request to the state bucket (of ``region``, whose partition its ARN names) that is not over TLS."""
    return deny_insecure_transport_policy(s3_bucket_arn(bucket, region))


def with_tls_only(current: dict[str, Any] | None, bucket: str, region: str) -> dict[str, Any]:
    """``current`` (the bucket's policy, or None) with the TLS-only statement in place of any of its ``Sid``;
    statements someone added are kept, so a tightened policy is never rewritten."""
    wanted = tls_only_policy(bucket, region)
    if not current:
        return wanted
    (statement,) = wanted["Statement"]
    statements = current.get("Statement", [])
    statements = [statements] if isinstance(statements, dict) else list(statements)
    if statement in statements:
        return current
    others = [s for s in statements if not (isinstance(s, dict) and s.get("Sid") == statement["Sid"])]
    return {**current, "Version": wanted["Version"], "Statement": [*others, statement]}


BLOCK_ALL = {
    "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True,
}  # fmt: skip


def _ensure_bucket(s3: Any, region: str, bucket: str, tags: dict[str, str], changes: list[str]) -> None:
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as error:
        if _code(error) in {"403", "AccessDenied", "Forbidden"}:
            raise RuntimeError(f"state bucket {bucket} exists but is not this account's (or not readable)") from error
        if _code(error) not in {"404", "NoSuchBucket", "NotFound"}:
            raise
        location = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=bucket, ObjectOwnership="BucketOwnerEnforced", **location)
        changes.append(f"created bucket {bucket}")
    if s3.get_bucket_versioning(Bucket=bucket).get("Status") != "Enabled":
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        changes.append("enabled versioning")
    try:
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    except ClientError:
        rules = []
    if not rules:
        default = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [default]})
        changes.append("enabled default encryption")
    try:
        blocked = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    except ClientError:
        blocked = {}
    if any(not blocked.get(key) for key in BLOCK_ALL):
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=BLOCK_ALL)
        changes.append("blocked public access")
    try:
        current = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    except ClientError:
        current = None
    wanted = with_tls_only(current, bucket, region)
    if current != wanted:
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(wanted))
        changes.append("put the TLS-only bucket policy")
    try:
        current_tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}
    except ClientError:
        current_tags = {}
    if {**current_tags, **tags} != current_tags:  # tags someone added (cost allocation...) stay
        tag_set = [{"Key": k, "Value": v} for k, v in sorted({**current_tags, **tags}.items())]
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tag_set})
        changes.append("tagged the bucket")


def _ensure_lock_table(dynamodb: Any, table: str, tags: dict[str, str], changes: list[str]) -> None:
    try:
        description = dynamodb.describe_table(TableName=table)["Table"]
    except ClientError as error:
        if _code(error) != "ResourceNotFoundException":
            raise
        description = dynamodb.create_table(
            TableName=table,
            AttributeDefinitions=[{"AttributeName": LOCK_KEY, "AttributeType": "S"}],
            KeySchema=[{"AttributeName": LOCK_KEY, "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
            SSESpecification={"Enabled": True},
            Tags=[{"Key": k, "Value": v} for k, v in sorted(tags.items())],
        )["TableDescription"]
        dynamodb.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
        changes.append(f"created lock table {table}")
    if description.get("KeySchema") != [{"AttributeName": LOCK_KEY, "KeyType": "HASH"}]:
        raise RuntimeError(f"table {table} exists but is not keyed on {LOCK_KEY}: it is not a Terraform lock table")
    # AWS leaves BillingModeSummary out for a table that was always provisioned: its capacity says so then
    provisioned = description.get("ProvisionedThroughput", {}).get("ReadCapacityUnits", 0) > 0
    billing = description.get("BillingModeSummary", {}).get("BillingMode")
    if (billing or ("PROVISIONED" if provisioned else "PAY_PER_REQUEST")) != "PAY_PER_REQUEST":
        dynamodb.update_table(TableName=table, BillingMode="PAY_PER_REQUEST")
        changes.append("switched the lock table to on-demand")
    backups = dynamodb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
    if backups.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus") != "ENABLED":
        _enable_pitr(dynamodb, table)
        changes.append("enabled point-in-time recovery")


def _enable_pitr(dynamodb: Any, table: str, attempts: int = 12, pause: float = 5.0) -> None:
    """Turn PITR on; right after a table is created DynamoDB may answer ContinuousBackupsUnavailableException
    ("backups are being enabled") for a while, so that answer is waited out."""
    for attempt in range(attempts):
        try:
            dynamodb.update_continuous_backups(
                TableName=table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
            )
            return
        except ClientError as error:
            if _code(error) != "ContinuousBackupsUnavailableException" or attempt == attempts - 1:
                raise
            time.sleep(pause)


def bootstrap_region(deployment: Deployment, region: str) -> BootstrapResult:
    """Create or confirm the state bucket and lock table of ``region``, with clients of that region only."""
    names = deployment.config.names(region)
    result = BootstrapResult(region, names.state_bucket, names.lock_table)
    tags = {**deployment.config.tags(region), "Purpose": "terraform-state"}
    _ensure_bucket(deployment.client("s3", region), region, names.state_bucket, tags, result.changes)
    _ensure_lock_table(deployment.client("dynamodb", region), names.lock_table, tags, result.changes)
    return result


def bootstrap(deployment: Deployment, out: Callable[[str], None] = print) -> list[BootstrapResult]:
    """Every region of ``deployment``, one after the other (each takes seconds)."""
    results = []
    for region in deployment.regions:
        result = bootstrap_region(deployment, region)
        what = "; ".join(result.changes) if result.changes else "already in place, nothing changed"
        out(f"  [{region}] s3://{result.bucket} + {result.table}: {what}")
        results.append(result)
    return results
