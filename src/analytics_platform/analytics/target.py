"""Which region a query or listing runs in, and its clients: the local platform's, or AWS's."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3

from analytics_platform.local.clients import LOCAL_ACCOUNT_ID, local_client, local_resource
from analytics_platform.local.state import LocalOutputs, LocalPaths, read_outputs, read_state


class TargetError(ValueError):
    """The region is not deployed (or the local platform is not up)."""


@dataclass(frozen=True)
class RegionTarget:
    """One region's analytics resources and how to reach them (``endpoint`` None: AWS)."""

    region: str
    bucket: str
    table_name: str
    database: str
    workgroup: str
    endpoint: str | None = None
    #: The work queue and its dead-letter queue, by name ("" when not known); for the recovery commands.
    queue_name: str = ""
    dlq_name: str = ""
    #: The region's account and query role ("" when not known), for ``tap query --as-query-role``.
    account_id: str = ""
    query_role_arn: str = ""
    #: A role session's credentials (boto3's keyword names) the clients sign with; by default the caller's own.
    credentials: Mapping[str, str] | None = field(default=None, compare=False, repr=False)

    @property
    def local(self) -> bool:
        """Whether this is the local platform."""
        return self.endpoint is not None

    def client(self, service: str) -> Any:
        """A boto3 client of ``service`` in exactly this region."""
        if self.endpoint is not None:
            return local_client(service, self.region, self.endpoint, self.credentials)
        return boto3.client(service, region_name=self.region, **(self.credentials or {}))

    def job_table(self) -> Any:
        """The region's job table (a boto3 resource Table)."""
        if self.endpoint is not None:
            return local_resource("dynamodb", self.region, self.endpoint).Table(self.table_name)
        return boto3.resource("dynamodb", region_name=self.region).Table(self.table_name)


def local_target(region: str, paths: LocalPaths | None = None, env: str | None = None) -> RegionTarget:
    """The region on the running local platform (``tap local up``); with ``env``, only if that environment is up."""
    paths = paths or LocalPaths.default()
    outputs = read_outputs(paths)
    state = read_state(paths)
    if outputs is None or state is None:
        raise TargetError("the local platform is not up: start it with 'tap local up' (or drop --local for AWS)")
    running = str(state.config.get("environment", ""))
    if env is not None and env != running:
        raise TargetError(f"the local platform runs environment {running!r}, not {env!r}")
    return target_from_outputs(outputs, region)


def target_from_outputs(outputs: LocalOutputs, region: str) -> RegionTarget:
    """The region of a local platform's outputs."""
    if region not in outputs.regions:
        raise TargetError(f"region {region} is not part of the local platform ({', '.join(outputs.regions)})")
    names = outputs.regions[region]
    return RegionTarget(
        region, names.bucket_name, names.table_name, names.glue_database, names.athena_workgroup, outputs.endpoint,
        queue_name=names.queue_url.rsplit("/", 1)[-1], dlq_name=names.dlq_url.rsplit("/", 1)[-1],
        account_id=LOCAL_ACCOUNT_ID, query_role_arn=names.query_role_arn,
    )  # fmt: skip


def aws_target(region: str, config_path: str | None, env: str | None = None) -> RegionTarget:
    """The region on AWS, named as the configuration (or environment) names it."""
    from analytics_platform.etl.arns import partition_of
    from analytics_platform.infra.account import resolve_account
    from analytics_platform.infra.config import load_config

    config = resolve_account(load_config(config_path, env_name=env))
    config.region(region)  # a clear error for a region the configuration does not hold
    names = config.names(region)
    return RegionTarget(
        region, names.bucket, names.table, names.glue_database, names.athena_workgroup, queue_name=names.queue,
        dlq_name=names.dlq, account_id=names.account_id,
        query_role_arn=f"arn:{partition_of(region)}:iam::{names.account_id}:role/{names.query_role}",
    )  # fmt: skip


def resolve_target(region: str, *, local: bool, config_path: str | None, env: str | None = None) -> RegionTarget:
    """``--local``: the running local platform (whose environment ``tap local up`` chose); otherwise AWS."""
    return local_target(region, env=env) if local else aws_target(region, config_path, env)
