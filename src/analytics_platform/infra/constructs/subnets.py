"""The network's private subnets: one per zone, carved from the VPC block, sharing one route table with no route
out of the VPC (the gateway endpoints add theirs)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from cdktf import Fn, Token
from cdktf_cdktf_provider_aws.data_aws_availability_zones import (
    DataAwsAvailabilityZones,
    DataAwsAvailabilityZonesFilter,
)
from cdktf_cdktf_provider_aws.route_table import RouteTable
from cdktf_cdktf_provider_aws.route_table_association import RouteTableAssociation
from cdktf_cdktf_provider_aws.subnet import Subnet
from cdktf_cdktf_provider_aws.vpc import Vpc
from constructs import Construct


def _zone(zones: DataAwsAvailabilityZones, index: int, az_ids: Sequence[str]) -> tuple[str | None, str | None]:
    """The subnet's ``(availability_zone, availability_zone_id)``: pinned by zone id (the same physical zone in
    every account) when ``az_ids`` is given, else the ``index``-th zone name of the data source (names map to
    different physical zones in each account)."""
    if az_ids:
        return None, az_ids[index]
    return Token.as_string(Fn.element(zones.names, index)), None


def private_subnets(
    scope: Construct, *, vpc: Vpc, cidr: str, az_count: int, az_ids: Sequence[str], vpc_name: str
) -> tuple[RouteTable, list[Subnet]]:
    """The zones' data source, the private route table and ``az_count`` subnets, each associated with it, created in
    ``scope`` (the network: their ids are the network's own)."""
    zones = DataAwsAvailabilityZones(
        scope,
        "zones",
        state="available",
        # Availability Zones only: Local and Wavelength Zones are opted in, lack services the stack uses
        # (interface endpoints, Lambda), and would be chosen by index like any other zone.
        filter=[DataAwsAvailabilityZonesFilter(name="opt-in-status", values=["opt-in-not-required"])],
    )
    subnet_blocks = list(
        ipaddress.IPv4Network(cidr).subnets(new_prefix=min(ipaddress.IPv4Network(cidr).prefixlen + 4, 28))
    )
    route_table = RouteTable(scope, "private-routes", vpc_id=vpc.id, tags={"Name": f"{vpc_name}-private"})
    subnets: list[Subnet] = []
    for index in range(az_count):
        zone_name, zone_id = _zone(zones, index, az_ids)
        subnet = Subnet(
            scope,
            f"private-{index}",
            vpc_id=vpc.id,
            cidr_block=str(subnet_blocks[index]),
            availability_zone=zone_name,
            availability_zone_id=zone_id,
            map_public_ip_on_launch=False,
            tags={"Name": f"{vpc_name}-private-{index}", "Tier": "private"},
        )
        RouteTableAssociation(scope, f"private-{index}-routes", subnet_id=subnet.id, route_table_id=route_table.id)
        subnets.append(subnet)
    return route_table, subnets
