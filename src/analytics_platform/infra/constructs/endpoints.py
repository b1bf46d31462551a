"""The network's way to AWS without the internet: the worker's and the endpoints' security groups (HTTPS from one to
the other only), gateway endpoints on the private route table and interface endpoints in the private subnets."""

from __future__ import annotations

from collections.abc import Sequence

from cdktf_cdktf_provider_aws.route_table import RouteTable
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.subnet import Subnet
from cdktf_cdktf_provider_aws.vpc import Vpc
from cdktf_cdktf_provider_aws.vpc_endpoint import VpcEndpoint
from cdktf_cdktf_provider_aws.vpc_security_group_egress_rule import VpcSecurityGroupEgressRule
from cdktf_cdktf_provider_aws.vpc_security_group_ingress_rule import VpcSecurityGroupIngressRule
from constructs import Construct

from analytics_platform.infra.footprint import GATEWAY_SERVICES, INTERFACE_SERVICES


def endpoint_security_groups(scope: Construct, *, vpc: Vpc, vpc_name: str) -> tuple[SecurityGroup, SecurityGroup]:
    """``(worker, endpoints)`` security groups, created in ``scope``: HTTPS from the worker to the interface endpoints
    and nothing else between them (the gateway endpoints' rules come with :func:`vpc_endpoints`)."""
    worker = SecurityGroup(
        scope,
        "worker-sg",
        name=f"{vpc_name}-worker",
        description="ETL worker: HTTPS to this region's VPC endpoints only",
        vpc_id=vpc.id,
        tags={"Name": f"{vpc_name}-worker"},
    )
    endpoints = SecurityGroup(
        scope,
        "endpoint-sg",
        name=f"{vpc_name}-endpoints",
        description="Interface VPC endpoints: HTTPS from the ETL worker only",
        vpc_id=vpc.id,
        tags={"Name": f"{vpc_name}-endpoints"},
    )
    VpcSecurityGroupIngressRule(
        scope,
        "endpoint-ingress",
        security_group_id=endpoints.id,
        referenced_security_group_id=worker.id,
        ip_protocol="tcp",
        from_port=443,
        to_port=443,
        description="HTTPS from the ETL worker",
    )
    VpcSecurityGroupEgressRule(
        scope,
        "worker-to-endpoints",
        security_group_id=worker.id,
        referenced_security_group_id=endpoints.id,
        ip_protocol="tcp",
        from_port=443,
        to_port=443,
        description="HTTPS to interface endpoints",
    )
    return worker, endpoints


def vpc_endpoints(
    scope: Construct, *, region: str, vpc: Vpc, vpc_name: str, route_table: RouteTable, subnets: Sequence[Subnet],
    worker_security_group: SecurityGroup, endpoint_security_group: SecurityGroup,
) -> dict[str, VpcEndpoint]:  # fmt: skip
    """Every endpoint by service, created in ``scope``: the gateway ones (one at a time, each with the worker's egress
    rule to its prefix list), then the interface ones."""
    endpoints: dict[str, VpcEndpoint] = {}
    previous: list[VpcEndpoint] = []
    for service in GATEWAY_SERVICES:
        endpoint = VpcEndpoint(
            scope,
            f"{service}-endpoint",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{region}.{service}",
            vpc_endpoint_type="Gateway",
            route_table_ids=[route_table.id],
            tags={"Name": f"{vpc_name}-{service}"},
            # One at a time: both endpoints edit the same route table (and moto races otherwise).
            depends_on=list(previous),
        )
        previous = [endpoint]
        VpcSecurityGroupEgressRule(
            scope,
            f"worker-to-{service}",
            security_group_id=worker_security_group.id,
            prefix_list_id=endpoint.prefix_list_id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            description=f"HTTPS to the {service} gateway endpoint",
        )
        endpoints[service] = endpoint
    for service in INTERFACE_SERVICES:
        endpoints[service] = VpcEndpoint(
            scope,
            f"{service}-endpoint",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{region}.{service}",
            vpc_endpoint_type="Interface",
            # The SDK's default hostname must resolve to the endpoint: the worker sets no endpoint URL.
            private_dns_enabled=True,
            subnet_ids=[s.id for s in subnets],
            security_group_ids=[endpoint_security_group.id],
            tags={"Name": f"{vpc_name}-{service}"},
        )
    return endpoints
