"""One region of a deployment as the region-bound commands (jobs, query, datasets, redrive, retry, the console) see
it: its resource names and its clients, the local platform's or AWS's. Resolved by
:func:`analytics_platform.targeting.deployment.resolve_deployment` (``Deployment.target``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3

from analytics_platform.local.clients import LOCAL_ACCOUNT_ID, local_client, local_resource
from analytics_platform.local.state import LocalOutputs


class TargetError(ValueError):
    """What a command acts on cannot be resolved: the local platform is not up, the region is not deployed, another
    environment runs, a lock is held..."""


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
