"""One self-contained Terraform stack per region: own provider, own state, no reference elsewhere."""

from __future__ import annotations

from pathlib import Path

from cdktf import LocalBackend, S3Backend, TerraformOutput, TerraformStack
from constructs import Construct

from analytics_platform.etl.settings import ATHENA_RESULTS_PREFIX, RAW_PREFIX, STAGING_PREFIX
from analytics_platform.infra import iam
from analytics_platform.infra.config import PlatformConfig, RegionConfig
from analytics_platform.infra.constructs.analytics_catalog import Analytics
from analytics_platform.infra.constructs.data_bucket import DataBucket
from analytics_platform.infra.constructs.drift_alarm import DriftAlarm
from analytics_platform.infra.constructs.encryption import RegionKey, key_deletion_window_days
from analytics_platform.infra.constructs.etl_function import EtlFunction
from analytics_platform.infra.constructs.job_table import JobTable
from analytics_platform.infra.constructs.monitoring import AlarmSettings, Monitoring
from analytics_platform.infra.constructs.network import Network
from analytics_platform.infra.constructs.provider import regional_provider
from analytics_platform.infra.constructs.query_role import QueryRole
from analytics_platform.infra.constructs.queues import WorkQueues
from analytics_platform.infra.constructs.sweep import DeadLetterSweep
from analytics_platform.infra.constructs.upload_events import UploadEvents
from analytics_platform.infra.names import ResourceNames
from analytics_platform.infra.worker_wiring import worker_environment, worker_statements
from analytics_platform.packaging import LambdaPackage

#: Days a staged Parquet may wait (a job SUCCEEDED before its promotion is promoted within minutes).
STAGING_RETENTION_DAYS = 7


class RegionalStack(TerraformStack):
    """Everything one region needs, identical in shape across regions.

    Exposes the constructs as attributes (``encryption`` - the region's KMS key, ``None`` unless
    ``encryption = "kms"`` -, ``network``, ``data``, ``analytics``, ``jobs``, ``queues``, ``events``, ``worker``,
    ``monitoring``, ``query`` - the region's query role) and declares the stack outputs.

    The constructs are created in one fixed order (backend, provider, key, network, storage, queues, worker,
    operations, outputs), each directly under the stack, so their Terraform ids are their construct ids.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        region: RegionConfig,
        package: LambdaPackage,
    ) -> None:
        super().__init__(scope, construct_id)
        name = region.region
        names = config.names(name)
        self._configure_backend(config, construct_id, name)
        account = regional_provider(
            self, region=name, tags=config.tags(name), local_endpoint=config.local_endpoint,
            account_id=names.account_id,
        )  # fmt: skip
        partition, account_id = account.partition, account.account_id
        self.encryption = self._region_key(config, names, name, partition, account_id)
        key_arn = self.encryption.arn if self.encryption else None
        self.network = self._network(config, region, names, account_id, key_arn)
        self._storage(config, names, key_arn)
        statements = worker_statements(
            names, partition=partition, region=name, account_id=account_id, data=self.data, jobs=self.jobs,
            queues=self.queues, network=self.network, key_arn=key_arn,
        )  # fmt: skip
        self.worker = self._worker(config, names, name, package, statements, key_arn)
        self._operations(config, names, name, partition, account_id, key_arn, construct_id)
        self._outputs(name)

    def _region_key(
        self, config: PlatformConfig, names: ResourceNames, region: str, partition: str, account_id: str
    ) -> RegionKey | None:
        """The region's customer-managed key with ``encryption = "kms"``, else None."""
        if config.encryption != "kms":
            return None
        return RegionKey(
            self, "encryption", region=region, partition=partition, account_id=account_id,
            alias_name=names.encryption_key_alias, log_group_names=(names.log_group, names.flow_log_group),
            alarm_name_pattern=names.alarm_pattern,
            deletion_window_days=key_deletion_window_days(config.deletion_protection),
        )  # fmt: skip

    def _network(
        self, config: PlatformConfig, region: RegionConfig, names: ResourceNames, account_id: str, key_arn: str | None
    ) -> Network:
        return Network(
            self,
            "network",
            region=region.region,
            cidr=region.vpc_cidr,
            az_count=region.az_count,
            az_ids=region.az_ids,
            vpc_name=names.vpc,
            account_id=account_id,
            flow_log_group_name=names.flow_log_group,
            flow_log_role_name=names.flow_log_role,
            log_retention_days=config.log_retention_days,
            kms_key_arn=key_arn,
        )

    def _storage(self, config: PlatformConfig, names: ResourceNames, key_arn: str | None) -> None:
        """``data`` (the bucket), ``analytics`` (catalog and workgroup), ``jobs`` (the table), ``queues`` and
        ``events`` (the upload rule feeding the queue)."""
        self.data = DataBucket(
            self, "data", bucket_name=names.bucket, glacier_transition_days=config.glacier_transition_days,
            noncurrent_version_expiration_days=config.noncurrent_version_expiration_days,
            expiring_prefixes={ATHENA_RESULTS_PREFIX: config.athena_result_retention_days,
                               STAGING_PREFIX: STAGING_RETENTION_DAYS},
            force_destroy=not config.deletion_protection, kms_key_arn=key_arn,
        )  # fmt: skip
        self.analytics = Analytics(
            self, "analytics", database_name=names.glue_database, workgroup_name=names.athena_workgroup,
            bucket_name=names.bucket, bytes_scanned_cutoff_mb=config.athena_bytes_scanned_cutoff_mb,
            kms_key_arn=key_arn, force_destroy=not config.deletion_protection,
        )  # fmt: skip
        self.jobs = JobTable(
            self, "jobs", table_name=names.table, deletion_protection=config.deletion_protection, kms_key_arn=key_arn
        )
        self.queues = WorkQueues(
            self,
            "queues",
            queue_name=names.queue,
            dlq_name=names.dlq,
            visibility_timeout_seconds=config.queue_visibility_timeout_seconds,
            max_receive_count=config.worker.max_receive_count,
            dlq_retention_seconds=config.dlq_retention_seconds,
            kms_key_arn=key_arn,
        )
        self.events = UploadEvents(
            self,
            "events",
            rule_name=names.rule,
            bucket_name=names.bucket,
            raw_prefix=RAW_PREFIX,
            queues=self.queues,
        )

    def _worker(
        self, config: PlatformConfig, names: ResourceNames, region: str, package: LambdaPackage,
        statements: list[iam.Statement], key_arn: str | None,
    ) -> EtlFunction:  # fmt: skip
        return EtlFunction(
            self,
            "worker",
            function_name=names.function,
            role_name=names.role,
            log_group_name=names.log_group,
            package_path=package.path,
            package_hash=package.sha256_b64,
            architecture=config.lambda_architecture,
            memory_mb=config.lambda_memory_mb,
            timeout_seconds=config.lambda_timeout_seconds,
            ephemeral_storage_mb=config.ephemeral_storage_mb,
            reserved_concurrency=config.lambda_reserved_concurrency,
            maximum_concurrency=config.maximum_concurrency,
            batch_size=config.lambda_batch_size,
            log_retention_days=config.log_retention_days,
            environment=worker_environment(
                config, region, queue_url=self.queues.queue.url, dlq_url=self.queues.dlq.url
            ),
            subnet_ids=self.network.subnet_ids,
            security_group_ids=[self.network.worker_security_group.id],
            policy_statements=statements,
            queue_arn=self.queues.queue.arn,
            kms_key_arn=key_arn,
        )

    def _operations(
        self, config: PlatformConfig, names: ResourceNames, region: str, partition: str, account_id: str,
        key_arn: str | None, construct_id: str,
    ) -> None:  # fmt: skip
        """``sweep`` (the scheduled dead-letter sweep), ``monitoring``, ``query`` (the query role) and ``drift``."""
        self.sweep = DeadLetterSweep(
            self,
            "dead-letter-sweep",
            rule_name=names.sweep_rule,
            function_arn=self.worker.function.arn,
            function_name=self.worker.function.function_name,
            rate_minutes=config.dead_letter_sweep_minutes,
        )
        self.monitoring = Monitoring(
            self,
            "monitoring",
            region=region,
            partition=partition,
            account_id=account_id,
            topic_name=names.topic,
            kms_alias=names.kms_alias,
            dashboard_name=names.dashboard,
            alarms=AlarmSettings(
                names=(names.alarm_error_rate, names.alarm_dlq, names.alarm_age, names.alarm_failed_jobs),
                error_rate_threshold_percent=config.error_rate_threshold_percent,
                oldest_message_alarm_seconds=config.oldest_message_alarm_seconds,
            ),
            function_name=names.function,
            queue_name=names.queue,
            dlq_name=names.dlq,
            alarm_emails=config.alarm_emails,
            key_deletion_window_days=key_deletion_window_days(config.deletion_protection),
            kms_key_arn=key_arn,
        )
        self.query = QueryRole(
            self, "query", role_name=names.query_role, partition=partition, region=region, account_id=account_id,
            database_name=names.glue_database, workgroup_arn=self.analytics.workgroup.arn,
            bucket_arn=self.data.bucket.arn, kms_key_arn=key_arn, principals=config.query_principals,
        )  # fmt: skip
        self.drift = DriftAlarm(
            self, "drift", alarm_name=names.alarm_drift, stack_name=construct_id, topic_arn=self.monitoring.topic.arn
        )

    def _configure_backend(self, config: PlatformConfig, construct_id: str, region: str) -> None:
        if config.backend == "s3":
            names = config.names(region)
            # State bucket and lock table live in the stack's own region: no state crosses a region.
            backend = S3Backend(
                self,
                bucket=names.state_bucket,
                key=f"{construct_id}/terraform.tfstate",
                region=region,
                # Both locks are taken: the lock file (S3-native locking, Terraform >= 1.10; the DynamoDB lock is
                # deprecated since 1.11) and the lock table, so a run from a checkout made before the lock file
                # (table only) still excludes this one. Drop dynamodb_table once no such checkout is left.
                dynamodb_table=names.lock_table,
                encrypt=True,
            )
            # cdktf 0.21's S3Backend has no use_lockfile yet: written as an override of the backend block. A
            # Terraform older than 1.10 stops at init on it as an unsupported argument. (No required_version:
            # checkov's terraform_json parser fails on that string in the terraform block.)
            backend.add_override("use_lockfile", True)
        else:
            LocalBackend(self, path=str(Path(config.state_dir) / f"{construct_id}.tfstate"))

    def _outputs(self, region: str) -> None:
        snake = region.replace("-", "_")
        values = {
            "bucket_name": (self.data.bucket.bucket, "s3_bucket_name", "the data bucket: uploads go to raw/"),
            "function_arn": (self.worker.function.arn, "lambda_function_arn", "the ETL worker function's ARN"),
            "function_name": (self.worker.function.function_name, None, "the ETL worker function's name"),
            "table_name": (self.jobs.table.name, "dynamodb_table_name", "the job table (one record per upload)"),
            "queue_url": (self.queues.queue.url, "sqs_queue_url", "the work queue the upload events land in"),
            "dlq_url": (self.queues.dlq.url, "sqs_dlq_url", "the dead-letter queue (tap redrive moves it back)"),
            "vpc_id": (self.network.vpc.id, "vpc_id", "the region's VPC (private subnets only)"),
            "dashboard_name": (self.monitoring.dashboard.dashboard_name, "dashboard_name", "the CloudWatch dashboard"),
            "topic_arn": (self.monitoring.topic.arn, "sns_topic_arn", "the alarm topic (alarm_emails subscribe)"),
            "glue_database": (self.analytics.database.name, "glue_database_name", "the catalog: one table per dataset"),
            "athena_workgroup": (self.analytics.workgroup.name, "athena_workgroup_name", "the Athena workgroup"),
            "query_role_arn": (self.query.role.arn, None, "the role tap query --as-query-role assumes"),
        }
        for output_id, (value, seed_name, description) in values.items():
            where = f"{description} ({region})"
            TerraformOutput(self, output_id, value=value, description=where)
            if seed_name:
                TerraformOutput(self, f"{seed_name}_{snake}", value=value, description=where)
