"""The stack's own AWS provider (its region only) and the account facts the policies need."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.data_aws_partition import DataAwsPartition
from cdktf_cdktf_provider_aws.provider import AwsProvider, AwsProviderDefaultTags, AwsProviderEndpoints
from constructs import Construct

#: Services the stacks use; with ``local_endpoint`` set, all of them point at the local AWS endpoint.
LOCAL_ENDPOINT_SERVICES = (
    "athena", "cloudwatch", "cloudwatchevents", "cloudwatchlogs", "dynamodb", "ec2", "glue", "iam", "kms", "lambda_",
    "s3", "sns", "sqs", "sts",
)  # fmt: skip


@dataclass(frozen=True)
class AccountFacts:
    """Tokens resolved by Terraform at plan time (partition, account id)."""

    partition: str
    account_id: str


def regional_provider(
    scope: Construct, *, region: str, tags: dict[str, str], local_endpoint: str | None, account_id: str
) -> AccountFacts:
    """Declare the one AWS provider of ``scope`` (pinned to ``region``, allowed to act in ``account_id`` only: the
    names carry that account, and credentials of another account fail before any change) and the account
    data sources.

    The provider and data sources sit directly in the stack's scope, so their logical ids stay ``aws``,
    ``partition`` and ``account``.
    """
    AwsProvider(
        scope,
        "aws",
        region=region,
        allowed_account_ids=[account_id],
        default_tags=[AwsProviderDefaultTags(tags=tags)],
        **_local_endpoint_settings(local_endpoint),
    )
    return AccountFacts(
        partition=DataAwsPartition(scope, "partition").partition,
        account_id=DataAwsCallerIdentity(scope, "account").account_id,
    )


def _local_endpoint_settings(endpoint: str | None) -> dict[str, Any]:
    if endpoint is None:
        return {}
    return {
        "access_key": "test",
        "secret_key": "test",
        "skip_credentials_validation": True,
        "skip_metadata_api_check": "true",
        "skip_region_validation": True,
        "s3_use_path_style": True,
        "endpoints": [AwsProviderEndpoints(**dict.fromkeys(LOCAL_ENDPOINT_SERVICES, endpoint))],
    }
