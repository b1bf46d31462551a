"""Whether a function in a VPC can reach each AWS service it calls: one rule, two sources of facts.

A function in private subnets without a NAT route reaches a service only through a VPC endpoint, and only when
the endpoint is usable from the function: a gateway endpoint on the route table of every subnet of the function
and an HTTPS egress rule to its prefix list; an interface endpoint with private DNS (the SDK's default hostname
must resolve to it) and security groups that let HTTPS from the function's security groups in (and theirs out).
Anything else times out on AWS.

:func:`unreachable` applies that rule to a :class:`FunctionNetwork`. ``tap check`` builds one from the synthesized
JSON (:func:`stack_findings`, no cdktf import), the local runtime from the EC2 API of the applied stack
(``local.vpc_reachability``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import analytics_platform.etl as etl_package
from analytics_platform.etl.clients import WORKER_SERVICES

HTTPS_PORT = 443
ANYWHERE = "0.0.0.0/0"
#: A subnet without an explicit association uses its VPC's main route table.
MAIN_ROUTE_TABLE = "main"


@dataclass(frozen=True)
class Endpoint:
    """A VPC endpoint of the function's VPC, as far as reachability goes."""

    service: str
    endpoint_type: str
    private_dns: bool = False
    route_tables: frozenset[str] = frozenset()
    security_groups: frozenset[str] = frozenset()
    #: A gateway endpoint's prefix list (what an egress rule to it names).
    prefix_list: str | None = None


@dataclass(frozen=True)
class FunctionNetwork:
    """What decides which services a VPC function reaches.

    ``https_in`` / ``https_out``: for each security group, the peers (security group ids, prefix list ids, CIDRs)
    it admits HTTPS from / lets HTTPS out to.
    """

    subnet_cidrs: tuple[str, ...]
    route_tables: frozenset[str]
    security_groups: frozenset[str]
    nat: bool
    endpoints: tuple[Endpoint, ...]
    https_in: Mapping[str, frozenset[str]] = field(default_factory=dict)
    https_out: Mapping[str, frozenset[str]] = field(default_factory=dict)


def service_of(service_name: str) -> str:
    """``com.amazonaws.<region>.sqs`` -> ``sqs``."""
    return service_name.rsplit(".", 1)[-1]


def carries_https(protocol: object, from_port: object, to_port: object) -> bool:
    """Whether a security group rule's protocol and port range include HTTPS."""
    if str(protocol) in {"-1", "all"}:
        return True
    if str(protocol) not in {"tcp", "6"}:
        return False
    try:
        return int(str(from_port)) <= HTTPS_PORT <= int(str(to_port))
    except ValueError:
        return False


def _covers(peer: str, cidrs: Iterable[str]) -> bool:
    """Whether ``peer`` is a CIDR holding every one of ``cidrs``."""
    try:
        network = ipaddress.ip_network(peer, strict=False)
        inner = [ipaddress.ip_network(cidr, strict=False) for cidr in cidrs]
    except ValueError:
        return False
    return bool(inner) and all(
        block.version == network.version and block.subnet_of(network)  # type: ignore[arg-type]
        for block in inner
    )


def _endpoint_problem(network: FunctionNetwork, endpoint: Endpoint) -> str | None:
    """Why ``endpoint`` does not carry the function's calls (None: it does)."""
    out_peers = frozenset().union(*(network.https_out.get(g, frozenset()) for g in network.security_groups))
    if endpoint.endpoint_type.lower() == "gateway":
        if not network.route_tables <= endpoint.route_tables:
            return f"its {endpoint.service} gateway endpoint is not on the route table of every subnet of the function"
        if not (endpoint.prefix_list in out_peers or ANYWHERE in out_peers):
            return f"the function's security groups let no HTTPS out to the {endpoint.service} gateway endpoint"
        return None
    if not endpoint.private_dns:
        return (
            f"its {endpoint.service} interface endpoint has private DNS off, so the SDK's hostname resolves to the "
            "public address"
        )
    in_peers = frozenset().union(*(network.https_in.get(g, frozenset()) for g in endpoint.security_groups))
    if not (in_peers & network.security_groups or any(_covers(p, network.subnet_cidrs) for p in in_peers)):
        return f"the {endpoint.service} endpoint's security groups admit no HTTPS from the function's"
    if not (out_peers & endpoint.security_groups or any(_covers(p, network.subnet_cidrs) for p in out_peers)):
        return f"the function's security groups let no HTTPS out to the {endpoint.service} endpoint"
    return None


def unreachable(network: FunctionNetwork, services: Iterable[str]) -> dict[str, str]:
    """``{service: why}`` for each of ``services`` the function has no route to."""
    if network.nat:
        return {}
    missing: dict[str, str] = {}
    for service in services:
        candidates = [endpoint for endpoint in network.endpoints if endpoint.service == service]
        if not candidates:
            missing[service] = f"the VPC has no {service} endpoint and no NAT route"
            continue
        problems = [_endpoint_problem(network, endpoint) for endpoint in candidates]
        if all(problems):
            missing[service] = "; ".join(p for p in problems if p)
    return missing


# --- the synthesized JSON (tap check) ------------------------------------------------------------------------
def _resources(stack: Mapping[str, Any], resource_type: str) -> Iterator[tuple[str, dict[str, Any]]]:
    yield from stack.get("resource", {}).get(resource_type, {}).items()


def _ref(resource_type: str, name: str, attribute: str = "id") -> str:
    """How cdktf writes a reference to another resource's attribute."""
    return f"${{{resource_type}.{name}.{attribute}}}"


def _listed(value: object) -> list[str]:
    if value is None:
        return []
    return [str(item) for item in value] if isinstance(value, list) else [str(value)]


def _rule_peers(body: Mapping[str, Any], *keys: str) -> frozenset[str]:
    return frozenset(peer for key in keys for peer in _listed(body.get(key)))


def _security_group_rules(stack: Mapping[str, Any]) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """HTTPS peers per security group, from inline rules and from each kind of separate rule resource."""
    https_in: dict[str, set[str]] = {}
    https_out: dict[str, set[str]] = {}
    peer_keys = ("security_groups", "cidr_blocks", "prefix_list_ids")
    for name, body in _resources(stack, "aws_security_group"):
        group = _ref("aws_security_group", name)
        for direction, into in (("ingress", https_in), ("egress", https_out)):
            for rule in body.get(direction) or []:
                if carries_https(rule.get("protocol"), rule.get("from_port"), rule.get("to_port")):
                    into.setdefault(group, set()).update(_rule_peers(rule, *peer_keys))
    for resource_type, into in (
        ("aws_vpc_security_group_ingress_rule", https_in), ("aws_vpc_security_group_egress_rule", https_out),
    ):  # fmt: skip
        for _, body in _resources(stack, resource_type):
            if carries_https(body.get("ip_protocol"), body.get("from_port"), body.get("to_port")):
                peers = _rule_peers(body, "referenced_security_group_id", "cidr_ipv4", "prefix_list_id")
                into.setdefault(str(body.get("security_group_id")), set()).update(peers)
    for _, body in _resources(stack, "aws_security_group_rule"):
        if carries_https(body.get("protocol"), body.get("from_port"), body.get("to_port")):
            into = https_in if body.get("type") == "ingress" else https_out
            peers = _rule_peers(body, "source_security_group_id", "cidr_blocks", "prefix_list_ids")
            into.setdefault(str(body.get("security_group_id")), set()).update(peers)
    return https_in, https_out


def _nat_route_tables(stack: Mapping[str, Any]) -> set[str]:
    """Route tables with a default route through a NAT gateway."""
    tables = {
        str(body.get("route_table_id"))
        for _, body in _resources(stack, "aws_route")
        if body.get("nat_gateway_id") and body.get("destination_cidr_block") == ANYWHERE
    }
    for name, body in _resources(stack, "aws_route_table"):
        if any(r.get("nat_gateway_id") and r.get("cidr_block") == ANYWHERE for r in body.get("route") or []):
            tables.add(_ref("aws_route_table", name))
    return tables


def stack_network(stack: Mapping[str, Any], vpc_config: Mapping[str, Any]) -> FunctionNetwork:
    """The :class:`FunctionNetwork` of a function with ``vpc_config`` in a synthesized stack."""
    subnets = _listed(vpc_config.get("subnet_ids"))
    subnet_bodies = {_ref("aws_subnet", name): body for name, body in _resources(stack, "aws_subnet")}
    associations = {
        str(body.get("subnet_id")): str(body.get("route_table_id"))
        for _, body in _resources(stack, "aws_route_table_association")
    }
    vpcs = {str(subnet_bodies.get(s, {}).get("vpc_id")) for s in subnets}
    route_tables = frozenset(associations.get(subnet, MAIN_ROUTE_TABLE) for subnet in subnets)
    endpoints = tuple(
        Endpoint(
            service=service_of(str(body.get("service_name", ""))),
            endpoint_type=str(body.get("vpc_endpoint_type", "Gateway")),
            private_dns=bool(body.get("private_dns_enabled")),
            route_tables=frozenset(_listed(body.get("route_table_ids"))),
            security_groups=frozenset(_listed(body.get("security_group_ids"))),
            prefix_list=_ref("aws_vpc_endpoint", name, "prefix_list_id"),
        )
        for name, body in _resources(stack, "aws_vpc_endpoint")
        if str(body.get("vpc_id")) in vpcs
    )
    https_in, https_out = _security_group_rules(stack)
    return FunctionNetwork(
        subnet_cidrs=tuple(str(subnet_bodies.get(s, {}).get("cidr_block", "")) for s in subnets),
        route_tables=route_tables,
        security_groups=frozenset(_listed(vpc_config.get("security_group_ids"))),
        nat=bool(route_tables) and route_tables <= _nat_route_tables(stack),
        endpoints=endpoints,
        https_in={group: frozenset(peers) for group, peers in https_in.items()},
        https_out={group: frozenset(peers) for group, peers in https_out.items()},
    )


def is_worker(function: Mapping[str, Any]) -> bool:
    """Whether a synthesized function runs the worker (its handler is in the ``etl`` package)."""
    return str(function.get("handler", "")).startswith(f"{etl_package.__name__}.")


def stack_findings(stack_name: str, stack: Mapping[str, Any]) -> list[str]:
    """One finding per service the worker calls from its VPC without a route, naming the stack and the service."""
    findings = []
    for name, function in _resources(stack, "aws_lambda_function"):
        vpc_configs = function.get("vpc_config")
        vpc_config = vpc_configs[0] if isinstance(vpc_configs, list) and vpc_configs else vpc_configs
        if not is_worker(function) or not vpc_config:
            continue  # outside a VPC a function reaches every public endpoint
        missing = unreachable(stack_network(stack, vpc_config), [s.name for s in WORKER_SERVICES])
        used_for = {s.name: s.used_for for s in WORKER_SERVICES}
        findings += [
            f"{stack_name}/{name}: the worker calls {service} ({used_for[service]}) from its VPC, but {why}: "
            "every such call times out"
            for service, why in missing.items()
        ]
    return findings
