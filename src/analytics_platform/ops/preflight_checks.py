"""The checks of ``tap preflight``: read-only calls that tell whether one region of an account can take the stack.

Each check is declared once in :data:`analytics_platform.ops.preflight.CHECKS`, with the IAM actions it reads with
and whether a failure makes the region's other checks meaningless (a gate). A check returns an :class:`Outcome` (or
None where it does not apply, such as the state bucket of an environment with a local backend).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError, NoCredentialsError

from analytics_platform.etl.arns import partition_of
from analytics_platform.infra.names import ResourceNames
from analytics_platform.targeting.deployment import Deployment

#: What an endpoint answers credentials it does not accept (invalid ones, or a region not enabled for the account).
REFUSED_CREDENTIALS = frozenset(
    {
        "AuthFailure",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "OptInRequired",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "RequestExpired",
    }
)
ENABLED = frozenset({"opt-in-not-required", "opted-in"})
IAM_ALLOWED_PRINCIPALS = "IAM_ALLOWED_PRINCIPALS"
#: What the worker does in the Glue catalog (create and evolve its tables), as Lake Formation permissions.
WORKER_CATALOG_PERMISSIONS = frozenset({"CREATE_TABLE", "ALTER", "DESCRIBE"})


@dataclass(frozen=True)
class Outcome:
    """A check's answer: passed or not, what was found, and what to do (when it failed, or what a passing check
    leaves to do after the deploy)."""

    ok: bool
    detail: str
    remedy: str = ""


@dataclass(frozen=True)
class RegionProbe:
    """What a check reads from: one region of a deployment, its names and its clients."""

    deployment: Deployment
    region: str

    @property
    def names(self) -> ResourceNames:
        return self.deployment.config.names(self.region)

    @property
    def account(self) -> str:
        return self.names.account_id

    def client(self, service: str) -> Any:
        return self.deployment.client(service, self.region)


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def credentials(probe: RegionProbe) -> Outcome:
    """The caller's credentials work in the region and are of the environment's account."""
    wanted = probe.account
    use = f"use credentials of account {wanted} (AWS_PROFILE, aws sso login, or the CI role of that account)"
    try:
        found = str(probe.client("sts").get_caller_identity()["Account"])
    except NoCredentialsError:
        return Outcome(False, "no AWS credentials found", use)
    except ClientError as error:
        if _code(error) not in REFUSED_CREDENTIALS:
            raise
        return Outcome(False, f"the region's STS endpoint refuses the credentials ({_code(error)}): they are invalid "
                       "or expired, or the region is not enabled for the account", f"{use}; if they work elsewhere, "
                       f"enable the region (aws account enable-region --region-name {probe.region})")  # fmt: skip
    if found != wanted:
        return Outcome(False, f"the credentials are of account {found}, the environment's is {wanted}", use)
    return Outcome(True, f"account {found}")


def region_enabled(probe: RegionProbe) -> Outcome:
    """The region is enabled for the account (opt-in regions such as ap-southeast-7 are not by default)."""
    enable = (
        f"enable it (aws account enable-region --region-name {probe.region}; wait until aws account "
        "get-region-opt-status says ENABLED), or remove the region from the environment"
    )
    try:
        regions = probe.client("ec2").describe_regions(AllRegions=True, RegionNames=[probe.region])["Regions"]
    except ClientError as error:
        if _code(error) not in REFUSED_CREDENTIALS:
            raise
        # credentials STS accepted are refused by the region's own endpoint: the region is not enabled for them
        return Outcome(False, f"{probe.region}'s EC2 endpoint refuses the credentials ({_code(error)})", enable)
    status = str(regions[0].get("OptInStatus", "")) if regions else "unknown to EC2"
    if status in ENABLED:
        return Outcome(True, status)
    return Outcome(False, f"{probe.region} is {status} for account {probe.account}", enable)


def _bucket(probe: RegionProbe, bucket: str, what: str) -> Outcome:
    """HeadBucket as the environment's account: 404 free, 200 ours (in this region), 403 another account's."""
    try:
        found = probe.client("s3").head_bucket(Bucket=bucket, ExpectedBucketOwner=probe.account)
    except ClientError as error:
        code = _code(error)
        if code in {"404", "NoSuchBucket", "NotFound"}:
            return Outcome(True, f"{bucket} is free: {what}")
        if code in {"403", "AccessDenied", "Forbidden"}:
            return Outcome(
                False,
                f"{bucket} exists and is not account {probe.account}'s (403)",
                "another account owns the name: choose another environment_suffix (names carry it), or have the "
                "owner delete the bucket; if it is this account's, let these credentials read it (s3:ListBucket)",
            )
        raise
    where = str(found.get("BucketRegion") or found["ResponseMetadata"]["HTTPHeaders"].get("x-amz-bucket-region", ""))
    if where and where != probe.region:
        remedy = (
            f"delete the bucket in {where} (or choose another environment_suffix): {probe.region}'s data stays there"
        )
        return Outcome(False, f"{bucket} is this account's, but in {where}", remedy)
    return Outcome(True, f"{bucket} exists and is this account's")


def data_bucket(probe: RegionProbe) -> Outcome:
    """The data bucket's name is free or already this account's."""
    return _bucket(probe, probe.names.bucket, "deploy creates it")


def state_bucket(probe: RegionProbe) -> Outcome | None:
    """The state bucket's name likewise (an S3 backend only)."""
    if probe.deployment.config.backend != "s3":
        return None
    return _bucket(probe, probe.names.state_bucket, "tap bootstrap creates it")


def _iam_only(defaults: list[dict[str, Any]]) -> bool:
    return any(
        entry.get("Principal", {}).get("DataLakePrincipalIdentifier") == IAM_ALLOWED_PRINCIPALS
        and "ALL" in entry.get("Permissions", [])
        for entry in defaults
    )


def _worker_grants(probe: RegionProbe, role_arn: str) -> set[str]:
    """Lake Formation permissions the worker's role holds on the stack's database (none before it exists)."""
    try:
        found = probe.client("lakeformation").list_permissions(
            Principal={"DataLakePrincipalIdentifier": role_arn},
            Resource={"Database": {"Name": probe.names.glue_database}},
        )
    except ClientError:
        return set()
    return {p for entry in found.get("PrincipalResourcePermissions", []) for p in entry.get("Permissions", [])}


def lake_formation(probe: RegionProbe) -> Outcome:
    """Lake Formation leaves the worker's Glue calls to IAM, or grants its role what it does in the catalog."""
    try:
        settings = probe.client("lakeformation").get_data_lake_settings()["DataLakeSettings"]
    except ClientError as error:
        return Outcome(True, f"settings not readable ({_code(error)}; lakeformation:GetDataLakeSettings), not checked")
    keys = ("CreateDatabaseDefaultPermissions", "CreateTableDefaultPermissions")
    if all(_iam_only(settings.get(key, [])) for key in keys):
        return Outcome(True, "IAM-only: new databases and tables default to IAM_ALLOWED_PRINCIPALS ALL")
    role_arn = f"arn:{partition_of(probe.region)}:iam::{probe.account}:role/{probe.names.role}"
    held = _worker_grants(probe, role_arn)
    if "ALL" in held or held >= WORKER_CATALOG_PERMISSIONS:
        return Outcome(True, f"Lake Formation governs the catalog; {probe.names.role} holds {', '.join(sorted(held))}")
    permissions, resource = (
        " ".join(sorted(WORKER_CATALOG_PERMISSIONS)),
        {"Database": {"Name": probe.names.glue_database}},
    )
    grant = (
        f"grant the worker's role: aws lakeformation grant-permissions --region {probe.region} "
        f"--principal DataLakePrincipalIdentifier={role_arn} --permissions {permissions} --resource "
        f"'{json.dumps(resource)}' (and Athena's users SELECT), or give IAM_ALLOWED_PRINCIPALS ALL back to both "
        "defaults (aws lakeformation put-data-lake-settings)"
    )
    if not _database_exists(probe):
        # A first deploy: the database and the role are what the deploy creates, so nothing can be granted yet.
        # Refusing would block the deploy forever; the row passes and says what to run right after it.
        return Outcome(
            True,
            "Lake Formation governs new databases and tables: the stack's database and role do not exist yet",
            f"right after this deploy, {grant}",
        )
    return Outcome(
        False,
        "Lake Formation governs new databases and tables (no IAM_ALLOWED_PRINCIPALS ALL default): the worker's Glue "
        "calls would be denied",
        grant,
    )


def _database_exists(probe: RegionProbe) -> bool:
    try:
        probe.client("glue").get_database(Name=probe.names.glue_database)
    except ClientError as error:
        if _code(error) == "EntityNotFoundException":
            return False
        raise
    return True
