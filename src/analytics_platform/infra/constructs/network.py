"""Isolated regional network: private subnets only, no internet path, VPC endpoints, flow logs."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from cdktf import Fn, Token
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.data_aws_availability_zones import (
    DataAwsAvailabilityZones,
    DataAwsAvailabilityZonesFilter,
)
from cdktf_cdktf_provider_aws.default_security_group import DefaultSecurityGroup
from cdktf_cdktf_provider_aws.flow_log import FlowLog
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.route_table import RouteTable
from cdktf_cdktf_provider_aws.route_table_association import RouteTableAssociation
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.subnet import Subnet
from cdktf_cdktf_provider_aws.vpc import Vpc
from cdktf_cdktf_provider_aws.vpc_endpoint import VpcEndpoint
from cdktf_cdktf_provider_aws.vpc_security_group_egress_rule import VpcSecurityGroupEgressRule
from cdktf_cdktf_provider_aws.vpc_security_group_ingress_rule import VpcSecurityGroupIngressRule
from constructs import Construct

from analytics_platform.infra import iam
from analytics_platform.infra.footprint import GATEWAY_SERVICES, INTERFACE_SERVICES


def _zone(zones: DataAwsAvailabilityZones, index: int, az_ids: Sequence[str]) -> tuple[str | None, str | None]:
    """The subnet's ``(availability_zone, availability_zone_id)``: pinned by zone id (the same physical zone in
    every account) when ``az_ids`` is given, else the ``index``-th zone name of the data source (names map to
    different physical zones in each account)."""
    if az_ids:
        return None, az_ids[index]
    return Token.as_string(Fn.element(zones.names, index)), None


class Network(Construct):
    """A VPC with private subnets in ``az_count`` zones, no internet or NAT gateway.

    Exposes ``vpc``, ``subnets``, ``worker_security_group`` and ``flow_log_group``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        region: str,
        cidr: str,
        az_count: int,
        vpc_name: str,
        account_id: str,
        flow_log_group_name: str,
        flow_log_role_name: str,
        log_retention_days: int,
        az_ids: Sequence[str] = (),
        kms_key_arn: str | None = None,
    ) -> None:
        """``az_ids``: the zones by zone id, one subnet each (by default the region's first ``az_count`` zones that
        need no opt-in); ``account_id``: the only account whose flow logs may use the flow-log role;
        ``kms_key_arn``: encrypt the flow log group with this key (by default CloudWatch Logs' own)."""
        super().__init__(scope, construct_id)
        self.vpc = Vpc(
            self,
            "vpc",
            cidr_block=cidr,
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags={"Name": vpc_name},
        )
        # Emptied default security group: nothing may use it by accident.
        DefaultSecurityGroup(self, "default-sg", vpc_id=self.vpc.id, ingress=[], egress=[])

        zones = DataAwsAvailabilityZones(
            self,
            "zones",
            state="available",
            # Availability Zones only: Local and Wavelength Zones are opted in, lack services the stack uses
            # (interface endpoints, Lambda), and would be chosen by index like any other zone.
            filter=[DataAwsAvailabilityZonesFilter(name="opt-in-status", values=["opt-in-not-required"])],
        )
        subnet_blocks = list(
            ipaddress.IPv4Network(cidr).subnets(new_prefix=min(ipaddress.IPv4Network(cidr).prefixlen + 4, 28))
        )
        self.route_table = RouteTable(self, "private-routes", vpc_id=self.vpc.id, tags={"Name": f"{vpc_name}-private"})
        self.subnets: list[Subnet] = []
        for index in range(az_count):
            zone_name, zone_id = _zone(zones, index, az_ids)
            subnet = Subnet(
                self,
                f"private-{index}",
                vpc_id=self.vpc.id,
                cidr_block=str(subnet_blocks[index]),
                availability_zone=zone_name,
                availability_zone_id=zone_id,
                map_public_ip_on_launch=False,
                tags={"Name": f"{vpc_name}-private-{index}", "Tier": "private"},
            )
            RouteTableAssociation(
                self, f"private-{index}-routes", subnet_id=subnet.id, route_table_id=self.route_table.id
            )
            self.subnets.append(subnet)

        self.worker_security_group = SecurityGroup(
            self,
            "worker-sg",
            name=f"{vpc_name}-worker",
            description="ETL worker: HTTPS to this region's VPC endpoints only",
            vpc_id=self.vpc.id,
            tags={"Name": f"{vpc_name}-worker"},
        )
        self.endpoint_security_group = SecurityGroup(
            self,
            "endpoint-sg",
            name=f"{vpc_name}-endpoints",
            description="Interface VPC endpoints: HTTPS from the ETL worker only",
            vpc_id=self.vpc.id,
            tags={"Name": f"{vpc_name}-endpoints"},
        )
        VpcSecurityGroupIngressRule(
            self,
            "endpoint-ingress",
            security_group_id=self.endpoint_security_group.id,
            referenced_security_group_id=self.worker_security_group.id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            description="HTTPS from the ETL worker",
        )
        VpcSecurityGroupEgressRule(
            self,
            "worker-to-endpoints",
            security_group_id=self.worker_security_group.id,
            referenced_security_group_id=self.endpoint_security_group.id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            description="HTTPS to interface endpoints",
        )
        self.endpoints: dict[str, VpcEndpoint] = {}
        previous: list[VpcEndpoint] = []
        for service in GATEWAY_SERVICES:
            endpoint = VpcEndpoint(
                self,
                f"{service}-endpoint",
                vpc_id=self.vpc.id,
                service_name=f"com.amazonaws.{region}.{service}",
                vpc_endpoint_type="Gateway",
                route_table_ids=[self.route_table.id],
                tags={"Name": f"{vpc_name}-{service}"},
                # One at a time: both endpoints edit the same route table (and moto races otherwise).
                depends_on=list(previous),
            )
            previous = [endpoint]
            VpcSecurityGroupEgressRule(
                self,
                f"worker-to-{service}",
                security_group_id=self.worker_security_group.id,
                prefix_list_id=endpoint.prefix_list_id,
                ip_protocol="tcp",
                from_port=443,
                to_port=443,
                description=f"HTTPS to the {service} gateway endpoint",
            )
            self.endpoints[service] = endpoint
        for service in INTERFACE_SERVICES:
            self.endpoints[service] = VpcEndpoint(
                self,
                f"{service}-endpoint",
                vpc_id=self.vpc.id,
                service_name=f"com.amazonaws.{region}.{service}",
                vpc_endpoint_type="Interface",
                # The SDK's default hostname must resolve to the endpoint: the worker sets no endpoint URL.
                private_dns_enabled=True,
                subnet_ids=[s.id for s in self.subnets],
                security_group_ids=[self.endpoint_security_group.id],
                tags={"Name": f"{vpc_name}-{service}"},
            )

        self.flow_log_group = CloudwatchLogGroup(
            self, "flow-log-group", name=flow_log_group_name, retention_in_days=log_retention_days,
            kms_key_id=kms_key_arn,
        )  # fmt: skip
        flow_role = IamRole(
            self,
            "flow-log-role",
            name=flow_log_role_name,
            # Confused deputy: the service assumes the role only for flow logs of this account.
            assume_role_policy=iam.assume_role_document("vpc-flow-logs.amazonaws.com", source_account=account_id),
        )
        IamRolePolicy(
            self,
            "flow-log-policy",
            name="write-flow-logs",
            role=flow_role.id,
            policy=iam.policy_document(
                [iam.write_own_logs(self.flow_log_group.arn, actions=iam.FLOW_LOGS_WRITE_ACTIONS)]
            ),
        )
        FlowLog(
            self,
            "flow-log",
            vpc_id=self.vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=self.flow_log_group.arn,
            iam_role_arn=flow_role.arn,
            max_aggregation_interval=60,
        )

    @property
    def subnet_ids(self) -> Sequence[str]:
        """IDs of the private subnets."""
        return [subnet.id for subnet in self.subnets]
