"""boto3 clients for the local endpoint, made in one place (the endpoint ignores the plain test credentials)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3

from analytics_platform.infra.names import LOCAL_ACCOUNT_ID

__all__ = ["LOCAL_ACCOUNT_ID", "local_client", "local_resource"]

#: What every local client signs with; the endpoint treats it as the account's administrator.
LOCAL_ACCESS_KEY = "test"


def local_client(service: str, region: str, endpoint: str, credentials: Mapping[str, str] | None = None) -> Any:
    """A boto3 client of ``service`` in ``region`` on the local endpoint; with ``credentials`` (boto3's
    ``aws_access_key_id``, ``aws_secret_access_key``, ``aws_session_token``: a role session's) the endpoint holds
    it to that role's policies, by default it answers as to the account's administrator."""
    signing = credentials or {"aws_access_key_id": LOCAL_ACCESS_KEY, "aws_secret_access_key": LOCAL_ACCESS_KEY}
    return boto3.client(service, region_name=region, endpoint_url=endpoint, **signing)


def local_resource(service: str, region: str, endpoint: str) -> Any:
    """A boto3 resource of ``service`` in ``region`` on the local endpoint."""
    return boto3.resource(
        service, region_name=region, endpoint_url=endpoint, aws_access_key_id=LOCAL_ACCESS_KEY,
        aws_secret_access_key=LOCAL_ACCESS_KEY,
    )  # fmt: skip
