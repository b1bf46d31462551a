"""The regional work queue and its dead-letter queue, both encrypted (SQS-managed SSE, or the region's key)."""

from __future__ import annotations

import json

from cdktf_cdktf_provider_aws.sqs_queue import SqsQueue
from cdktf_cdktf_provider_aws.sqs_queue_policy import SqsQueuePolicy
from constructs import Construct


class WorkQueues(Construct):
    """SQS ``queue`` (visibility timeout, SSE) redriving to ``dlq`` after ``max_receive_count`` receives."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        queue_name: str,
        dlq_name: str,
        visibility_timeout_seconds: int,
        max_receive_count: int,
        dlq_retention_seconds: int,
        kms_key_arn: str | None = None,
    ) -> None:
        """``kms_key_arn``: SSE-KMS with this key for both queues (by default SQS-managed SSE)."""
        super().__init__(scope, construct_id)
        # The two settings exclude each other: a customer-managed key, or SQS's own.
        encryption = {"kms_master_key_id": kms_key_arn} if kms_key_arn else {"sqs_managed_sse_enabled": True}
        self.dlq = SqsQueue(
            self,
            "dlq",
            name=dlq_name,
            message_retention_seconds=dlq_retention_seconds,
            **encryption,
        )
        self.queue = SqsQueue(
            self,
            "queue",
            name=queue_name,
            visibility_timeout_seconds=visibility_timeout_seconds,
            message_retention_seconds=4 * 24 * 3600,
            **encryption,
            redrive_policy=json.dumps({"deadLetterTargetArn": self.dlq.arn, "maxReceiveCount": max_receive_count}),
        )

    def allow_rule_to_send(self, rule_arn: str) -> list[SqsQueuePolicy]:
        """Queue policies: only the given EventBridge rule may send messages, to the work queue (its target)
        and to the DLQ (the target's dead-letter queue, for events it could not deliver)."""
        return [
            SqsQueuePolicy(
                self,
                policy_id,
                queue_url=queue.url,
                policy=json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": sid,
                                "Effect": "Allow",
                                "Principal": {"Service": "events.amazonaws.com"},
                                "Action": "sqs:SendMessage",
                                "Resource": queue.arn,
                                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
                            }
                        ],
                    }
                ),
            )
            for policy_id, sid, queue in (
                ("policy", "AllowUploadRuleOnly", self.queue),
                ("dlq-policy", "AllowUploadRuleUndeliveredEvents", self.dlq),
            )
        ]
