"""The region's customer-managed KMS key (``encryption = "kms"``): one key, its alias and its key policy.

The other constructs receive the key's ARN as an optional ``kms_key_arn``; without it they keep the default
encryption (SSE-S3, AWS-owned keys, SQS-managed SSE). The key policy names nothing outside this region and
account: the account may administer the key, and use it only through the services that hold this region's
data; the three services that call KMS as themselves (CloudWatch Logs, CloudWatch alarms, EventBridge) are
named with the conditions AWS documents for them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from cdktf_cdktf_provider_aws.kms_alias import KmsAlias
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from constructs import Construct

#: The shortest window AWS allows: every resource must be destroyable for test environments, and a key in
#: its waiting period is a key that has not gone yet.
DELETION_WINDOW_DAYS = 7
#: The longest window AWS allows, for ``deletion_protection``: a key scheduled for deletion by mistake can be
#: recovered (``CancelKeyDeletion``) for 30 days, and everything it encrypted with it.
PROTECTED_DELETION_WINDOW_DAYS = 30


def key_deletion_window_days(deletion_protection: bool) -> int:
    """The waiting period of a key before KMS deletes it: 30 days with ``deletion_protection``, else 7."""
    return PROTECTED_DELETION_WINDOW_DAYS if deletion_protection else DELETION_WINDOW_DAYS


#: Services whose encryption at rest calls KMS with the caller's own credentials (``kms:ViaService``); Lambda
#: for the function's environment variables.
VIA_SERVICES = ("s3", "dynamodb", "sqs", "sns", "lambda")
#: What the account may do to the key (the key administrators' actions of AWS's default key policy). No
#: cryptographic operation and no ``CreateGrant``: those only through :data:`VIA_SERVICES`.
ADMIN_ACTIONS = (
    "kms:CancelKeyDeletion", "kms:CreateAlias", "kms:DeleteAlias", "kms:Describe*", "kms:Disable*",
    "kms:Enable*", "kms:Get*", "kms:List*", "kms:Put*", "kms:RevokeGrant", "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion", "kms:TagResource", "kms:UntagResource", "kms:Update*",
)  # fmt: skip
#: S3 (SSE-KMS), DynamoDB and Lambda (which also create grants for the table and the function), SQS and SNS on
#: a caller's behalf.
SERVICE_USE_ACTIONS = (
    "kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*",
)  # fmt: skip
#: CloudWatch Logs' documented actions for an encrypted log group.
LOGS_ACTIONS = ("kms:Decrypt*", "kms:Describe*", "kms:Encrypt*", "kms:GenerateDataKey*", "kms:ReEncrypt*")


def region_key_policy(
    *,
    partition: str,
    region: str,
    account_id: str,
    log_group_names: Sequence[str],
    alarm_name_pattern: str,
) -> dict[str, Any]:
    """The key policy of one region's key: the account's statements, then the services'.

    In a key policy ``Resource: "*"`` means "this key"; it is the only value AWS accepts there.
    """
    log_group_arns = [f"arn:{partition}:logs:{region}:{account_id}:log-group:{name}" for name in log_group_names]
    return {
        "Version": "2012-10-17",
        "Statement": [
            *_account_statements(partition=partition, region=region, account_id=account_id),
            *_service_statements(
                partition=partition, region=region, account_id=account_id, log_group_arns=log_group_arns,
                alarm_name_pattern=alarm_name_pattern,
            ),
        ],
    }  # fmt: skip


def _account_statements(*, partition: str, region: str, account_id: str) -> list[dict[str, Any]]:
    """The account administers the key, and uses it only through the region's services (:data:`VIA_SERVICES`)."""
    account_root = f"arn:{partition}:iam::{account_id}:root"
    return [
        {
            "Sid": "AccountAdministersKey",
            "Effect": "Allow",
            "Principal": {"AWS": account_root},
            "Action": list(ADMIN_ACTIONS),
            "Resource": "*",
        },
        {
            "Sid": "AccountUsesKeyThroughRegionServices",
            "Effect": "Allow",
            "Principal": {"AWS": account_root},
            "Action": list(SERVICE_USE_ACTIONS),
            "Resource": "*",
            "Condition": {
                "StringEquals": {
                    "kms:CallerAccount": account_id,
                    "kms:ViaService": [f"{service}.{region}.amazonaws.com" for service in VIA_SERVICES],
                }
            },
        },
    ]


def _service_statements(
    *, partition: str, region: str, account_id: str, log_group_arns: Sequence[str], alarm_name_pattern: str
) -> list[dict[str, Any]]:
    """The services that call KMS as themselves: CloudWatch Logs, CloudWatch alarms and EventBridge."""
    return [
        {
            "Sid": "CloudWatchLogsEncryptsOwnLogGroups",
            "Effect": "Allow",
            "Principal": {"Service": f"logs.{region}.amazonaws.com"},
            "Action": list(LOGS_ACTIONS),
            "Resource": "*",
            "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": log_group_arns}},
        },
        {
            "Sid": "CloudWatchAlarmsPublishToEncryptedTopic",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": "*",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": account_id},
                "ArnLike": {
                    "aws:SourceArn": f"arn:{partition}:cloudwatch:{region}:{account_id}:alarm:{alarm_name_pattern}"
                },
            },
        },
        {
            # The SQS developer guide's key policy for EventBridge as an event source names the service
            # principal without a condition: the confused-deputy keys AWS documents for EventBridge
            # (aws:SourceArn, aws:SourceAccount) belong to event-bus encryption, and a condition on a key the
            # delivery request does not carry would drop every upload event. The queue policy admits only
            # this region's upload rule, so only that rule's deliveries reach a queue under this key.
            "Sid": "EventBridgeSendsToEncryptedQueue",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": "*",
        },
    ]


class RegionKey(Construct):
    """One customer-managed key (rotation on) and its alias. Exposes ``key``, ``alias`` and ``arn``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        region: str,
        partition: str,
        account_id: str,
        alias_name: str,
        log_group_names: Sequence[str],
        alarm_name_pattern: str,
        deletion_window_days: int = DELETION_WINDOW_DAYS,
    ) -> None:
        """``deletion_window_days``: KMS's waiting period after a destroy (by default 7); ``log_group_names``: the
        log groups CloudWatch Logs may encrypt with the key; ``alarm_name_pattern``:
        the alarms (``*`` wildcard) that may publish to a topic under the key."""
        super().__init__(scope, construct_id)
        policy = region_key_policy(
            partition=partition,
            region=region,
            account_id=account_id,
            log_group_names=log_group_names,
            alarm_name_pattern=alarm_name_pattern,
        )
        self.key = KmsKey(
            self,
            "key",
            description=f"Encrypts the analytics data, jobs, logs, queues, alarms and worker settings of {region}",
            enable_key_rotation=True,
            deletion_window_in_days=deletion_window_days,
            policy=json.dumps(policy),
        )
        self.alias = KmsAlias(self, "alias", name=alias_name, target_key_id=self.key.key_id)

    @property
    def arn(self) -> str:
        """The key's ARN (a Terraform token)."""
        return self.key.arn
