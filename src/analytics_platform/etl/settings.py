"""Worker settings: each one defined once, here, with its name, type, default, range and description.

The definitions drive everything that touches a setting:

* ``infra.config`` validates a deployment's values against ``minimum`` / ``maximum``,
* ``infra.stack`` puts them into the function's environment with :meth:`Settings.to_environment`,
* the worker reads them back with :meth:`Settings.from_environment`,
* the README's configuration table is generated from them (a unit test keeps it in step).

Adding a worker setting is one :func:`tunable` field on :class:`Tunables` plus the code that uses it.
This module imports nothing from ``infra`` (the worker package ships without it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields, replace
from functools import cached_property
from typing import Any

from analytics_platform.etl.contracts import ContractError, DatasetContract, contracts_from_json

#: Key prefixes of the data bucket (the stack's lifecycle rules, event rule and IAM grants use these too).
RAW_PREFIX = "raw/"
PROCESSED_PREFIX = "processed/"
QUARANTINE_PREFIX = "quarantine/"
#: Where a job's Parquet waits until its job is SUCCEEDED (outside every table's location; see etl.outputs).
STAGING_PREFIX = "staging/"
#: Athena's query results (the workgroup's output location; the bucket's lifecycle expires them).
ATHENA_RESULTS_PREFIX = "athena-results/"
#: Disk needed on the function's /tmp per input byte: the input, the Parquet output and DuckDB spill files
#: (a gzip JSON Lines input also needs its decompressed copy, checked after the download).
DISK_FACTOR = 2.5
#: Share of the function's memory DuckDB may use; the rest is Python, read buffers and boto3.
DUCKDB_MEMORY_SHARE = 0.3
#: Seconds a job's lease outlives the invocation's deadline (clock skew, the last record write). The
#: configuration requires ``lambda_timeout_seconds + LEASE_MARGIN_SECONDS <= queue visibility timeout`` so a
#: lease has always run out when SQS makes the message visible again.
LEASE_MARGIN_SECONDS = 10

# Environment variable names of the values every region sets from its resource names.
DATA_REGION, BUCKET_NAME, TABLE_NAME = "DATA_REGION", "BUCKET_NAME", "TABLE_NAME"
QUEUE_URL, DLQ_URL = "QUEUE_URL", "DLQ_URL"
GLUE_DATABASE, DATASET_CONTRACTS = "GLUE_DATABASE", "DATASET_CONTRACTS"
EVENT_BUS_NAME = "EVENT_BUS_NAME"
WORK_DIR = "TAP_WORK_DIR"
MEMORY_SIZE = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"  # set by Lambda itself


def tunable(default: Any, env: str, minimum: float, maximum: float, description: str) -> Any:
    """One setting: its default, environment variable, inclusive range and description."""
    metadata = {"env": env, "minimum": minimum, "maximum": maximum, "description": description}
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Tunables:
    """The settings a deployment may change for the worker (configuration keys of the same names)."""

    max_object_mb: int = tunable(
        4096, "MAX_OBJECT_MB", 1, 10240,
        "Largest upload the worker converts, in MiB; a bigger one ends FAILED (TooLargeError).",
    )  # fmt: skip
    max_reject_ratio: float = tunable(
        0.1, "MAX_REJECT_RATIO", 0.0, 0.99,
        "Share of structurally broken rows a file may have; above it the job ends FAILED.",
    )  # fmt: skip
    max_receive_count: int = tunable(
        5, "MAX_RECEIVE_COUNT", 2, 1000,
        "Deliveries of a message before it moves to the DLQ and its job is DEAD_LETTERED (also the queue's "
        "redrive policy). At least 2: a delivery that meets another invocation's live lease retries once it ends. "
        "By default 5, as AWS advises for a queue that triggers a function.",
    )  # fmt: skip


def tunable_fields() -> tuple[Field[Any], ...]:
    """The :class:`Tunables` fields, in definition order."""
    return fields(Tunables)


def parse_value(definition: Field[Any], text: str) -> Any:
    """Parse one setting's environment text into its type; a clear error names the variable."""
    kind: type = type(definition.default)  # every tunable has a default; its type is the setting's type
    env = definition.metadata["env"]
    try:
        value = kind(text)
    except ValueError as error:
        raise RuntimeError(f"worker misconfigured: {env}={text!r} is not a {kind.__name__}") from error
    if not definition.metadata["minimum"] <= value <= definition.metadata["maximum"]:
        raise RuntimeError(f"worker misconfigured: {env}={text!r} is outside its allowed range")
    return value


def settings_table() -> str:
    """The README's table of worker settings (Markdown), generated from the definitions."""
    lines = ["| setting | default | range | what it does |", "|---|---|---|---|"]
    for definition in tunable_fields():
        meta = definition.metadata
        lines.append(
            f"| `{definition.name}` | `{definition.default}` | {meta['minimum']} to {meta['maximum']} "
            f"| {meta['description']} |"
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class Settings:
    """What the worker knows about its region, read once from the function's environment."""

    region: str
    bucket: str
    table: str
    queue_url: str = ""
    dlq_url: str = ""
    glue_database: str = ""
    contracts_json: str = ""
    #: The region's bus for job state events ("" : none are sent).
    event_bus: str = ""
    tunables: Tunables = Tunables()
    memory_mb: int = 1024
    work_dir: str = "/tmp"

    raw_prefix: str = RAW_PREFIX
    processed_prefix: str = PROCESSED_PREFIX
    quarantine_prefix: str = QUARANTINE_PREFIX
    staging_prefix: str = STAGING_PREFIX

    @property
    def max_object_bytes(self) -> int:
        """``max_object_mb`` in bytes."""
        return self.tunables.max_object_mb * 1024 * 1024

    @property
    def max_reject_ratio(self) -> float:
        """See :class:`Tunables`."""
        return self.tunables.max_reject_ratio

    @property
    def max_receive_count(self) -> int:
        """See :class:`Tunables`."""
        return self.tunables.max_receive_count

    @cached_property
    def contracts(self) -> dict[str, DatasetContract]:
        """Each dataset's contract (``DATASET_CONTRACTS``); a bad one stops the worker with a clear error."""
        try:
            return contracts_from_json(self.contracts_json)
        except ContractError as error:
            raise RuntimeError(f"worker misconfigured: {error}") from error

    @property
    def duckdb_memory_mb(self) -> int:
        """DuckDB's memory cap: a fixed share of the function's memory, at least 64 MB."""
        return max(64, int(self.memory_mb * DUCKDB_MEMORY_SHARE))

    def to_environment(self) -> dict[str, str]:
        """The function environment that :meth:`from_environment` reads back (values may be tokens)."""
        env = {DATA_REGION: self.region, BUCKET_NAME: self.bucket, TABLE_NAME: self.table}
        env.update({QUEUE_URL: self.queue_url, DLQ_URL: self.dlq_url, GLUE_DATABASE: self.glue_database})
        if self.contracts_json:
            env[DATASET_CONTRACTS] = self.contracts_json
        if self.event_bus:
            env[EVENT_BUS_NAME] = self.event_bus
        for definition in tunable_fields():
            env[definition.metadata["env"]] = str(getattr(self.tunables, definition.name))
        return env

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings; a missing required variable is a clear message, not a ``KeyError``."""
        env = os.environ if environ is None else environ
        missing = [name for name in (DATA_REGION, BUCKET_NAME, TABLE_NAME) if not env.get(name)]
        if missing:
            raise RuntimeError(f"worker misconfigured: environment variable(s) {', '.join(missing)} not set")
        values = {d.name: parse_value(d, env[d.metadata["env"]]) for d in tunable_fields() if d.metadata["env"] in env}
        return cls(
            region=env[DATA_REGION],
            bucket=env[BUCKET_NAME],
            table=env[TABLE_NAME],
            queue_url=env.get(QUEUE_URL, ""),
            dlq_url=env.get(DLQ_URL, ""),
            glue_database=env.get(GLUE_DATABASE, ""),
            contracts_json=env.get(DATASET_CONTRACTS, ""),
            event_bus=env.get(EVENT_BUS_NAME, ""),
            tunables=replace(Tunables(), **values),
            memory_mb=int(env.get(MEMORY_SIZE, "1024")),
            work_dir=env.get(WORK_DIR, "/tmp"),
        )
