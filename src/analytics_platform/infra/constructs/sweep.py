"""The dead-letter sweep: a schedule that has the worker mark the jobs of dead-lettered messages.

A message reaches the DLQ without its job being marked when its last delivery never ran to the end (the
invocation was killed, ran out of memory or was throttled until SQS counted it out). Every
``rate_minutes`` the worker reads the DLQ and records each such job as ``DEAD_LETTERED``, so every upload
ends in a terminal state.
"""

from __future__ import annotations

import json

from cdktf_cdktf_provider_aws.cloudwatch_event_rule import CloudwatchEventRule
from cdktf_cdktf_provider_aws.cloudwatch_event_target import CloudwatchEventTarget
from cdktf_cdktf_provider_aws.lambda_permission import LambdaPermission
from constructs import Construct

#: The scheduled event's ``detail``; the worker's handler recognises the sweep by it.
SWEEP_DETAIL = {"task": "dead-letter-sweep"}


class DeadLetterSweep(Construct):
    """Schedule rule -> the ETL function, with the permission for exactly this rule. Exposes ``rule``."""

    def __init__(
        self, scope: Construct, construct_id: str, *, rule_name: str, function_arn: str, function_name: str,
        rate_minutes: int,
    ) -> None:  # fmt: skip
        super().__init__(scope, construct_id)
        unit = "minute" if rate_minutes == 1 else "minutes"
        self.rule = CloudwatchEventRule(
            self,
            "rule",
            name=rule_name,
            description="Marks the jobs of dead-lettered upload messages DEAD_LETTERED",
            schedule_expression=f"rate({rate_minutes} {unit})",
        )
        CloudwatchEventTarget(
            self,
            "to-worker",
            rule=self.rule.name,
            target_id="etl-worker-sweep",
            arn=function_arn,
            input=json.dumps({"source": "aws.events", "detail-type": "Scheduled Event", "detail": SWEEP_DETAIL}),
        )
        LambdaPermission(
            self,
            "allow-rule",
            statement_id="AllowDeadLetterSweepRule",
            action="lambda:InvokeFunction",
            function_name=function_name,
            principal="events.amazonaws.com",
            source_arn=self.rule.arn,
        )
