"""The region's query role: what a person assumes to query this region, and nothing more (IAM is the hard
boundary ``tap query``'s guard only explains; README: Query boundary)."""

from __future__ import annotations

from collections.abc import Sequence

from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from constructs import Construct

from analytics_platform.infra import iam, query_access

#: One hour: a query session, not a standing credential.
MAX_SESSION_SECONDS = 3600


class QueryRole(Construct):
    """The role (trusted by the account and ``principals``) and its one inline policy. Exposes ``role`` and
    ``policy``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        role_name: str,
        partition: str,
        region: str,
        account_id: str,
        database_name: str,
        workgroup_arn: str,
        bucket_arn: str,
        kms_key_arn: str | None = None,
        principals: Sequence[str] = (),
    ) -> None:
        """``kms_key_arn``: the region's key, usable through S3 only (by default none: SSE-S3); ``principals``:
        IAM roles and users trusted outright, besides the account (by default none)."""
        super().__init__(scope, construct_id)
        self.role = IamRole(
            self,
            "role",
            name=role_name,
            description=f"Queries {region}'s datasets: its Athena workgroup, Glue database and processed data only",
            assume_role_policy=query_access.trust_document(
                partition=partition, account_id=account_id, principals=principals
            ),
            max_session_duration=MAX_SESSION_SECONDS,
        )
        statements = query_access.query_statements(
            partition=partition, region=region, account_id=account_id, database=database_name,
            workgroup_arn=workgroup_arn, bucket_arn=bucket_arn, kms_key_arn=kms_key_arn,
        )  # fmt: skip
        self.policy = IamRolePolicy(
            self, "policy", name="query-region", role=self.role.id, policy=iam.policy_document(statements)
        )
