"""EventBridge rule: S3 ``Object Created`` events under ``raw/`` of this region's bucket go to the queue."""

from __future__ import annotations

import json

from cdktf_cdktf_provider_aws.cloudwatch_event_rule import CloudwatchEventRule
from cdktf_cdktf_provider_aws.cloudwatch_event_target import CloudwatchEventTarget
from constructs import Construct

from analytics_platform.infra.constructs.queues import WorkQueues


def upload_event_pattern(bucket_name: str, raw_prefix: str) -> dict[str, object]:
    """Match new objects under ``raw_prefix`` only, so outputs never retrigger processing."""
    return {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {
            "bucket": {"name": [bucket_name]},
            "object": {"key": [{"prefix": raw_prefix}]},
        },
    }


class UploadEvents(Construct):
    """The rule, its SQS target and the queue policy that admits only this rule. Exposes ``rule``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        rule_name: str,
        bucket_name: str,
        raw_prefix: str,
        queues: WorkQueues,
    ) -> None:
        super().__init__(scope, construct_id)
        self.rule = CloudwatchEventRule(
            self,
            "rule",
            name=rule_name,
            description=f"New uploads under s3://{bucket_name}/{raw_prefix} to the ETL queue",
            event_pattern=json.dumps(upload_event_pattern(bucket_name, raw_prefix)),
        )
        CloudwatchEventTarget(
            self,
            "to-queue",
            rule=self.rule.name,
            target_id="etl-queue",
            arn=queues.queue.arn,
        )
        queues.allow_rule_to_send(self.rule.arn)
