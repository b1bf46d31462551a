"""The local Lambda service finds a function's sources on the endpoint and gives them one pool of environments."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from analytics_platform.local.clients import local_client
from analytics_platform.local.pollers import QueuePoller, SchedulePoller
from analytics_platform.local.server import LocalLambdaService

REGION = "us-east-1"
TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
         "Principal": {"Service": "lambda.amazonaws.com"}}]}  # fmt: skip


def package() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return {}\n")
    return buffer.getvalue()


def test_a_function_s_queue_and_schedule_share_one_pool_of_its_reserved_concurrency(
    endpoint: str, tmp_path: Path
) -> None:
    # GIVEN a function of reserved concurrency 2 fed by a queue and by a rate(...) rule
    lam, sqs, events = (local_client(s, REGION, endpoint) for s in ("lambda", "sqs", "events"))
    role = local_client("iam", REGION, endpoint).create_role(
        RoleName="fn-role", AssumeRolePolicyDocument=json.dumps(TRUST)
    )["Role"]["Arn"]
    function = lam.create_function(FunctionName="fn", Runtime="python3.11", Role=role, Handler="app.handler",
                                   Code={"ZipFile": package()}, Timeout=7, MemorySize=256)["FunctionArn"]  # fmt: skip
    lam.put_function_concurrency(FunctionName="fn", ReservedConcurrentExecutions=2)
    queue_url = sqs.create_queue(QueueName="q")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    mapping = lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName="fn", BatchSize=5)["UUID"]
    events.put_rule(Name="sweep", ScheduleExpression="rate(5 minutes)")
    events.put_targets(Rule="sweep", Targets=[{"Id": "t", "Arn": function, "Input": json.dumps({"task": "x"})}])
    service = LocalLambdaService(endpoint, [REGION], tmp_path)
    try:
        # WHEN the service discovers them
        service.discover()
        pollers = list(service._pollers.values())
        # THEN both sources run in the same pool, as large as the reserved concurrency, with the function's limits
        assert sorted(type(p).__name__ for p in pollers) == [QueuePoller.__name__, SchedulePoller.__name__]
        (pool,) = {id(p.pool): p.pool for p in pollers}.values()
        assert [r.pid_file.name for r in pool.runtimes] == ["fn-0.pid", "fn-1.pid"]
        assert (pool.spec.timeout_seconds, pool.spec.memory_mb, pool.spec.role_arn) == (7, 256, role)
        # WHEN the rule goes THEN the queue keeps the pool; WHEN the mapping goes too THEN the pool ends
        events.remove_targets(Rule="sweep", Ids=["t"])
        service.discover()
        assert [type(p) for p in service._pollers.values()] == [QueuePoller] and service._pools
        lam.delete_event_source_mapping(UUID=mapping)
        service.discover()
        assert not service._pollers and not service._pools
    finally:
        service.stop()
