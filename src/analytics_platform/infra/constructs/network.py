"""Isolated regional network: private subnets only, no internet path, VPC endpoints, flow logs.

The parts are created by :mod:`.subnets`, :mod:`.endpoints` and :mod:`.flow_logs` inside this construct, so their
Terraform ids are the network's own.
"""

from __future__ import annotations

from collections.abc import Sequence

from cdktf_cdktf_provider_aws.default_security_group import DefaultSecurityGroup
from cdktf_cdktf_provider_aws.vpc import Vpc
from constructs import Construct

from analytics_platform.infra.constructs.endpoints import endpoint_security_groups, vpc_endpoints
from analytics_platform.infra.constructs.flow_logs import flow_logs
from analytics_platform.infra.constructs.subnets import private_subnets


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

        self.route_table, self.subnets = private_subnets(
            self, vpc=self.vpc, cidr=cidr, az_count=az_count, az_ids=az_ids, vpc_name=vpc_name
        )
        self.worker_security_group, self.endpoint_security_group = endpoint_security_groups(
            self, vpc=self.vpc, vpc_name=vpc_name
        )
        self.endpoints = vpc_endpoints(
            self, region=region, vpc=self.vpc, vpc_name=vpc_name, route_table=self.route_table, subnets=self.subnets,
            worker_security_group=self.worker_security_group, endpoint_security_group=self.endpoint_security_group,
        )  # fmt: skip
        self.flow_log_group = flow_logs(
            self, vpc=self.vpc, account_id=account_id, log_group_name=flow_log_group_name,
            role_name=flow_log_role_name, log_retention_days=log_retention_days, kms_key_arn=kms_key_arn,
        )  # fmt: skip

    @property
    def subnet_ids(self) -> Sequence[str]:
        """IDs of the private subnets."""
        return [subnet.id for subnet in self.subnets]
