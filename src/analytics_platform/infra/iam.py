"""IAM policy statements built from named action bundles, each scoped to exact resource ARNs.

Modelled on aws-cdk-lib's ``perms.ts`` files: a bundle names the actions one kind of access needs, and
a grant pairs a bundle with the ARNs it may touch. Nothing here imports cdktf: ARNs may be plain strings
or Terraform tokens, and the result is a plain policy document.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# --- action bundles -------------------------------------------------------------------------------
S3_READ_OBJECT_ACTIONS = ("s3:GetObject", "s3:GetObjectVersion")
#: Reads of an object's current version only: S3 checks ``s3:GetObjectVersion`` only for a request that names a
#: ``versionId`` (GetObject, HeadObject, a CopyObject source), and the worker names none for its own outputs.
S3_READ_CURRENT_OBJECT_ACTIONS = ("s3:GetObject",)
S3_WRITE_OBJECT_ACTIONS = ("s3:PutObject", "s3:AbortMultipartUpload")
#: Without it S3 answers 403 (not 404) for a key or version that does not exist, and a deleted upload would
#: look like a permission problem and be retried into the DLQ.
S3_LIST_BUCKET_ACTIONS = ("s3:ListBucket",)
#: The worker orders a key's versions (latest version wins) by listing them.
S3_LIST_VERSIONS_ACTIONS = ("s3:ListBucketVersions",)
#: The worker retires the Parquet of a superseded or deleted version (bucket versioning keeps it recoverable) and
#: removes a staged Parquet once promoted.
S3_DELETE_OBJECT_ACTIONS = ("s3:DeleteObject",)
#: Job state events on the region's default bus.
EVENTS_PUT_ACTIONS = ("events:PutEvents",)
#: Create and evolve tables in one Glue database (Glue checks the catalog, the database and the table).
GLUE_TABLE_WRITE_ACTIONS = ("glue:GetTable", "glue:CreateTable", "glue:UpdateTable")
SQS_INSPECT_DLQ_ACTIONS = ("sqs:ReceiveMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes")
#: ConditionCheckItem: a job ends SUCCEEDED in a transaction that checks its key's latest-version item.
DYNAMODB_JOB_WRITE_ACTIONS = (
    "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem",
)  # fmt: skip
SQS_CONSUME_ACTIONS = (
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:ChangeMessageVisibility",
)
LOGS_WRITE_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")
FLOW_LOGS_WRITE_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams")
ENI_MANAGE_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
)
ENI_DESCRIBE_ACTIONS = ("ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups")
XRAY_WRITE_ACTIONS = ("xray:PutTraceSegments", "xray:PutTelemetryRecords")
#: With ``encryption = "kms"``: S3 (SSE-KMS reads and writes) and SQS (receiving from encrypted queues) call
#: KMS with the worker's credentials. Exact actions, no ``GenerateDataKey*``: the worker never needs the
#: ``WithoutPlaintext`` or key-pair variants.
KMS_DATA_KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")

#: The only statements allowed to use ``Resource: "*"`` or a resource-id wildcard, each with its reason.
#: ``tap check`` and the unit tests read this list; anything else with a wildcard is a finding.
WILDCARD_ALLOW_LIST: Mapping[str, str] = {
    "AllowEniDescribe": (
        "ec2:Describe* calls support no resource-level permissions; AWS requires Resource '*' for the "
        "network-interface lookups Lambda makes when it attaches the function to the VPC"
    ),
    "AllowXRayWrite": (
        "xray:PutTraceSegments and PutTelemetryRecords support no resource-level permissions; active "
        "tracing (spec: X-Ray active) cannot work without them"
    ),
    "AllowEniManage": (
        "the network interface does not exist before Lambda creates it, so its ARN is only known as "
        "network-interface/*; the statement is pinned to this region, this account and this VPC by condition"
    ),
    "WriteOwnCatalogTables": (
        "a dataset's table is created by the worker when the dataset's first file succeeds, so its name is only "
        "known as table/<database>/*; the ARN is pinned to this region's one database"
    ),
    "ReadOwnCatalog": (
        "the query role reads the tables the worker creates per dataset, so their names are only known as "
        "table/<database>/*; the ARN is pinned to this region's one database (infra/query_access.py)"
    ),
    "AllowOwnLogStreams": (
        "Lambda and flow logs name their log streams at run time; the ARN is pinned to one exact log group"
    ),
}


@dataclass(frozen=True)
class Statement:
    """One ``Allow`` statement with a stable ``Sid``."""

    sid: str
    actions: Sequence[str]
    resources: Sequence[str]
    condition: Mapping[str, Any] | None = None

    def render(self) -> dict[str, Any]:
        """The statement as it appears in a policy document."""
        body: dict[str, Any] = {
            "Sid": self.sid,
            "Effect": "Allow",
            "Action": sorted(self.actions),
            "Resource": list(self.resources),
        }
        if self.condition:
            body["Condition"] = dict(self.condition)
        return body


def policy_document(statements: Iterable[Statement]) -> str:
    """A JSON policy document; Terraform tokens inside ARNs stay interpolations."""
    return json.dumps({"Version": "2012-10-17", "Statement": [s.render() for s in statements]}, indent=2)


def deny_insecure_transport_policy(bucket_arn: str) -> dict[str, Any]:
    """A bucket policy denying every request to the bucket (``bucket_arn``) and its objects that is not over TLS.

    ``bucket_arn`` is the data bucket's Terraform token or, for the state bucket ``tap bootstrap`` puts in place, the
    ARN in its region's partition (:func:`analytics_platform.etl.arns.s3_bucket_arn`); a plain dict, so the stack can
    render it with its tokens and bootstrap can compare it with the bucket's policy.
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket_arn, f"{bucket_arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


def assume_role_document(service: str, source_account: str | None = None) -> str:
    """Trust policy letting one AWS service principal assume the role."""
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if source_account is not None:
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": source_account}}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]}, indent=2)


# --- grants ---------------------------------------------------------------------------------------
def read_objects(bucket_arn: str, prefix: str) -> Statement:
    """Read object versions under one key prefix of one bucket."""
    return Statement("ReadRawObjects", S3_READ_OBJECT_ACTIONS, [f"{bucket_arn}/{prefix}*"])


def read_outputs(bucket_arn: str, prefixes: Sequence[str]) -> Statement:
    """Read the worker's own outputs: a staged Parquet to promote (copy), a promoted one to reconcile (head); always
    the current version, so no ``s3:GetObjectVersion``."""
    return Statement("ReadOwnOutputs", S3_READ_CURRENT_OBJECT_ACTIONS, [f"{bucket_arn}/{p}*" for p in prefixes])


def put_job_events(*, partition: str, region: str, account_id: str, source: str) -> Statement:
    """Put events of one ``source`` on this region's default bus, and nowhere else."""
    return Statement(
        "PutJobStateEvents", EVENTS_PUT_ACTIONS, [f"arn:{partition}:events:{region}:{account_id}:event-bus/default"],
        condition={"StringEquals": {"events:source": [source]}},
    )  # fmt: skip


def write_objects(bucket_arn: str, prefixes: Sequence[str]) -> Statement:
    """Write objects (and abort the worker's own multipart uploads) under the given key prefixes of one bucket."""
    return Statement("WriteResultObjects", S3_WRITE_OBJECT_ACTIONS, [f"{bucket_arn}/{p}*" for p in prefixes])


def list_bucket(bucket_arn: str) -> Statement:
    """List keys of one bucket: what S3 needs to answer 404 for a deleted upload instead of 403.

    No ``s3:prefix`` condition: S3 checks this permission for a GetObject of a missing key, a request that
    carries no ``s3:prefix`` key, and a condition on an absent key never matches (403 again).
    """
    return Statement("ListOwnBucket", S3_LIST_BUCKET_ACTIONS, [bucket_arn])


def list_versions(bucket_arn: str, prefix: str) -> Statement:
    """List the versions of keys under one prefix (``s3:prefix`` is part of every such listing request)."""
    return Statement(
        "ListRawVersions",
        S3_LIST_VERSIONS_ACTIONS,
        [bucket_arn],
        condition={"StringLike": {"s3:prefix": [f"{prefix}*"]}},
    )


def retire_objects(bucket_arn: str, prefixes: Sequence[str]) -> Statement:
    """Delete (with versioning: hide behind a delete marker) objects under the given prefixes."""
    return Statement("RetireSupersededOutputs", S3_DELETE_OBJECT_ACTIONS, [f"{bucket_arn}/{p}*" for p in prefixes])


def write_catalog_tables(*, partition: str, region: str, account_id: str, database: str) -> Statement:
    """Create and update the tables of exactly one Glue database (no other database, no deletes)."""
    base = f"arn:{partition}:glue:{region}:{account_id}"
    return Statement(
        "WriteOwnCatalogTables",
        GLUE_TABLE_WRITE_ACTIONS,
        [f"{base}:catalog", f"{base}:database/{database}", f"{base}:table/{database}/*"],
    )


def inspect_dead_letters(dlq_arn: str) -> Statement:
    """Read (never delete) the dead-letter queue's messages, for the dead-letter sweep."""
    return Statement("InspectDeadLetters", SQS_INSPECT_DLQ_ACTIONS, [dlq_arn])


def write_jobs(table_arn: str) -> Statement:
    """Create and update job records in one table (no scans, no deletes)."""
    return Statement("WriteJobRecords", DYNAMODB_JOB_WRITE_ACTIONS, [table_arn])


def query_job_index(table_arn: str, index: str) -> Statement:
    """Query one index of the job table (the reconciliation reads the SUCCEEDED jobs; never a scan)."""
    return Statement("QueryJobStatusIndex", ("dynamodb:Query",), [f"{table_arn}/index/{index}"])


def consume_queue(queue_arn: str) -> Statement:
    """What the Lambda event source mapping needs to consume one queue."""
    return Statement("ConsumeQueue", SQS_CONSUME_ACTIONS, [queue_arn])


def write_own_logs(
    log_group_arn: str, sid: str = "AllowOwnLogStreams", actions: Sequence[str] = LOGS_WRITE_ACTIONS
) -> Statement:
    """Write log streams of one exact log group."""
    return Statement(sid, actions, [f"{log_group_arn}:log-stream:*"])


def describe_network_interfaces() -> Statement:
    """Describe calls AWS cannot scope (allow-listed)."""
    return Statement("AllowEniDescribe", ENI_DESCRIBE_ACTIONS, ["*"])


def manage_network_interfaces(
    *,
    partition: str,
    region: str,
    account_id: str,
    vpc_arn: str,
    subnet_arns: Sequence[str],
    security_group_arn: str,
) -> Statement:
    """Create / delete the function's network interfaces in this VPC only."""
    eni_arn = f"arn:{partition}:ec2:{region}:{account_id}:network-interface/*"
    return Statement(
        "AllowEniManage",
        ENI_MANAGE_ACTIONS,
        [eni_arn, *subnet_arns, security_group_arn],
        # No aws:RequestedRegion condition: the ARNs already fix the region, and Lambda's own check of the role
        # (before CreateFunction) is evaluated without that key, so the condition would refuse the function.
        condition={"ArnEqualsIfExists": {"ec2:Vpc": vpc_arn}},
    )


def use_data_key(key_arn: str) -> Statement:
    """Decrypt and generate data keys with exactly one KMS key (the region's key in ``kms`` mode)."""
    return Statement("UseRegionKey", KMS_DATA_KEY_ACTIONS, [key_arn])


def write_traces() -> Statement:
    """X-Ray segment upload (allow-listed: no resource-level permissions exist)."""
    return Statement("AllowXRayWrite", XRAY_WRITE_ACTIONS, ["*"])
