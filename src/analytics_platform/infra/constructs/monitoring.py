"""Regional dashboard, alarms and the encrypted SNS topic they notify."""

from __future__ import annotations

import json
from typing import Any

from cdktf_cdktf_provider_aws.cloudwatch_dashboard import CloudwatchDashboard
from cdktf_cdktf_provider_aws.cloudwatch_metric_alarm import (
    CloudwatchMetricAlarm,
    CloudwatchMetricAlarmMetricQuery,
    CloudwatchMetricAlarmMetricQueryMetric,
)
from cdktf_cdktf_provider_aws.kms_alias import KmsAlias
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from cdktf_cdktf_provider_aws.sns_topic import SnsTopic
from constructs import Construct

from analytics_platform.etl import metrics as worker_metrics

PERIOD_SECONDS = 300


def alarm_key_policy(*, partition: str, account_id: str) -> str:
    """Key policy: the account administers the key; CloudWatch may encrypt alarm notifications.

    In a key policy ``Resource: "*"`` means "this key" - it is the only value AWS accepts there.
    """
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AccountAdministers",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {
                    "Sid": "CloudWatchAlarmsEncrypt",
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudwatch.amazonaws.com"},
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
                },
            ],
        }
    )


def dashboard_body(
    *, region: str, function_name: str, queue_name: str, dlq_name: str, error_rate_threshold: float
) -> dict[str, Any]:
    """Widgets for the worker and both queues; every metric carries its dimension."""

    def lam(metric: str, stat: str = "Sum") -> list[Any]:
        return ["AWS/Lambda", metric, "FunctionName", function_name, {"stat": stat}]

    def sqs(metric: str, queue: str, stat: str = "Maximum") -> list[Any]:
        return ["AWS/SQS", metric, "QueueName", queue, {"stat": stat}]

    def widget(title: str, metrics: list[Any], x: int, y: int, **extra: Any) -> dict[str, Any]:
        return {
            "type": "metric",
            "x": x,
            "y": y,
            "width": 12,
            "height": 6,
            "properties": {
                "title": title,
                "region": region,
                "metrics": metrics,
                "period": PERIOD_SECONDS,
                "view": "timeSeries",
                **extra,
            },
        }

    return {
        "widgets": [
            widget("ETL invocations and errors", [lam("Invocations"), lam("Errors"), lam("Throttles")], 0, 0),
            widget("ETL duration (ms)", [lam("Duration", "Average"), lam("Duration", "p99")], 12, 0),
            widget(
                "ETL error rate (%)",
                [
                    [*lam("Errors")[:4], {"id": "errors", "stat": "Sum", "visible": False}],
                    [*lam("Invocations")[:4], {"id": "invocations", "stat": "Sum", "visible": False}],
                    [
                        {
                            "expression": "100 * errors / MAX([invocations, 1])",
                            "label": "error rate %",
                            "id": "rate",
                        }
                    ],
                ],
                0,
                6,
                annotations={"horizontal": [{"label": "alarm", "value": error_rate_threshold}]},
            ),
            widget(
                "Queue depth and age",
                [
                    sqs("ApproximateNumberOfMessagesVisible", queue_name),
                    sqs("ApproximateNumberOfMessagesNotVisible", queue_name),
                    sqs("ApproximateAgeOfOldestMessage", queue_name),
                ],
                12,
                6,
            ),
            widget("Dead-letter queue depth", [sqs("ApproximateNumberOfMessagesVisible", dlq_name)], 0, 12),
            widget(
                "Jobs by outcome",
                [
                    [worker_metrics.NAMESPACE, name, worker_metrics.SERVICE_DIMENSION, function_name, {"stat": "Sum"}]
                    for name in (
                        worker_metrics.JOBS_SUCCEEDED,
                        worker_metrics.JOBS_FAILED,
                        worker_metrics.JOBS_DEAD_LETTERED,
                        worker_metrics.JOBS_RETRIED,
                    )
                ],
                12,
                12,
            ),
        ]
    }


class Monitoring(Construct):
    """Dashboard, four alarms and the KMS-encrypted ``topic`` they notify."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        region: str,
        partition: str,
        account_id: str,
        topic_name: str,
        kms_alias: str,
        dashboard_name: str,
        alarm_names: tuple[str, str, str, str],
        function_name: str,
        queue_name: str,
        dlq_name: str,
        error_rate_threshold_percent: float,
        oldest_message_alarm_seconds: int,
        kms_key_arn: str | None = None,
    ) -> None:
        """``kms_key_arn``: encrypt the topic with this key (the region's key); by default the topic gets its
        own small key (alias ``kms_alias``) that only CloudWatch alarms may use."""
        super().__init__(scope, construct_id)
        if kms_key_arn is None:
            key = KmsKey(
                self,
                "alarm-key",
                description=f"Encrypts alarm notifications of {topic_name}",
                enable_key_rotation=True,
                deletion_window_in_days=7,
                policy=alarm_key_policy(partition=partition, account_id=account_id),
            )
            KmsAlias(self, "alarm-key-alias", name=kms_alias, target_key_id=key.key_id)
            kms_key_arn = key.arn
        self.topic = SnsTopic(self, "topic", name=topic_name, kms_master_key_id=kms_key_arn)
        self.dashboard = CloudwatchDashboard(
            self,
            "dashboard",
            dashboard_name=dashboard_name,
            dashboard_body=json.dumps(
                dashboard_body(
                    region=region,
                    function_name=function_name,
                    queue_name=queue_name,
                    dlq_name=dlq_name,
                    error_rate_threshold=error_rate_threshold_percent,
                )
            ),
        )
        error_rate_name, dlq_alarm_name, age_alarm_name, failed_jobs_name = alarm_names
        notify = [self.topic.arn]

        def lambda_metric(query_id: str, metric: str) -> CloudwatchMetricAlarmMetricQuery:
            return CloudwatchMetricAlarmMetricQuery(
                id=query_id,
                return_data=False,
                metric=CloudwatchMetricAlarmMetricQueryMetric(
                    namespace="AWS/Lambda",
                    metric_name=metric,
                    dimensions={"FunctionName": function_name},
                    period=PERIOD_SECONDS,
                    stat="Sum",
                ),
            )

        self.error_rate_alarm = CloudwatchMetricAlarm(
            self,
            "error-rate",
            alarm_name=error_rate_name,
            alarm_description=f"ETL error rate above {error_rate_threshold_percent}% of invocations",
            comparison_operator="GreaterThanThreshold",
            evaluation_periods=2,
            datapoints_to_alarm=2,
            threshold=error_rate_threshold_percent,
            treat_missing_data="notBreaching",
            metric_query=[
                lambda_metric("errors", "Errors"),
                lambda_metric("invocations", "Invocations"),
                CloudwatchMetricAlarmMetricQuery(
                    id="error_rate",
                    expression="100 * errors / MAX([invocations, 1])",
                    label="Error rate (%)",
                    return_data=True,
                ),
            ],
            alarm_actions=notify,
            ok_actions=notify,
        )

        # With partial batch responses a failed record is not a Lambda error, so jobs that ended FAILED or
        # DEAD_LETTERED get their own alarm, on the worker's own metrics.
        self.failed_jobs_alarm = CloudwatchMetricAlarm(
            self,
            "failed-jobs",
            alarm_name=failed_jobs_name,
            alarm_description="Uploads ended FAILED or DEAD_LETTERED: see tap jobs --status FAILED / DEAD_LETTERED",
            comparison_operator="GreaterThanThreshold",
            evaluation_periods=1,
            threshold=0,
            treat_missing_data="notBreaching",
            metric_query=[
                *(
                    CloudwatchMetricAlarmMetricQuery(
                        id=name.lower(),
                        return_data=False,
                        metric=CloudwatchMetricAlarmMetricQueryMetric(
                            namespace=worker_metrics.NAMESPACE,
                            metric_name=name,
                            dimensions={worker_metrics.SERVICE_DIMENSION: function_name},
                            period=PERIOD_SECONDS,
                            stat="Sum",
                        ),
                    )
                    for name in worker_metrics.FAILED_JOB_METRICS
                ),
                CloudwatchMetricAlarmMetricQuery(
                    id="failed_jobs",
                    expression=" + ".join(f"FILL({name.lower()}, 0)" for name in worker_metrics.FAILED_JOB_METRICS),
                    label="Jobs FAILED or DEAD_LETTERED",
                    return_data=True,
                ),
            ],
            alarm_actions=notify,
            ok_actions=notify,
        )

        def queue_alarm(
            alarm_id: str, name: str, description: str, metric: str, queue: str, threshold: float
        ) -> CloudwatchMetricAlarm:
            return CloudwatchMetricAlarm(
                self,
                alarm_id,
                alarm_name=name,
                alarm_description=description,
                namespace="AWS/SQS",
                metric_name=metric,
                dimensions={"QueueName": queue},
                statistic="Maximum",
                period=PERIOD_SECONDS,
                evaluation_periods=1,
                threshold=threshold,
                comparison_operator="GreaterThanThreshold",
                treat_missing_data="notBreaching",
                alarm_actions=notify,
                ok_actions=notify,
            )

        self.dlq_alarm = queue_alarm(
            "dlq-not-empty",
            dlq_alarm_name,
            "Messages reached the dead-letter queue: uploads that could not be processed",
            "ApproximateNumberOfMessagesVisible",
            dlq_name,
            0,
        )
        self.age_alarm = queue_alarm(
            "oldest-message",
            age_alarm_name,
            f"Oldest queued upload waited more than {oldest_message_alarm_seconds} s",
            "ApproximateAgeOfOldestMessage",
            queue_name,
            oldest_message_alarm_seconds,
        )
