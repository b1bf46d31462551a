"""Every AWS service the worker calls from its VPC has a route there, and ``tap check`` finds one that has none."""

from __future__ import annotations

import ast
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from analytics_platform import cli
from analytics_platform.etl import clients as clients_module
from analytics_platform.etl import handler as handler_module
from analytics_platform.etl.clients import WORKER_SERVICES, EndpointType, declared, unreachable_call_seconds
from analytics_platform.infra.config import PlatformConfig
from analytics_platform.infra.names import stack_id
from analytics_platform.infra.reachability import Endpoint, FunctionNetwork, stack_findings, unreachable

ETL = Path(clients_module.__file__).parent
DECLARED = {service.name for service in WORKER_SERVICES}
#: The calls that make a client or resource, with the position of the service name among their arguments.
FACTORIES = {"client": 0, "resource": 0, "worker_client": 1, "worker_resource": 1}


def created_services(tree: ast.AST, where: str) -> Iterator[str]:
    """The service of each client made in ``tree``; a service that is not a literal fails (it cannot be checked)."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if name not in FACTORIES:
            continue
        position = FACTORIES[name]
        argument = node.args[position] if len(node.args) > position else None
        if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
            yield argument.value
        elif where != "clients.py":  # only the factory itself passes the declared name through
            raise AssertionError(f"etl/{where}:{node.lineno}: {name}(...) with a service that is not a literal")


def test_every_client_the_worker_code_makes_is_declared() -> None:
    # GIVEN every module of the worker package WHEN its client calls are collected
    found: dict[str, set[str]] = {}
    for path in sorted(ETL.rglob("*.py")):
        for service in created_services(ast.parse(path.read_text()), str(path.relative_to(ETL))):
            found.setdefault(service, set()).add(str(path.relative_to(ETL)))
    # THEN each service is declared, and the worker does make its clients (the walk sees them)
    assert {service: where for service, where in found.items() if service not in DECLARED} == {}
    assert {"s3", "dynamodb", "sqs", "glue"} <= set(found)


def test_the_worker_runtime_makes_only_clients_of_declared_services(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the worker's environment and boto3 instrumented to record every client and resource made
    for name, value in {"DATA_REGION": "us-east-1", "BUCKET_NAME": "b", "TABLE_NAME": "t", "GLUE_DATABASE": "d",
                        "QUEUE_URL": "q", "DLQ_URL": "dlq", "AWS_ACCESS_KEY_ID": "x",
                        "AWS_SECRET_ACCESS_KEY": "x"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    made: list[tuple[str, Any]] = []
    real_client, real_resource = boto3.session.Session.client, boto3.session.Session.resource

    def client(self: Any, service: str, *args: Any, **kwargs: Any) -> Any:
        made.append((service, kwargs.get("config")))
        return real_client(self, service, *args, **kwargs)

    def resource(self: Any, service: str, *args: Any, **kwargs: Any) -> Any:
        made.append((service, kwargs.get("config")))
        return real_resource(self, service, *args, **kwargs)

    monkeypatch.setattr(boto3.session.Session, "client", client)
    monkeypatch.setattr(boto3.session.Session, "resource", resource)
    handler_module.get_runtime.cache_clear()
    try:
        # WHEN the execution environment builds its worker
        handler_module.get_runtime()
    finally:
        handler_module.get_runtime.cache_clear()
    # THEN every client is of a declared service, with the worker's short timeouts
    services = {service for service, _ in made}
    assert services == {"s3", "dynamodb", "glue", "sqs"} and services <= DECLARED
    # (a resource makes its client with a copy of the config)
    assert {(config.connect_timeout, config.read_timeout) for _, config in made} == {
        (clients_module.CONNECT_TIMEOUT_SECONDS, clients_module.READ_TIMEOUT_SECONDS)
    }


def test_a_client_of_an_undeclared_service_is_refused() -> None:
    with pytest.raises(ValueError, match="WORKER_SERVICES"):
        clients_module.worker_client(boto3.session.Session(region_name="us-east-1"), "kinesis")
    assert declared("sqs").endpoint is EndpointType.INTERFACE


def test_a_call_without_a_route_fails_well_inside_the_function_s_time() -> None:
    # Every attempt's connect times out, plus the backoff between attempts: seconds, not botocore's 60 s per attempt.
    assert unreachable_call_seconds() <= PlatformConfig().lambda_timeout_seconds / 4


@pytest.mark.parametrize("fixture", ["synthesized", "synthesized_kms"])
def test_each_declared_service_has_its_endpoint_in_every_stack(fixture: str, request: pytest.FixtureRequest) -> None:
    synthesized = request.getfixturevalue(fixture)
    for region, stack in synthesized["stacks"].items():
        endpoints = {e["service_name"]: e for e in stack["resource"]["aws_vpc_endpoint"].values()}
        for service in WORKER_SERVICES:
            endpoint = endpoints[f"com.amazonaws.{region}.{service.name}"]
            assert endpoint["vpc_endpoint_type"] == service.endpoint.value, (region, service)
            if service.endpoint is EndpointType.INTERFACE:
                assert endpoint["private_dns_enabled"] is True
        assert stack_findings(region, stack) == []


def without_endpoint(stack: dict[str, Any], service: str) -> dict[str, Any]:
    tampered = json.loads(json.dumps(stack))
    endpoints = tampered["resource"]["aws_vpc_endpoint"]
    (name,) = [name for name, body in endpoints.items() if body["service_name"].endswith(f".{service}")]
    del endpoints[name]
    return tampered


def test_a_missing_endpoint_is_a_finding_naming_the_stack_and_the_service(synthesized: dict[str, Any]) -> None:
    findings = stack_findings("analytics-eu-west-1-unit", without_endpoint(synthesized["stacks"]["eu-west-1"], "sqs"))
    assert len(findings) == 1
    assert findings[0].startswith("analytics-eu-west-1-unit/") and "calls sqs" in findings[0]
    assert "no sqs endpoint and no NAT route" in findings[0]


def test_an_endpoint_the_worker_cannot_use_is_a_finding(synthesized: dict[str, Any]) -> None:
    stack = json.loads(json.dumps(synthesized["stacks"]["us-east-1"]))
    resources = stack["resource"]
    glue = next(body for body in resources["aws_vpc_endpoint"].values() if body["service_name"].endswith(".glue"))
    glue["private_dns_enabled"] = False
    dynamodb = next(b for b in resources["aws_vpc_endpoint"].values() if b["service_name"].endswith(".dynamodb"))
    dynamodb["route_table_ids"] = []
    findings = stack_findings("s", stack)
    assert len(findings) == 2
    assert any("calls glue" in f and "private DNS off" in f for f in findings)
    assert any("calls dynamodb" in f and "route table" in f for f in findings)
    # WHEN the endpoints' security group admits nobody THEN every interface service is unreachable
    del resources["aws_vpc_security_group_ingress_rule"]
    unusable = {f.split("calls ")[1].split(" ")[0] for f in stack_findings("s", stack)}
    interface = {s.name for s in WORKER_SERVICES if s.endpoint is EndpointType.INTERFACE}
    assert unusable == interface | {"dynamodb"}


def test_a_nat_route_reaches_every_service(synthesized: dict[str, Any]) -> None:
    stack = without_endpoint(synthesized["stacks"]["us-east-1"], "sqs")
    (table,) = stack["resource"]["aws_route_table"]
    stack["resource"]["aws_nat_gateway"] = {"nat": {"subnet_id": "subnet-public"}}
    stack["resource"]["aws_route"] = {"default": {
        "route_table_id": f"${{aws_route_table.{table}.id}}", "destination_cidr_block": "0.0.0.0/0",
        "nat_gateway_id": "${aws_nat_gateway.nat.id}",
    }}  # fmt: skip
    assert stack_findings("s", stack) == []


def test_the_rule_itself() -> None:
    network = FunctionNetwork(
        subnet_cidrs=("10.0.0.0/20",), route_tables=frozenset({"rt"}), security_groups=frozenset({"worker"}),
        nat=False, endpoints=(
            Endpoint("s3", "Gateway", route_tables=frozenset({"rt"}), prefix_list="pl-s3"),
            Endpoint("sqs", "Interface", private_dns=True, security_groups=frozenset({"endpoints"})),
        ),
        https_in={"endpoints": frozenset({"10.0.0.0/16"})}, https_out={"worker": frozenset({"pl-s3", "endpoints"})},
    )  # fmt: skip
    assert unreachable(network, ["s3", "sqs", "glue"]) == {"glue": "the VPC has no glue endpoint and no NAT route"}
    # a CIDR that does not hold the function's subnets admits nothing; neither does a missing egress rule
    narrow = FunctionNetwork(**{**network.__dict__, "https_in": {"endpoints": frozenset({"10.1.0.0/16"})},
                                "https_out": {"worker": frozenset({"endpoints"})}})  # fmt: skip
    assert set(unreachable(narrow, ["s3", "sqs"])) == {"s3", "sqs"}


def test_tap_check_finds_it_in_an_edited_synth_output(
    synthesized: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the synth output, edited: every region's SQS endpoint removed (alike, so the regions stay consistent)
    out = tmp_path / "out"
    shutil.copytree(synthesized["outdir"], out)
    regions = list(synthesized["stacks"])
    for region in regions:
        stack_json = out / "stacks" / stack_id(region, "unit") / "cdk.tf.json"
        stack_json.write_text(json.dumps(without_endpoint(json.loads(stack_json.read_text()), "sqs")))
    config = tmp_path / "unit.toml"
    config.write_text('environment_suffix = "unit"\naccount_id = "111122223333"\n')
    # WHEN checked without a new synth
    code = cli.main(["check", "--no-synth", "--skip-checkov", "--out", str(out), "--config", str(config)])
    # THEN exactly that is reported, once per stack
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("FINDING")]
    assert code != 0 and len(printed) == len(regions)
    for region in regions:
        assert any(f"FINDING {stack_id(region, 'unit')}/" in line and "calls sqs" in line for line in printed)
