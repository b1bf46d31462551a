"""The drift alarm: ``tap drift --publish`` writes each region's drifted-resource count; this alarms on it."""

from __future__ import annotations

from cdktf_cdktf_provider_aws.cloudwatch_metric_alarm import CloudwatchMetricAlarm
from constructs import Construct

from analytics_platform.infra.names import DRIFT_METRIC, DRIFT_NAMESPACE

#: ``tap drift --publish`` is meant to run at least daily (README: Run it on AWS): a datapoint above zero alarms at
#: once, a zero clears it, and the hours without a datapoint in between keep the last state (``ignore``), so the
#: alarm stays on while the drift does.
DRIFT_PERIOD_SECONDS = 3600


class DriftAlarm(Construct):
    """One alarm on the stack's own ``ConfigurationDrift`` metric, to the region's alarm topic."""

    def __init__(
        self, scope: Construct, construct_id: str, *, alarm_name: str, stack_name: str, topic_arn: str
    ) -> None:
        super().__init__(scope, construct_id)
        self.alarm = CloudwatchMetricAlarm(
            self,
            "alarm",
            alarm_name=alarm_name,
            alarm_description=(
                f"Resources of {stack_name} changed outside Terraform or differ from the other regions: run tap drift"
            ),
            namespace=DRIFT_NAMESPACE,
            metric_name=DRIFT_METRIC,
            dimensions={"Stack": stack_name},
            statistic="Maximum",
            period=DRIFT_PERIOD_SECONDS,
            evaluation_periods=1,
            threshold=0,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="ignore",
            alarm_actions=[topic_arn],
            ok_actions=[topic_arn],
        )
