"""The query boundary on AWS: who may assume a region's query role, and what the role may do.

The role may run queries in the region's Athena workgroup only, read the region's one Glue database (catalog,
database, its tables and partitions), read ``processed/`` of the region's bucket and read and write the
workgroup's results under ``athena-results/``; with ``encryption = "kms"`` also use the region's key, through
S3 in this region only. Nothing else: no other prefix (``raw/``, ``quarantine/``), no other database, workgroup,
bucket or region, no writes to data or catalog. Its trust policy admits the account (administrators then grant
``sts:AssumeRole`` on the role to whom they choose) and, optionally, the principals of ``query_principals``.

Plain Python like :mod:`.iam` (ARNs may be Terraform tokens), so the local endpoint's tests can build the exact
same policy with literal ARNs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from analytics_platform.etl.arns import partition_of
from analytics_platform.etl.settings import ATHENA_RESULTS_PREFIX, PROCESSED_PREFIX
from analytics_platform.infra.iam import Statement

# --- action bundles -------------------------------------------------------------------------------
#: Run a query in one workgroup and read its state and results (Athena checks the workgroup ARN). No listing of
#: the workgroup's history, no saved or prepared statements, no workgroup changes.
ATHENA_QUERY_ACTIONS = (
    "athena:StartQueryExecution", "athena:StopQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults",
    "athena:GetWorkGroup",
)  # fmt: skip
#: What Athena reads from the Glue Data Catalog with the caller's credentials to plan a query (Glue checks the
#: catalog, the database and the table).
GLUE_CATALOG_READ_ACTIONS = (
    "glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:GetPartition", "glue:GetPartitions",
    "glue:BatchGetPartition",
)  # fmt: skip
#: Athena writes a query's results as the caller (large ones in parts) and reads them back for GetQueryResults.
S3_QUERY_RESULTS_ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload")
#: Athena asks the region of the results bucket before it writes there.
S3_LOCATE_BUCKET_ACTIONS = ("s3:GetBucketLocation",)
#: S3 calls KMS with the caller's credentials for SSE-KMS reads (Decrypt) and writes (GenerateDataKey).
KMS_THROUGH_S3_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")

#: An IAM role or user of some account (``query_principals``): partition, account, ``role/...`` or ``user/...``.
PRINCIPAL_ARN = re.compile(
    r"^arn:(aws[a-z-]*):iam::(\d{12}):((?:role|user)/(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64})$", re.ASCII
)
#: An IAM role of some account (``tap query --role-arn``).
ROLE_ARN = re.compile(r"^arn:(aws[a-z-]*):iam::(\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]{1,64})$", re.ASCII)


# --- grants ---------------------------------------------------------------------------------------
def run_queries(workgroup_arn: str) -> Statement:
    """Run and read queries in exactly one workgroup."""
    return Statement("RunQueriesInOwnWorkgroup", ATHENA_QUERY_ACTIONS, [workgroup_arn])


def read_catalog(*, partition: str, region: str, account_id: str, database: str) -> Statement:
    """Read the tables and partitions of exactly one Glue database (no other database, no writes)."""
    base = f"arn:{partition}:glue:{region}:{account_id}"
    return Statement(
        "ReadOwnCatalog",
        GLUE_CATALOG_READ_ACTIONS,
        [f"{base}:catalog", f"{base}:database/{database}", f"{base}:table/{database}/*"],
    )


def query_statements(
    *,
    partition: str,
    region: str,
    account_id: str,
    database: str,
    workgroup_arn: str,
    bucket_arn: str,
    kms_key_arn: str | None = None,
) -> list[Statement]:
    """Every grant of a region's query role (see the module's docstring)."""
    results = f"{bucket_arn}/{ATHENA_RESULTS_PREFIX}*"
    statements = [
        run_queries(workgroup_arn),
        read_catalog(partition=partition, region=region, account_id=account_id, database=database),
        Statement("ReadProcessedObjects", ("s3:GetObject",), [f"{bucket_arn}/{PROCESSED_PREFIX}*"]),
        Statement("ReadWriteQueryResults", S3_QUERY_RESULTS_ACTIONS, [results]),
        # Listing names keys without reading them, but raw/ and quarantine/ keys name uploads: only the two
        # prefixes a query reads (Athena lists a table's location, and its results prefix).
        Statement(
            "ListQueryPrefixes",
            ("s3:ListBucket",),
            [bucket_arn],
            condition={"StringLike": {"s3:prefix": [f"{PROCESSED_PREFIX}*", f"{ATHENA_RESULTS_PREFIX}*"]}},
        ),
        Statement("LocateOwnBucket", S3_LOCATE_BUCKET_ACTIONS, [bucket_arn]),
    ]
    if kms_key_arn:
        statements.append(
            Statement(
                "UseRegionKeyThroughS3",
                KMS_THROUGH_S3_ACTIONS,
                [kms_key_arn],
                condition={"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
            )
        )
    return statements


def principal_arn(arn: str, *, partition: str, account_id: str) -> str:
    """``arn`` (a validated :data:`PRINCIPAL_ARN` of the stack's account) written with the stack's partition and
    account, as every other ARN of the stacks is (they may be Terraform tokens)."""
    match = PRINCIPAL_ARN.fullmatch(arn)
    if match is None:
        raise ValueError(f"{arn!r} is not the ARN of an IAM role or user")
    return f"arn:{partition}:iam::{account_id}:{match.group(3)}"


def trust_document(*, partition: str, account_id: str, principals: Iterable[str] = ()) -> str:
    """Trust policy of a query role: the account (whose administrators grant ``sts:AssumeRole`` on the role with
    identity policies) and, when given, these principals outright (``principals``: validated ARNs)."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": "AccountMayGrantAssumeRole",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
            "Action": "sts:AssumeRole",
        }
    ]
    named = [principal_arn(arn, partition=partition, account_id=account_id) for arn in principals]
    if named:
        statements.append(
            {"Sid": "QueryPrincipals", "Effect": "Allow", "Principal": {"AWS": named}, "Action": "sts:AssumeRole"}
        )
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, indent=2)


def principal_problems(
    principals: Sequence[str], *, account_id: str | None, regions: Sequence[str], known_regions: Iterable[str]
) -> list[tuple[str, str]]:
    """``(field, message)`` for each way ``query_principals`` is invalid (see the README's configuration table)."""
    if not principals:
        return []
    problems: list[tuple[str, str]] = []
    if account_id is None:
        problems.append(("query_principals", "needs account_id: each principal must be of the environment's account"))
    partitions = {partition_of(region) for region in regions}
    for index, arn in enumerate(principals):
        where = f"query_principals[{index}]"
        match = PRINCIPAL_ARN.fullmatch(arn) if isinstance(arn, str) else None
        if match is None:
            problems.append((where, f"{arn!r} is not the ARN of an IAM role or user (arn:<partition>:iam::<account>:"
                             "role/<name> or user/<name>)"))  # fmt: skip
            continue
        if account_id is not None and match.group(2) != account_id:
            problems.append((where, f"{arn} is of account {match.group(2)}, not the environment's {account_id}"))
        if match.group(1) not in partitions:
            problems.append(
                (where, f"{arn} is in partition {match.group(1)}; the regions are in {', '.join(partitions)}")
            )
        named = sorted(region for region in known_regions if region in arn)
        if named:
            problems.append(
                (where, f"{arn} names region {named[0]}: every region's stack would carry it, against the residency "
                 "rule; grant sts:AssumeRole on the query roles in that principal's own policy instead (an IAM "
                 "Identity Center permission set, say)")
            )  # fmt: skip
    named_twice = [arn for arn in principals if isinstance(arn, str) and principals.count(arn) > 1]
    if named_twice:
        problems.append(("query_principals", "lists a principal twice"))
    return problems
