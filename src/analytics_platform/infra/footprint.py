"""What one regional stack takes from its account's quotas, in plain Python (no cdktf import).

The network construct builds from these constants and ``tap preflight`` checks the account's quotas against them,
so the check can never count other endpoints than the stack creates.
"""

from __future__ import annotations

#: Gateway endpoints: free, route-table based; the worker's S3 and DynamoDB traffic stays in-region.
GATEWAY_SERVICES: tuple[str, ...] = ("s3", "dynamodb")
#: Interface endpoints for the other services the worker's runtime calls (X-Ray trace upload, the Glue catalog).
INTERFACE_SERVICES: tuple[str, ...] = ("xray", "glue")
#: VPCs one regional stack creates.
VPCS_PER_STACK = 1
