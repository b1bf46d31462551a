"""The ETL worker function: packaged by the project, in the private subnets, fed by the work queue."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from cdktf import AssetType, TerraformAsset
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.lambda_event_source_mapping import (
    LambdaEventSourceMapping,
    LambdaEventSourceMappingScalingConfig,
)
from cdktf_cdktf_provider_aws.lambda_function import (
    LambdaFunction,
    LambdaFunctionEnvironment,
    LambdaFunctionEphemeralStorage,
    LambdaFunctionLoggingConfig,
    LambdaFunctionTracingConfig,
    LambdaFunctionVpcConfig,
)
from constructs import Construct

from analytics_platform.infra import iam

HANDLER = "analytics_platform.etl.handler.lambda_handler"
RUNTIME = "python3.11"


class EtlFunction(Construct):
    """Log group (created first), least-privilege role, function and SQS event source mapping.

    Exposes ``function``, ``role``, ``log_group`` and ``event_source_mapping``.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, function_name: str, role_name: str, log_group_name: str,
        package_path: Path, package_hash: str, architecture: str, memory_mb: int, timeout_seconds: int,
        ephemeral_storage_mb: int, reserved_concurrency: int, maximum_concurrency: int, batch_size: int,
        log_retention_days: int, environment: Mapping[str, str], subnet_ids: Sequence[str],
        security_group_ids: Sequence[str], policy_statements: Sequence[iam.Statement], queue_arn: str,
        kms_key_arn: str | None = None,
    ) -> None:  # fmt: skip
        """``maximum_concurrency``: at most this many concurrent invocations from the queue (the trigger's
        ``scaling_config``); ``kms_key_arn``: encrypt the log group and the environment variables with this key (by
        default CloudWatch Logs' and Lambda's own keys)."""
        super().__init__(scope, construct_id)
        self.log_group = CloudwatchLogGroup(
            self, "log-group", name=log_group_name, retention_in_days=log_retention_days, kms_key_id=kms_key_arn
        )
        self.role, self.policy = self._role(role_name, [*policy_statements, iam.write_own_logs(self.log_group.arn)])
        asset = TerraformAsset(self, "package", path=str(package_path), type=AssetType.FILE)
        self.function = LambdaFunction(
            self,
            "function",
            function_name=function_name,
            role=self.role.arn,
            runtime=RUNTIME,
            handler=HANDLER,
            architectures=[architecture],
            filename=asset.path,
            source_code_hash=package_hash,
            memory_size=memory_mb,
            timeout=timeout_seconds,
            ephemeral_storage=LambdaFunctionEphemeralStorage(size=ephemeral_storage_mb),
            reserved_concurrent_executions=reserved_concurrency,
            environment=LambdaFunctionEnvironment(variables=dict(environment)),
            kms_key_arn=kms_key_arn,
            vpc_config=LambdaFunctionVpcConfig(
                subnet_ids=list(subnet_ids), security_group_ids=list(security_group_ids)
            ),
            tracing_config=LambdaFunctionTracingConfig(mode="Active"),
            logging_config=LambdaFunctionLoggingConfig(log_format="Text", log_group=self.log_group.name),
            # The log group must exist (with its retention) before the first invocation writes to it,
            # and the role's policy before the event source mapping validates the queue permissions.
            depends_on=[self.log_group, self.policy],
        )
        self.event_source_mapping = self._queue_trigger(queue_arn, batch_size, maximum_concurrency)

    def _role(self, role_name: str, statements: Sequence[iam.Statement]) -> tuple[IamRole, IamRolePolicy]:
        """The role Lambda assumes and its one inline policy of ``statements``."""
        role = IamRole(
            self,
            "role",
            name=role_name,
            assume_role_policy=iam.assume_role_document("lambda.amazonaws.com"),
        )
        policy = IamRolePolicy(
            self,
            "policy",
            name="etl-worker",
            role=role.id,
            policy=iam.policy_document(statements),
        )
        return role, policy

    def _queue_trigger(self, queue_arn: str, batch_size: int, maximum_concurrency: int) -> LambdaEventSourceMapping:
        """The function's SQS trigger, reporting partial batch failures."""
        return LambdaEventSourceMapping(
            self,
            "queue-trigger",
            event_source_arn=queue_arn,
            function_name=self.function.arn,
            batch_size=batch_size,
            function_response_types=["ReportBatchItemFailures"],
            # AWS's advice for an SQS trigger of a function with reserved concurrency: cap the pollers at (or
            # below) that reserve, so a burst waits in the queue instead of being throttled, and a throttled
            # receive never counts towards maxReceiveCount (a message dead-lettered without ever running).
            scaling_config=LambdaEventSourceMappingScalingConfig(maximum_concurrency=maximum_concurrency),
            enabled=True,
        )
