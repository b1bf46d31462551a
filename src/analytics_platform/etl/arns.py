"""The partition of a region (``aws``, ``aws-cn``, ``aws-us-gov``, ...), for ARNs built outside Terraform.

The stacks take the partition from the provider's ``aws_partition`` data source; code that builds an ARN at run
time (the worker's retry events, bootstrap's bucket policy, the local endpoint) asks botocore's endpoint data,
the table the AWS SDKs themselves use, instead of writing one partition out.
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=64)
def partition_of(region: str) -> str:
    """The partition ``region`` belongs to; a region botocore does not know yet falls in the partition its
    name's pattern says (as the SDKs resolve it)."""
    import botocore.session

    return str(botocore.session.get_session().get_partition_for_region(region))


def s3_bucket_arn(bucket: str, region: str) -> str:
    """The ARN of ``bucket`` in ``region``'s partition (bucket ARNs name no region or account)."""
    return f"arn:{partition_of(region)}:s3:::{bucket}"
