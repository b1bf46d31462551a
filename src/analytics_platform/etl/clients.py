"""The AWS services the worker calls from its VPC, and the clients it makes for them: both declared here, once.

The worker runs in private subnets without a NAT gateway, so a service it calls is reachable only through a VPC
endpoint. :data:`WORKER_SERVICES` is the single list of those services; it drives

* the VPC endpoints the ``Network`` construct creates (``infra`` imports it),
* the ``tap check`` rule that finds a service the worker calls without a route in a synthesized stack,
* the local runtime, which makes a call to a service without a route time out, as it would on AWS.

Every client the worker makes comes from :func:`worker_client` / :func:`worker_resource`, which refuse a
service missing from the list (and a unit test walks this package for any other client).
This module imports nothing from ``infra``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from botocore.config import Config


class EndpointType(StrEnum):
    """How the VPC reaches a service: a route-table gateway endpoint (S3, DynamoDB) or an interface endpoint."""

    GATEWAY = "Gateway"
    INTERFACE = "Interface"


@dataclass(frozen=True)
class WorkerService:
    """One service called from the worker's VPC: its boto3 name (also the endpoint's
    ``com.amazonaws.<region>.<name>``), the endpoint type it gets, and what the worker uses it for."""

    name: str
    endpoint: EndpointType
    used_for: str


WORKER_SERVICES: tuple[WorkerService, ...] = (
    # Gateway endpoints are free and keep the bulk traffic (objects, job records) on the route table.
    WorkerService("s3", EndpointType.GATEWAY, "downloads the uploads, writes the Parquet and the rejects"),
    WorkerService("dynamodb", EndpointType.GATEWAY, "job records and dataset schemas"),
    WorkerService("sqs", EndpointType.INTERFACE, "message visibility changes and the dead-letter sweep"),
    WorkerService("glue", EndpointType.INTERFACE, "the dataset catalog"),
    WorkerService("events", EndpointType.INTERFACE, "job state events on the region's default bus"),
    # Not a boto3 client: active tracing uploads the function's trace segments from the execution environment.
    WorkerService("xray", EndpointType.INTERFACE, "active tracing's trace segments"),
)

#: A VPC endpoint answers a connect in milliseconds; an unreachable service never does (its packets are dropped),
#: so a short connect timeout and few attempts make such a call fail in seconds, well inside the function's time,
#: instead of botocore's default of 60 s per attempt.
CONNECT_TIMEOUT_SECONDS = 2
#: The longest single read: above the sweep's long poll, below the function's default timeout.
READ_TIMEOUT_SECONDS = 20
#: Attempts per call (botocore's standard mode retries throttling, 5xx and connection errors with backoff).
MAX_ATTEMPTS = 3
#: Standard mode's backoff before attempt n (n >= 2) is at most 2 ** (n - 2) s.
MAX_BACKOFF_SECONDS = sum(2 ** (attempt - 2) for attempt in range(2, MAX_ATTEMPTS + 1))
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
    connect_timeout=CONNECT_TIMEOUT_SECONDS,
    read_timeout=READ_TIMEOUT_SECONDS,
)


def unreachable_call_seconds() -> float:
    """The longest a call to a service without a route takes before it fails (every attempt's connect times out)."""
    return float(CONNECT_TIMEOUT_SECONDS * MAX_ATTEMPTS + MAX_BACKOFF_SECONDS)


def declared(name: str) -> WorkerService:
    """The declaration of service ``name``; ValueError if the worker does not declare it."""
    for service in WORKER_SERVICES:
        if service.name == name:
            return service
    raise ValueError(
        f"the worker does not declare {name!r} in etl.clients.WORKER_SERVICES; without it the VPC has no endpoint "
        "for it and every call would time out on AWS"
    )


def worker_client(session: Any, name: str) -> Any:
    """A client of a declared service, with the worker's timeouts and retries."""
    return session.client(declared(name).name, config=CLIENT_CONFIG)


def worker_resource(session: Any, name: str) -> Any:
    """A boto3 resource of a declared service, with the worker's timeouts and retries."""
    return session.resource(declared(name).name, config=CLIENT_CONFIG)
