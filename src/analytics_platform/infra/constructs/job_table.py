"""The regional DynamoDB job table: on-demand, PITR, encrypted, two GSIs for time-range queries."""

from __future__ import annotations

from cdktf_cdktf_provider_aws.dynamodb_table import (
    DynamodbTable,
    DynamodbTableAttribute,
    DynamodbTableGlobalSecondaryIndex,
    DynamodbTablePointInTimeRecovery,
    DynamodbTableServerSideEncryption,
)
from constructs import Construct

# The key and index names are the worker's own, defined once in the job model.
from analytics_platform.etl.job_values import DAY_INDEX, DAY_INDEX_KEYS, STATUS_INDEX, STATUS_INDEX_KEYS
from analytics_platform.etl.job_values import JOB_KEY as PARTITION_KEY

__all__ = ["DAY_INDEX", "DAY_INDEX_KEYS", "PARTITION_KEY", "STATUS_INDEX", "STATUS_INDEX_KEYS", "JobTable"]


class JobTable(Construct):
    """One record per job, keyed by ``job_id``; query by day + time or by status + time.

    Exposes ``table``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        table_name: str,
        deletion_protection: bool = False,
        kms_key_arn: str | None = None,
    ) -> None:
        """``deletion_protection``: DynamoDB refuses to delete the table (by default off: every resource of a test
        environment must be destroyable); ``kms_key_arn``: encrypt with this customer-managed key (by default
        DynamoDB's AWS-owned key)."""
        super().__init__(scope, construct_id)
        attributes = sorted({PARTITION_KEY, *DAY_INDEX_KEYS, *STATUS_INDEX_KEYS})
        self.table = DynamodbTable(
            self,
            "table",
            name=table_name,
            billing_mode="PAY_PER_REQUEST",
            hash_key=PARTITION_KEY,
            attribute=[DynamodbTableAttribute(name=name, type="S") for name in attributes],
            global_secondary_index=[
                DynamodbTableGlobalSecondaryIndex(
                    name=DAY_INDEX,
                    hash_key=DAY_INDEX_KEYS[0],
                    range_key=DAY_INDEX_KEYS[1],
                    projection_type="ALL",
                ),
                DynamodbTableGlobalSecondaryIndex(
                    name=STATUS_INDEX,
                    hash_key=STATUS_INDEX_KEYS[0],
                    range_key=STATUS_INDEX_KEYS[1],
                    projection_type="ALL",
                ),
            ],
            point_in_time_recovery=DynamodbTablePointInTimeRecovery(enabled=True),
            server_side_encryption=DynamodbTableServerSideEncryption(enabled=True, kms_key_arn=kms_key_arn),
            deletion_protection_enabled=deletion_protection,
        )
