"""The platform's configuration, declared once: every setting with its type, default, range or choices and
description. Validation (:mod:`.validation`) checks the declared ranges and choices from here, and the README's
configuration table is :func:`settings_table` (a unit test keeps it in step). Rules between settings and values
with a shape of their own (regions, names, e-mail addresses, principals) are in :mod:`.validation`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields
from typing import Any

from analytics_platform.etl.contracts import DatasetContract
from analytics_platform.etl.settings import Tunables
from analytics_platform.infra.config_errors import ConfigError
from analytics_platform.infra.names import ResourceNames

#: Tags every taggable resource carries (``tap check`` enforces them).
REQUIRED_TAGS: tuple[str, ...] = ("Environment", "Region", "CostCenter", "ManagedBy")
#: The three regions and CIDR blocks of the primary specification.
DEFAULT_REGIONS: tuple[tuple[str, str], ...] = (
    ("us-east-1", "10.0.0.0/16"), ("eu-west-1", "10.1.0.0/16"), ("ap-southeast-1", "10.2.0.0/16"),
)  # fmt: skip
ARCHITECTURES = ("x86_64", "arm64")
BACKENDS = ("local", "s3")
ENCRYPTION_MODES = ("sse-s3", "kms")
#: The only values CloudWatch Logs accepts for a log group's retention (PutRetentionPolicy).
LOG_RETENTION_DAYS: tuple[int, ...] = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip
#: Where the README's generated table starts and ends.
TABLE_START, TABLE_END = "<!-- platform-settings:start -->", "<!-- platform-settings:end -->"


def setting(
    default: Any = None, description: str = "", *, minimum: int | None = None, maximum: int | None = None,
    choices: tuple[Any, ...] | None = None, shown: str | None = None, factory: Any = None,
) -> Any:  # fmt: skip
    """One setting: its default (or ``factory``), description, inclusive integer range or choices; ``shown`` is
    the default as the README shows it when its value would say less."""
    metadata = {"description": description, "minimum": minimum, "maximum": maximum, "choices": choices,
                "shown": shown}  # fmt: skip
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class RegionConfig:
    """One region: its code, its VPC's IPv4 block, the number of zones and (optionally) the zone ids to use."""

    region: str
    vpc_cidr: str
    az_count: int = 2
    az_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlatformConfig:
    """The whole platform: every region plus the settings shared by all of them (the worker's in ``worker``,
    top-level keys in a file like every other setting)."""

    regions: tuple[RegionConfig, ...] = setting(
        tuple(RegionConfig(r, c) for r, c in DEFAULT_REGIONS),
        "list of `{region, vpc_cidr, az_count=2, az_ids=[]}`; any number; `az_ids` pins the subnets' zones by zone id "
        "(`use1-az1`: the same physical zone in every account, where zone names differ), as many as `az_count`; "
        "without it the first `az_count` zones that need no opt-in (never a Local or Wavelength Zone); known regions "
        "only; CIDRs private, /16 to /24, non-overlapping",
        shown="us-east-1 10.0.0.0/16, eu-west-1 10.1.0.0/16, ap-southeast-1 10.2.0.0/16")  # fmt: skip
    environment_suffix: str = setting("dev", "`[a-z0-9-]`; every resource name carries it and must stay within its "
                                      "AWS limit", shown="`dev` (or `ENVIRONMENT_SUFFIX`)")  # fmt: skip
    environment: str = setting("dev", "the `Environment` tag of every resource")
    cost_center: str = setting("analytics", "the `CostCenter` tag of every resource")
    extra_tags: Mapping[str, str] = setting(description="more tags on every resource (a table of strings); "
                                            "Environment, Region, CostCenter and ManagedBy are always set",
                                            factory=dict, shown="`{}`")  # fmt: skip
    lambda_architecture: str = setting("x86_64", "the function's architecture (the package is built for it)",
                                       choices=ARCHITECTURES)  # fmt: skip
    lambda_memory_mb: int = setting(1024, "the function's memory", minimum=128, maximum=10240)
    lambda_timeout_seconds: int = setting(50, "the function's timeout; 6 x it must fit in "
                                          "`queue_visibility_timeout_seconds` (AWS's advice for a queue that triggers "
                                          "a function, and the job lease's margin of 10 s): raise both for large "
                                          "files", minimum=1, maximum=900)  # fmt: skip
    lambda_reserved_concurrency: int = setting(10, "executions reserved for the function", minimum=2, maximum=1000)
    queue_maximum_concurrency: int | None = setting(
        None, "the queue trigger's `scaling_config.maximum_concurrency`, at most the reservation: a burst waits in the "
        "queue instead of being throttled into the DLQ", minimum=2, maximum=1000,
        shown="the reserved concurrency less one (at least 2): the dead-letter sweep uses that one")  # fmt: skip
    lambda_batch_size: int = setting(5, "messages per invocation", minimum=1, maximum=10)
    ephemeral_storage_mb: int = setting(10240, "the function's `/tmp`; must hold 2.5 x `max_object_mb`",
                                        minimum=512, maximum=10240)  # fmt: skip
    queue_visibility_timeout_seconds: int = setting(300, "the work queue's visibility timeout", minimum=10,
                                                    maximum=43200)  # fmt: skip
    dead_letter_sweep_minutes: int = setting(5, "how often the worker marks the jobs of messages in the DLQ "
                                             "DEAD_LETTERED", minimum=1, maximum=60)  # fmt: skip
    dlq_retention_seconds: int = setting(14 * 24 * 3600, "how long the DLQ keeps a message", minimum=60,
                                         maximum=1209600)  # fmt: skip
    glacier_transition_days: int = setting(90, "days before raw/ and quarantine/ objects move to Glacier "
                                           "(processed/ stays queryable)", minimum=1, maximum=3650)  # fmt: skip
    noncurrent_version_expiration_days: int = setting(90, "days a replaced or deleted version is kept before it "
                                                      "expires; expired delete markers are removed", minimum=1,
                                                      maximum=3650)  # fmt: skip
    log_retention_days: int = setting(30, "days the log groups keep their logs (a value CloudWatch Logs accepts)",
                                      choices=LOG_RETENTION_DAYS)  # fmt: skip
    account_id: str | None = setting(None, "the 12-digit AWS account of the environment: bucket names carry it (S3's "
                                     "names are global); when set, the provider and every command refuse "
                                     "credentials of another account. The local platform is account 123456789012",
                                     shown="the credentials' account, from STS")  # fmt: skip
    alarm_emails: tuple[str, ...] = setting((), "addresses subscribed by e-mail to every region's alarm topic (each "
                                            "must confirm AWS's mail before anything is delivered)",
                                            shown="`[]`")  # fmt: skip
    query_principals: tuple[str, ...] = setting((), "IAM roles and users (ARNs of `account_id`, which must then be "
                                                "set) every region's query role trusts outright, besides the "
                                                "account; none naming a region; each must exist when the stacks "
                                                "are applied", shown="`[]`")  # fmt: skip
    deletion_protection: bool = setting(False, "DynamoDB deletion protection, no `force_destroy` on the data bucket, "
                                        "KMS keys wait 30 days (else 7) before deletion",
                                        shown="`false` (`true` in prod)")  # fmt: skip
    encryption: str = setting(
        "sse-s3",
        "`kms`: one customer-managed key per region (rotation on) for the bucket, "
        "job table, log groups, topic, queues and Athena results",
        choices=ENCRYPTION_MODES,
    )
    error_rate_threshold_percent: float = setting(5.0, "the function's error-rate alarm, above 0 and at most 100")
    oldest_message_alarm_seconds: int = setting(900, "the alarm on the age of the oldest message in the work queue",
                                                minimum=60, maximum=1209600)  # fmt: skip
    athena_bytes_scanned_cutoff_mb: int = setting(10240, "the workgroup's per-query data limit", minimum=10,
                                                  maximum=1024 * 1024 * 1024)  # fmt: skip
    athena_result_retention_days: int = setting(30, "days before query results (and their old versions) expire",
                                                minimum=1, maximum=3650)  # fmt: skip
    datasets: Mapping[str, DatasetContract] = setting(description="dataset contracts (README: Dataset contracts)",
                                                      factory=dict, shown="`{}`")  # fmt: skip
    backend: str = setting("local", "`s3`: state bucket and lock table in each stack's own region (`tap "
                           "bootstrap` creates them)", choices=BACKENDS)  # fmt: skip
    state_dir: str = setting("terraform-state", "folder of the local backend's state files")
    local_endpoint: str | None = setting(None, "set by `tap local up`: the local endpoint (http://127.0.0.1:PORT)",
                                         shown="none")  # fmt: skip
    worker: Tunables = setting(description="the worker's settings (their own table)", factory=Tunables)  # noqa: RUF009

    def names(self, region: str) -> ResourceNames:
        """All resource names of ``region``; buckets carry the account id, so :attr:`account_id` must be known."""
        if self.account_id is None:
            raise ConfigError(
                "account_id",
                "is not known: bucket names carry the account id (S3's namespace is global); set account_id in the "
                "environment's file or provide AWS credentials to read it",
            )
        return ResourceNames.build(region, self.environment_suffix, self.account_id)

    @property
    def maximum_concurrency(self) -> int:
        """The queue trigger's maximum concurrency (by default the reserved concurrency less the sweep's one)."""
        return self.queue_maximum_concurrency or max(2, self.lambda_reserved_concurrency - 1)

    def tags(self, region: str) -> dict[str, str]:
        """The required tags (Environment, Region, CostCenter, ManagedBy) plus ``extra_tags``."""
        return {
            **dict(self.extra_tags), "Environment": self.environment, "Region": region,
            "CostCenter": self.cost_center, "ManagedBy": "cdktf", "EnvironmentSuffix": self.environment_suffix,
        }  # fmt: skip

    def region(self, name: str) -> RegionConfig:
        """The :class:`RegionConfig` called ``name``."""
        for region in self.regions:
            if region.region == name:
                return region
        raise ConfigError("regions", f"region {name!r} is not configured")


def declared() -> tuple[Field[Any], ...]:
    """The platform's settings as declared (the worker's: :func:`~analytics_platform.etl.settings.tunable_fields`)."""
    return tuple(f for f in fields(PlatformConfig) if f.name != "worker")


def _default_text(definition: Field[Any]) -> str:
    if definition.metadata["shown"]:
        return str(definition.metadata["shown"])
    value = definition.default
    return f"`{str(value).lower()}`" if isinstance(value, bool) else f"`{value}`"


def _range_text(definition: Field[Any]) -> str:
    meta = definition.metadata
    if meta["choices"]:
        return ", ".join(f"`{choice}`" for choice in meta["choices"])
    if meta["minimum"] is not None:
        return f"{meta['minimum']} to {meta['maximum']}"
    return ""


def settings_table() -> str:
    """The README's configuration table (Markdown), generated from the declarations."""
    rows = ["| setting | default | range / choices | what it does |", "|---|---|---|---|"]
    rows += [f"| `{d.name}` | {_default_text(d)} | {_range_text(d)} | {d.metadata['description']} |"
             for d in declared()]  # fmt: skip
    return "\n".join(rows)
