"""What a regional stack hands its worker function: the environment it reads its :class:`Settings` from, and the
policy statements of its role, each naming this region's resources only."""

from __future__ import annotations

from analytics_platform.etl import metrics as worker_metrics
from analytics_platform.etl.contracts import contracts_to_json
from analytics_platform.etl.job_values import STATUS_INDEX
from analytics_platform.etl.notify import SOURCE as JOB_EVENT_SOURCE
from analytics_platform.etl.settings import PROCESSED_PREFIX, QUARANTINE_PREFIX, RAW_PREFIX, STAGING_PREFIX, Settings
from analytics_platform.infra import iam
from analytics_platform.infra.config import PlatformConfig
from analytics_platform.infra.constructs.data_bucket import DataBucket
from analytics_platform.infra.constructs.job_table import JobTable
from analytics_platform.infra.constructs.network import Network
from analytics_platform.infra.constructs.queues import WorkQueues
from analytics_platform.infra.names import ResourceNames

#: Job state events go to the region's default bus, where users' own rules can match them.
DEFAULT_EVENT_BUS = "default"


def worker_environment(config: PlatformConfig, region: str, *, queue_url: str, dlq_url: str) -> dict[str, str]:
    """The function's environment: the worker's :class:`Settings` plus Powertools' names.

    ``AWS_REGION`` is reserved by Lambda; the data region is passed on its own so the worker can refuse an
    event from any other region.
    """
    names = config.names(region)
    settings = Settings(
        region=region, bucket=names.bucket, table=names.table, queue_url=queue_url, dlq_url=dlq_url,
        glue_database=names.glue_database, contracts_json=contracts_to_json(config.datasets), tunables=config.worker,
        event_bus=DEFAULT_EVENT_BUS,
    )  # fmt: skip
    return {
        **settings.to_environment(),
        "POWERTOOLS_SERVICE_NAME": names.function,
        "POWERTOOLS_METRICS_NAMESPACE": worker_metrics.NAMESPACE,
        "LOG_LEVEL": "INFO",
    }


def worker_statements(
    names: ResourceNames, *, partition: str, region: str, account_id: str, data: DataBucket, jobs: JobTable,
    queues: WorkQueues, network: Network, key_arn: str | None,
) -> list[iam.Statement]:  # fmt: skip
    """The worker role's statements (its own log group's comes with the function): the bucket by prefix, job events,
    its catalog tables, the job table, the queues, its network interfaces, traces, and the region's key if any."""
    bucket_arn = data.bucket.arn
    return [
        iam.read_objects(bucket_arn, RAW_PREFIX),
        iam.read_outputs(bucket_arn, [STAGING_PREFIX, PROCESSED_PREFIX]),
        iam.write_objects(bucket_arn, [STAGING_PREFIX, PROCESSED_PREFIX, QUARANTINE_PREFIX]),
        iam.list_bucket(bucket_arn),
        iam.list_versions(bucket_arn, RAW_PREFIX),
        iam.retire_objects(bucket_arn, [STAGING_PREFIX, PROCESSED_PREFIX]),
        iam.put_job_events(partition=partition, region=region, account_id=account_id, source=JOB_EVENT_SOURCE),
        iam.write_catalog_tables(
            partition=partition, region=region, account_id=account_id, database=names.glue_database
        ),
        iam.write_jobs(jobs.table.arn),
        iam.query_job_index(jobs.table.arn, STATUS_INDEX),
        iam.consume_queue(queues.queue.arn),
        iam.inspect_dead_letters(queues.dlq.arn),
        iam.describe_network_interfaces(),
        iam.manage_network_interfaces(
            partition=partition,
            region=region,
            account_id=account_id,
            vpc_arn=network.vpc.arn,
            subnet_arns=[subnet.arn for subnet in network.subnets],
            security_group_arn=network.worker_security_group.arn,
        ),
        iam.write_traces(),
        *([iam.use_data_key(key_arn)] if key_arn else []),
    ]
