"""EventBridge rule: S3 ``Object Created`` and ``Object Deleted`` events under ``raw/`` of this region's bucket go
to the queue (a deletion takes the key's rows out of the query results)."""

from __future__ import annotations

import json

from cdktf_cdktf_provider_aws.cloudwatch_event_rule import CloudwatchEventRule
from cdktf_cdktf_provider_aws.cloudwatch_event_target import (
    CloudwatchEventTarget,
    CloudwatchEventTargetDeadLetterConfig,
    CloudwatchEventTargetRetryPolicy,
)
from constructs import Construct

from analytics_platform.infra.constructs.queues import WorkQueues

#: How long EventBridge keeps retrying an upload event it cannot deliver to the queue (with backoff, up to 185
#: attempts, AWS's maximum) before it puts the event in the DLQ: an hour rides out a throttled or briefly
#: unavailable queue, and after that the DLQ alarm tells someone within minutes instead of after a day (the
#: default). Nothing is lost either way: in the DLQ the event is what the queue would have received.
MAXIMUM_EVENT_AGE_SECONDS = 3600
MAXIMUM_RETRY_ATTEMPTS = 185


def upload_event_pattern(bucket_name: str, raw_prefix: str) -> dict[str, object]:
    """Match new and deleted objects under ``raw_prefix`` only, so outputs never retrigger processing."""
    return {
        "source": ["aws.s3"],
        "detail-type": ["Object Created", "Object Deleted"],
        "detail": {
            "bucket": {"name": [bucket_name]},
            "object": {"key": [{"prefix": raw_prefix}]},
        },
    }


class UploadEvents(Construct):
    """The rule, its SQS target (retry policy, the DLQ for undeliverable events) and the queue policies that admit
    only this rule. Exposes ``rule``."""

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
            description=f"Uploads and deletions under s3://{bucket_name}/{raw_prefix} to the ETL queue",
            event_pattern=json.dumps(upload_event_pattern(bucket_name, raw_prefix)),
        )
        CloudwatchEventTarget(
            self,
            "to-queue",
            rule=self.rule.name,
            target_id="etl-queue",
            arn=queues.queue.arn,
            # The work queue's own DLQ: an undelivered event lands there as the event itself, so the dead-letter
            # sweep records its job DEAD_LETTERED (tap jobs lists it) and tap redrive delivers it to the queue.
            dead_letter_config=CloudwatchEventTargetDeadLetterConfig(arn=queues.dlq.arn),
            retry_policy=CloudwatchEventTargetRetryPolicy(
                maximum_event_age_in_seconds=MAXIMUM_EVENT_AGE_SECONDS, maximum_retry_attempts=MAXIMUM_RETRY_ATTEMPTS
            ),
        )
        queues.allow_rule_to_send(self.rule.arn)
