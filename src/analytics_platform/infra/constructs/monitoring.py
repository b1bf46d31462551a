"""Regional dashboard, alarms and the encrypted SNS topic they notify."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
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
from cdktf_cdktf_provider_aws.sns_topic_subscription import SnsTopicSubscription
from constructs import Construct

from analytics_platform.etl import metrics as worker_metrics
from analytics_platform.infra.constructs.dashboard import ERROR_RATE_EXPRESSION, PERIOD_SECONDS, dashboard_body


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


@dataclass(frozen=True)
class AlarmSettings:
    """Names and thresholds of the four alarms (error rate, DLQ not empty, oldest message, failed jobs)."""

    names: tuple[str, str, str, str]
    error_rate_threshold_percent: float
    oldest_message_alarm_seconds: int


class Monitoring(Construct):
    """Dashboard, four alarms and the KMS-encrypted ``topic`` they notify; ``subscriptions`` e-mail it."""

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
        alarms: AlarmSettings,
        function_name: str,
        queue_name: str,
        dlq_name: str,
        alarm_emails: Sequence[str] = (),
        key_deletion_window_days: int = 7,
        kms_key_arn: str | None = None,
    ) -> None:
        """``alarm_emails``: addresses subscribed to the topic (by default none; SNS mails each a confirmation
        link, and nothing reaches an address before it is confirmed); ``kms_key_arn``: encrypt the topic with
        this key (the region's key); by default the topic gets its own small key (alias ``kms_alias``, deleted
        ``key_deletion_window_days`` after a destroy) that only CloudWatch alarms may use."""
        super().__init__(scope, construct_id)
        self._function_name = function_name
        if kms_key_arn is None:
            kms_key_arn = self._alarm_key(topic_name, kms_alias, partition, account_id, key_deletion_window_days)
        self.topic = SnsTopic(self, "topic", name=topic_name, kms_master_key_id=kms_key_arn)
        # One subscription per address; its ARN reads "pending confirmation" until the mail's link is followed.
        self.subscriptions = [
            SnsTopicSubscription(self, f"email-{index}", topic_arn=self.topic.arn, protocol="email", endpoint=address)
            for index, address in enumerate(alarm_emails)
        ]
        self.dashboard = CloudwatchDashboard(
            self,
            "dashboard",
            dashboard_name=dashboard_name,
            dashboard_body=json.dumps(
                dashboard_body(
                    region=region, function_name=function_name, queue_name=queue_name, dlq_name=dlq_name,
                    error_rate_threshold=alarms.error_rate_threshold_percent,
                )
            ),
        )  # fmt: skip
        error_rate_name, dlq_alarm_name, age_alarm_name, failed_jobs_name = alarms.names
        self.error_rate_alarm = self._error_rate_alarm(error_rate_name, alarms.error_rate_threshold_percent)
        self.failed_jobs_alarm = self._failed_jobs_alarm(failed_jobs_name)
        self.dlq_alarm = self._queue_alarm(
            "dlq-not-empty", dlq_alarm_name, "Messages reached the dead-letter queue: uploads that could not be "
            "processed (or upload events EventBridge could not deliver)", "ApproximateNumberOfMessagesVisible",
            dlq_name, 0,
        )  # fmt: skip
        seconds = alarms.oldest_message_alarm_seconds
        self.age_alarm = self._queue_alarm(
            "oldest-message", age_alarm_name, f"Oldest queued upload waited more than {seconds} s",
            "ApproximateAgeOfOldestMessage", queue_name, seconds,
        )  # fmt: skip

    def _alarm_key(
        self, topic_name: str, kms_alias: str, partition: str, account_id: str, deletion_window_days: int
    ) -> str:
        """The topic's own small key (and its alias), which only CloudWatch alarms may use; returns its ARN."""
        key = KmsKey(
            self,
            "alarm-key",
            description=f"Encrypts alarm notifications of {topic_name}",
            enable_key_rotation=True,
            deletion_window_in_days=deletion_window_days,
            policy=alarm_key_policy(partition=partition, account_id=account_id),
        )
        KmsAlias(self, "alarm-key-alias", name=kms_alias, target_key_id=key.key_id)
        return key.arn

    def _metric(self, query_id: str, namespace: str, metric: str, dimension: str) -> CloudwatchMetricAlarmMetricQuery:
        """One of the function's metrics (summed per period) as a query of a metric-math alarm."""
        return CloudwatchMetricAlarmMetricQuery(
            id=query_id,
            return_data=False,
            metric=CloudwatchMetricAlarmMetricQueryMetric(
                namespace=namespace, metric_name=metric, dimensions={dimension: self._function_name},
                period=PERIOD_SECONDS, stat="Sum",
            ),
        )  # fmt: skip

    def _alarm(self, alarm_id: str, **settings: Any) -> CloudwatchMetricAlarm:
        notify = [self.topic.arn]
        return CloudwatchMetricAlarm(
            self, alarm_id, comparison_operator="GreaterThanThreshold", treat_missing_data="notBreaching",
            alarm_actions=notify, ok_actions=notify, **settings,
        )  # fmt: skip

    def _error_rate_alarm(self, name: str, threshold: float) -> CloudwatchMetricAlarm:
        return self._alarm(
            "error-rate",
            alarm_name=name,
            alarm_description=f"ETL error rate above {threshold}% of invocations",
            evaluation_periods=2,
            datapoints_to_alarm=2,
            threshold=threshold,
            metric_query=[
                self._metric("errors", "AWS/Lambda", "Errors", "FunctionName"),
                self._metric("invocations", "AWS/Lambda", "Invocations", "FunctionName"),
                CloudwatchMetricAlarmMetricQuery(
                    id="error_rate", expression=ERROR_RATE_EXPRESSION, label="Error rate (%)", return_data=True
                ),
            ],
        )

    def _failed_jobs_alarm(self, name: str) -> CloudwatchMetricAlarm:
        # With partial batch responses a failed record is not a Lambda error, so jobs that ended FAILED or
        # DEAD_LETTERED get their own alarm, on the worker's own metrics.
        metrics = worker_metrics.FAILED_JOB_METRICS
        return self._alarm(
            "failed-jobs",
            alarm_name=name,
            alarm_description="Uploads ended FAILED or DEAD_LETTERED: see tap jobs --status FAILED / DEAD_LETTERED",
            evaluation_periods=1,
            threshold=0,
            metric_query=[
                *(
                    self._metric(m.lower(), worker_metrics.NAMESPACE, m, worker_metrics.SERVICE_DIMENSION)
                    for m in metrics
                ),
                CloudwatchMetricAlarmMetricQuery(
                    id="failed_jobs",
                    expression=" + ".join(f"FILL({m.lower()}, 0)" for m in metrics),
                    label="Jobs FAILED or DEAD_LETTERED",
                    return_data=True,
                ),
            ],
        )

    def _queue_alarm(
        self, alarm_id: str, name: str, description: str, metric: str, queue: str, threshold: float
    ) -> CloudwatchMetricAlarm:
        return self._alarm(
            alarm_id, alarm_name=name, alarm_description=description, namespace="AWS/SQS", metric_name=metric,
            dimensions={"QueueName": queue}, statistic="Maximum", period=PERIOD_SECONDS, evaluation_periods=1,
            threshold=threshold,
        )  # fmt: skip
