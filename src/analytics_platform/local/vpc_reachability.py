"""The local runtime holds a VPC function to the routes its applied stack gives it, as AWS does.

On the local machine every service answers on the one local endpoint, so a function would reach services its
VPC has no route to. Here the facts come from the EC2 API of the applied stack (subnets, route tables, VPC
endpoints, security groups of the function's VPC), the rule from :mod:`analytics_platform.infra.reachability`;
the function's client for a service without a route is pointed (``AWS_ENDPOINT_URL_<SERVICE>``, which boto3
prefers to ``AWS_ENDPOINT_URL``) at a :class:`Blackhole`, where a connect times out as it does on AWS.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import botocore.session
from botocore.exceptions import BotoCoreError, ClientError

from analytics_platform.etl.clients import WORKER_SERVICES
from analytics_platform.infra.reachability import (
    ANYWHERE,
    MAIN_ROUTE_TABLE,
    Endpoint,
    FunctionNetwork,
    carries_https,
    unreachable,
)

#: Endpoints in these states carry no traffic.
GONE_STATES = frozenset({"deleting", "deleted", "rejected", "failed", "expired"})
#: How long a function's routes are trusted before the EC2 API is read again (an endpoint deleted now is
#: noticed by the invocations after this).
ROUTES_TTL_SECONDS = 2.0
#: What a function is checked for: every service the worker declares.
DECLARED_SERVICES = tuple(service.name for service in WORKER_SERVICES)
#: Connections made to the blackhole itself, filling its accept queue so the kernel drops every later SYN.
_FILLERS = 2


class Blackhole:
    """A local address where a TCP connect never completes: a listener that never accepts, its queue full.

    Linux drops a SYN to a listener whose accept queue is full, so a client's connect times out (botocore:
    ``ConnectTimeoutError``) exactly like a packet to an AWS address that a VPC without a route drops.
    """

    def __init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(0)
        self.port = int(self._listener.getsockname()[1])
        self._fillers: list[socket.socket] = []
        for _ in range(_FILLERS):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", self.port))
            self._fillers.append(filler)

    @property
    def url(self) -> str:
        """The endpoint URL that times out."""
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        """Release the sockets."""
        for filler in self._fillers:
            filler.close()
        self._listener.close()


def endpoint_variable(service: str) -> str:
    """boto3's per-service endpoint variable: ``AWS_ENDPOINT_URL_`` + the service id, upper case, ``_`` for spaces."""
    service_id = botocore.session.get_session().get_service_model(service).service_id
    return "AWS_ENDPOINT_URL_" + str(service_id).upper().replace(" ", "_").replace("-", "_")


def _https_peers(permission: Mapping[str, Any]) -> set[str]:
    peers = {pair["GroupId"] for pair in permission.get("UserIdGroupPairs", []) if pair.get("GroupId")}
    peers |= {block["CidrIp"] for block in permission.get("IpRanges", []) if block.get("CidrIp")}
    peers |= {entry["PrefixListId"] for entry in permission.get("PrefixListIds", []) if entry.get("PrefixListId")}
    return peers


def _security_group_rules(groups: Sequence[Mapping[str, Any]]) -> tuple[dict[str, frozenset[str]], ...]:
    https_in: dict[str, frozenset[str]] = {}
    https_out: dict[str, frozenset[str]] = {}
    for group in groups:
        for key, into in (("IpPermissions", https_in), ("IpPermissionsEgress", https_out)):
            peers: set[str] = set()
            for permission in group.get(key, []):
                if carries_https(permission.get("IpProtocol"), permission.get("FromPort"), permission.get("ToPort")):
                    peers |= _https_peers(permission)
            into[group["GroupId"]] = frozenset(peers)
    return https_in, https_out


def _route_tables(tables: Sequence[Mapping[str, Any]], subnet_ids: Sequence[str]) -> tuple[frozenset[str], bool]:
    """The route tables of ``subnet_ids`` (explicit association, else the main table) and whether all of them
    send the default route through a NAT gateway."""
    explicit: dict[str, str] = {}
    main = MAIN_ROUTE_TABLE
    nat: set[str] = set()
    for table in tables:
        for association in table.get("Associations", []):
            if association.get("Main"):
                main = table["RouteTableId"]
            elif association.get("SubnetId"):
                explicit[association["SubnetId"]] = table["RouteTableId"]
        if any(r.get("NatGatewayId") and r.get("DestinationCidrBlock") == ANYWHERE for r in table.get("Routes", [])):
            nat.add(table["RouteTableId"])
    used = frozenset(explicit.get(subnet, main) for subnet in subnet_ids)
    return used, bool(used) and used <= nat


def _endpoints(ec2: Any, vpc_id: str) -> tuple[Endpoint, ...]:
    found = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}]).get("VpcEndpoints", [])
    endpoints = []
    for endpoint in found:
        if str(endpoint.get("State", "available")).lower() in GONE_STATES:
            continue
        prefix_list = None
        if str(endpoint.get("VpcEndpointType", "")).lower() == "gateway":
            lists = ec2.describe_prefix_lists(
                Filters=[{"Name": "prefix-list-name", "Values": [endpoint["ServiceName"]]}]
            ).get("PrefixLists", [])
            prefix_list = lists[0]["PrefixListId"] if lists else None
        endpoints.append(
            Endpoint(
                service=endpoint["ServiceName"].rsplit(".", 1)[-1],
                endpoint_type=str(endpoint.get("VpcEndpointType", "Gateway")),
                private_dns=bool(endpoint.get("PrivateDnsEnabled")),
                route_tables=frozenset(endpoint.get("RouteTableIds", [])),
                security_groups=frozenset(group["GroupId"] for group in endpoint.get("Groups", [])),
                prefix_list=prefix_list,
            )
        )
    return tuple(endpoints)


def function_network(ec2: Any, subnet_ids: Sequence[str], security_group_ids: Sequence[str]) -> FunctionNetwork:
    """The :class:`FunctionNetwork` of a function in ``subnet_ids`` with ``security_group_ids``, as applied."""
    subnets = ec2.describe_subnets(SubnetIds=list(subnet_ids))["Subnets"]
    vpc_id = subnets[0]["VpcId"]
    vpc_filter = [{"Name": "vpc-id", "Values": [vpc_id]}]
    route_tables, nat = _route_tables(ec2.describe_route_tables(Filters=vpc_filter)["RouteTables"], subnet_ids)
    https_in, https_out = _security_group_rules(ec2.describe_security_groups(Filters=vpc_filter)["SecurityGroups"])
    return FunctionNetwork(
        subnet_cidrs=tuple(subnet["CidrBlock"] for subnet in subnets),
        route_tables=route_tables,
        security_groups=frozenset(security_group_ids),
        nat=nat,
        endpoints=_endpoints(ec2, vpc_id),
        https_in=https_in,
        https_out=https_out,
    )


class FunctionRoutes:
    """Per function: the environment that sends its calls to services without a route into the blackhole.

    Read from the EC2 API at most every :data:`ROUTES_TTL_SECONDS`; each change is journaled as
    ``{"event": "unreachable", "services": {service: why}}``.
    """

    def __init__(
        self, *, ec2: Callable[[], Any], function: str, region: str, subnet_ids: Sequence[str],
        security_group_ids: Sequence[str], blackhole_url: str, record: Callable[[dict[str, Any]], None],
        services: Sequence[str] = DECLARED_SERVICES,
    ) -> None:  # fmt: skip
        self._ec2 = ec2
        self._function = function
        self._region = region
        self._subnet_ids = tuple(subnet_ids)
        self._security_group_ids = tuple(security_group_ids)
        self._blackhole_url = blackhole_url
        self._record = record
        self._services = tuple(services)
        self._lock = threading.Lock()
        self._read_at = float("-inf")
        self._missing: dict[str, str] | None = None

    def missing(self) -> dict[str, str]:
        """``{service: why}`` for each service without a route, as the applied stack is now."""
        with self._lock:
            if self._missing is None or time.monotonic() - self._read_at > ROUTES_TTL_SECONDS:
                try:
                    network = function_network(self._ec2(), self._subnet_ids, self._security_group_ids)
                except (BotoCoreError, ClientError):
                    if self._missing is None:
                        raise
                    return dict(self._missing)  # the endpoint is busy (or the stack mid-destroy): last known routes
                missing = unreachable(network, self._services)
                if missing != self._missing:
                    self._record({"event": "unreachable", "function": self._function, "region": self._region,
                                  "services": missing, "at": time.time()})  # fmt: skip
                self._missing, self._read_at = missing, time.monotonic()
            return dict(self._missing)

    def environment(self) -> dict[str, str]:
        """The variables that send each unreachable service's calls to the blackhole."""
        return {endpoint_variable(service): self._blackhole_url for service in sorted(self.missing())}
