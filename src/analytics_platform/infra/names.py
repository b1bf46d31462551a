"""Physical resource names and stack identifiers, derived from the region and the environment suffix.

Plain Python (no cdktf import), so checks and the local runtime can name things without loading the bindings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

#: The metric ``tap drift --publish`` writes and each stack's drift alarm watches (dimension ``Stack``).
DRIFT_NAMESPACE = "AnalyticsPlatform/Operations"
DRIFT_METRIC = "ConfigurationDrift"


#: The account the local endpoint plays (moto's default account): the local platform's names carry it.
LOCAL_ACCOUNT_ID = "123456789012"


def stack_id(region: str, suffix: str) -> str:
    """Stack (and state) identifier of one region."""
    return f"analytics-{region}-{suffix}"


#: AWS name-length limits the generated names are checked against.
NAME_LIMITS: Mapping[str, int] = {
    "bucket": 63,
    "state_bucket": 63,
    "function": 64,
    "role": 64,
    "flow_log_role": 64,
    "query_role": 64,
    "queue": 80,
    "dlq": 80,
    "table": 255,
    "lock_table": 255,
    "log_group": 512,
    "flow_log_group": 512,
    "rule": 64,
    "topic": 256,
    "dashboard": 255,
    "alarm_error_rate": 255,
    "alarm_failed_jobs": 255,
    "alarm_drift": 255,
    "sweep_rule": 64,
    "glue_database": 255,
    "athena_workgroup": 128,
    "encryption_key_alias": 256,
}


@dataclass(frozen=True)
class ResourceNames:
    """Every physical resource name of one region, following ``{resource-type}-{region}-{suffix}``."""

    #: The AWS account the names belong to.
    account_id: str
    bucket: str
    function: str
    role: str
    flow_log_role: str
    #: The role people assume to query the region (``tap query --as-query-role``).
    query_role: str
    table: str
    queue: str
    dlq: str
    rule: str
    topic: str
    dashboard: str
    log_group: str
    flow_log_group: str
    vpc: str
    alarm_error_rate: str
    alarm_dlq: str
    alarm_age: str
    alarm_failed_jobs: str
    alarm_drift: str
    #: Matches every alarm name of this region and suffix (``*`` wildcard), for policies that admit them all.
    alarm_pattern: str
    sweep_rule: str
    kms_alias: str
    encryption_key_alias: str
    state_bucket: str
    lock_table: str
    glue_database: str
    athena_workgroup: str

    @classmethod
    def build(cls, region: str, suffix: str, account_id: str) -> ResourceNames:
        """Derive all names for ``region`` and environment ``suffix``; S3 bucket names live in a namespace shared
        by every AWS account, so the buckets' names also carry ``account_id`` (another account may own
        ``analytics-bucket-<region>-dev``)."""

        def name(kind: str) -> str:
            return f"analytics-{kind}-{region}-{suffix}"

        function = name("etl")
        return cls(
            account_id=account_id,
            bucket=name(f"bucket-{account_id}"),
            function=function,
            role=name("etl-role"),
            flow_log_role=name("flowlogs-role"),
            query_role=name("query-role"),
            table=name("jobs"),
            queue=name("queue"),
            dlq=name("dlq"),
            rule=name("upload-rule"),
            topic=name("alarms"),
            dashboard=name("monitoring"),
            log_group=f"/aws/lambda/{function}",
            flow_log_group=f"/aws/vpc/{name('flowlogs')}",
            vpc=name("vpc"),
            alarm_error_rate=name("etl-error-rate"),
            alarm_dlq=name("dlq-not-empty"),
            alarm_age=name("queue-oldest-message"),
            alarm_failed_jobs=name("failed-jobs"),
            alarm_drift=name("config-drift"),
            alarm_pattern=name("*"),
            sweep_rule=name("dlq-sweep"),
            kms_alias=f"alias/{name('alarms')}",
            encryption_key_alias=f"alias/{name('key')}",
            state_bucket=name(f"tfstate-{account_id}"),
            lock_table=name("tflock"),
            # Glue and Athena want lower case, digits and underscores in database names (no hyphens).
            glue_database=f"analytics_{region}_{suffix}".replace("-", "_"),
            athena_workgroup=name("athena"),
        )
