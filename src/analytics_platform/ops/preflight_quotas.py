"""The quota checks of ``tap preflight``: Lambda's unreserved concurrency, VPCs per Region and interface endpoints
per VPC, each against what the stack adds (see :mod:`.preflight_checks` for the others)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from analytics_platform.infra.footprint import INTERFACE_SERVICES, VPCS_PER_STACK
from analytics_platform.ops.preflight_checks import Outcome, RegionProbe

#: Lambda always keeps this many concurrent executions unreserved in a region (a reservation may not go below it).
UNRESERVED_MINIMUM = 100
#: Service Quotas codes: Lambda concurrent executions, VPCs per Region, interface VPC endpoints per VPC.
LAMBDA_CONCURRENCY_QUOTA = ("lambda", "L-B99A9384")
VPC_QUOTA = ("vpc", "L-F678F1CE")
INTERFACE_ENDPOINT_QUOTA = ("vpc", "L-29B6F2EB")


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _function_reservation(probe: RegionProbe) -> int:
    """The reservation the stack's function holds now (0 before the first deploy)."""
    try:
        found = probe.client("lambda").get_function_concurrency(FunctionName=probe.names.function)
    except ClientError as error:
        if _code(error) != "ResourceNotFoundException":
            raise
        return 0
    return int(found.get("ReservedConcurrentExecutions") or 0)


def lambda_concurrency(probe: RegionProbe) -> Outcome:
    """After this stack's reservation, the region keeps at least Lambda's unreserved minimum."""
    limits = probe.client("lambda").get_account_settings()["AccountLimit"]
    limit, unreserved = int(limits["ConcurrentExecutions"]), int(limits["UnreservedConcurrentExecutions"])
    wanted = probe.deployment.config.lambda_reserved_concurrency
    # the function's own reservation (a redeploy) returns to the pool before the new one is taken
    left = unreserved + _function_reservation(probe) - wanted
    detail = (
        f"quota {limit}, {unreserved} unreserved; reserving {wanted} leaves {left} (AWS keeps {UNRESERVED_MINIMUM})"
    )
    if left >= UNRESERVED_MINIMUM:
        return Outcome(True, detail)
    service, code = LAMBDA_CONCURRENCY_QUOTA
    needed = limit + UNRESERVED_MINIMUM - left
    most = wanted - (UNRESERVED_MINIMUM - left)
    lower = f", or lower lambda_reserved_concurrency to {most}" if most >= 2 else ""
    return Outcome(
        False,
        detail,
        f"ask for a Lambda concurrent executions quota of at least {needed} in {probe.region} (aws service-quotas "
        f"request-service-quota-increase --service-code {service} --quota-code {code} --desired-value {needed} "
        f"--region {probe.region}){lower}",
    )


def _quota(probe: RegionProbe, service: str, code: str) -> float | None:
    """The applied quota, else AWS's default (Service Quotas knows applied values only for some), else None."""
    quotas = probe.client("service-quotas")
    try:
        return float(quotas.get_service_quota(ServiceCode=service, QuotaCode=code)["Quota"]["Value"])
    except ClientError as error:
        if _code(error) != "NoSuchResourceException":
            return None  # not readable with these credentials: the check says so and passes
    try:
        return float(quotas.get_aws_default_service_quota(ServiceCode=service, QuotaCode=code)["Quota"]["Value"])
    except ClientError:
        return None


def _vpcs(probe: RegionProbe) -> list[dict[str, Any]]:
    pages = probe.client("ec2").get_paginator("describe_vpcs").paginate()
    return [vpc for page in pages for vpc in page.get("Vpcs", [])]


def _our_vpc(vpcs: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((v for v in vpcs if {"Key": "Name", "Value": name} in v.get("Tags", [])), None)


def _within_quota(probe: RegionProbe, quota_key: tuple[str, str], used: int, needed: int, detail: str) -> Outcome:
    """``used + needed`` against the quota, which passes with a note when these credentials cannot read it."""
    quota = _quota(probe, *quota_key)
    if quota is None:
        return Outcome(True, f"{detail}; quota not readable (servicequotas:GetServiceQuota), not checked")
    if used + needed <= quota:
        return Outcome(True, f"{detail}; quota {quota:g}")
    service, code = quota_key
    return Outcome(False, f"{detail}; quota {quota:g}", f"free some up, or ask for {used + needed} (aws service-quotas "
                   f"request-service-quota-increase --service-code {service} --quota-code {code} --desired-value "
                   f"{used + needed} --region {probe.region})")  # fmt: skip


def vpc_quota(probe: RegionProbe) -> Outcome:
    """The region has room for the stack's VPC (VPCs per Region)."""
    vpcs = _vpcs(probe)
    needed = 0 if _our_vpc(vpcs, probe.names.vpc) else VPCS_PER_STACK
    return _within_quota(probe, VPC_QUOTA, len(vpcs), needed, f"{len(vpcs)} VPC(s) in use, the stack adds {needed}")


def interface_endpoint_quota(probe: RegionProbe) -> Outcome:
    """The stack's VPC can hold its interface endpoints (interface VPC endpoints per VPC)."""
    needed = len(INTERFACE_SERVICES)
    ours = _our_vpc(_vpcs(probe), probe.names.vpc)
    others = 0
    if ours is not None:  # endpoints someone added to the stack's VPC count against the same quota
        filters = [
            {"Name": "vpc-id", "Values": [ours["VpcId"]]},
            {"Name": "vpc-endpoint-type", "Values": ["Interface"]},
        ]
        found = probe.client("ec2").describe_vpc_endpoints(Filters=filters).get("VpcEndpoints", [])
        mine = {f"com.amazonaws.{probe.region}.{service}" for service in INTERFACE_SERVICES}
        others = len([e for e in found if e.get("ServiceName") not in mine])
    detail = f"the stack needs {needed} per VPC" + (f", {others} other(s) in its VPC" if others else "")
    return _within_quota(probe, INTERFACE_ENDPOINT_QUOTA, others, needed, detail)
