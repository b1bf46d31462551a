"""The network's flow logs: every packet's record to a log group of its own, through a role only VPC Flow Logs of
this account may assume."""

from __future__ import annotations

from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.flow_log import FlowLog
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.vpc import Vpc
from constructs import Construct

from analytics_platform.infra import iam


def flow_logs(
    scope: Construct, *, vpc: Vpc, account_id: str, log_group_name: str, role_name: str, log_retention_days: int,
    kms_key_arn: str | None,
) -> CloudwatchLogGroup:  # fmt: skip
    """The log group, the role writing to it and the VPC's flow log, created in ``scope``; returns the log group."""
    log_group = CloudwatchLogGroup(
        scope, "flow-log-group", name=log_group_name, retention_in_days=log_retention_days,
        kms_key_id=kms_key_arn,
    )  # fmt: skip
    flow_role = IamRole(
        scope,
        "flow-log-role",
        name=role_name,
        # Confused deputy: the service assumes the role only for flow logs of this account.
        assume_role_policy=iam.assume_role_document("vpc-flow-logs.amazonaws.com", source_account=account_id),
    )
    IamRolePolicy(
        scope,
        "flow-log-policy",
        name="write-flow-logs",
        role=flow_role.id,
        policy=iam.policy_document([iam.write_own_logs(log_group.arn, actions=iam.FLOW_LOGS_WRITE_ACTIONS)]),
    )
    FlowLog(
        scope,
        "flow-log",
        vpc_id=vpc.id,
        traffic_type="ALL",
        log_destination_type="cloud-watch-logs",
        log_destination=log_group.arn,
        iam_role_arn=flow_role.arn,
        max_aggregation_interval=60,
    )
    return log_group
