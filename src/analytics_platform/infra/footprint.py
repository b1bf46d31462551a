"""What one regional stack takes from its account's quotas, in plain Python (no cdktf import).

The network construct builds from these constants and ``tap preflight`` checks the account's quotas against them,
so the check can never count other endpoints than the stack creates.
"""

from __future__ import annotations

from analytics_platform.etl.clients import WORKER_SERVICES, EndpointType

# The worker declares what it calls (``etl.clients``); without NAT each of those needs its endpoint.
#: Gateway endpoints: free, route-table based; the worker's S3 and DynamoDB traffic stays in-region.
GATEWAY_SERVICES: tuple[str, ...] = tuple(s.name for s in WORKER_SERVICES if s.endpoint is EndpointType.GATEWAY)
#: Interface endpoints for the other services the worker calls (SQS, the Glue catalog, X-Ray ...).
INTERFACE_SERVICES: tuple[str, ...] = tuple(s.name for s in WORKER_SERVICES if s.endpoint is EndpointType.INTERFACE)
#: VPCs one regional stack creates.
VPCS_PER_STACK = 1
