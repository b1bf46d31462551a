"""``tap preflight`` against the local endpoint in this process: a new account passes, each constraint is refused.

Also what the endpoint answers for preflight where moto alone does not (Lambda's account settings and reservation
minimum, ``ExpectedBucketOwner``, the constrained mode), and that bootstrap / plan / deploy / destroy refuse
credentials of another account before touching anything (moto in-process).
"""

from __future__ import annotations

import io
import json
import socket
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from analytics_platform import cli
from analytics_platform.infra.account import resolve_account_offline
from analytics_platform.infra.config import load_config
from analytics_platform.local.clients import LOCAL_ACCOUNT_ID, local_client
from analytics_platform.local.endpoint import Endpoint, start_endpoint
from analytics_platform.local.endpoint.account_answers import AccountConstraints, write_constraints
from analytics_platform.ops.preflight import CheckResult, run_preflight
from analytics_platform.targeting.deployment import Deployment
from tests.schemas import validate

NO_ENV = {"ENVIRONMENT_SUFFIX": ""}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    runtime = tmp_path_factory.mktemp("preflight-endpoint")
    running: Endpoint = start_endpoint(free_port(), log_dir=runtime)
    yield f"http://127.0.0.1:{running.server.server_port}", runtime
    running.stop()


@pytest.fixture
def constraints(endpoint: tuple[str, Path]) -> Iterator[Path]:
    """The endpoint's runtime folder; whatever a test constrains is lifted afterwards."""
    yield endpoint[1]
    write_constraints(endpoint[1], AccountConstraints())


def deployment(url: str, *regions: str, suffix: str, **overrides: Any) -> Deployment:
    """An environment of its own (``suffix``) on the endpoint, so tests do not see each other's resources."""
    config = load_config(
        None, NO_ENV, local_endpoint=url, environment_suffix=suffix,
        regions=[{"region": r, "vpc_cidr": f"10.{i}.0.0/16"} for i, r in enumerate(regions)], **overrides,
    )  # fmt: skip
    return Deployment(suffix, resolve_account_offline(config), regions, Path("/nonexistent"), url)


def by_check(results: list[CheckResult], region: str) -> dict[str, CheckResult]:
    return {r.check: r for r in results if r.region == region}


def create_function(url: str, region: str, name: str, reserved: int) -> None:
    iam = local_client("iam", region, url)
    trust = {"Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole"}]}  # fmt: skip
    try:
        arn = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    except ClientError:
        arn = iam.get_role(RoleName=f"{name}-role")["Role"]["Arn"]
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return event\n")
    lam = local_client("lambda", region, url)
    lam.create_function(FunctionName=name, Runtime="python3.11", Role=arn, Handler="handler.handler",
                        Code={"ZipFile": package.getvalue()})  # fmt: skip
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=reserved)


def test_a_new_account_passes_every_check(endpoint: tuple[str, Path]) -> None:
    # GIVEN an environment never deployed, with an S3 backend (so its state bucket is checked too)
    url, _ = endpoint
    # WHEN
    results = run_preflight(deployment(url, "us-east-1", "eu-west-1", suffix="fresh", backend="s3"))
    # THEN every check ran in both regions and passed
    checks = ["credentials", "region-enabled", "lambda-concurrency", "data-bucket", "state-bucket", "vpc-quota",
              "interface-endpoint-quota", "lake-formation"]  # fmt: skip
    assert [(r.region, r.check) for r in results] == [
        (region, c) for region in ("us-east-1", "eu-west-1") for c in checks
    ]
    assert all(r.ok for r in results), [r for r in results if not r.ok]
    found = by_check(results, "eu-west-1")
    assert found["lambda-concurrency"].detail.startswith("quota 1000, 1000 unreserved; reserving 10 leaves 990")
    assert (
        found["data-bucket"].detail == f"analytics-bucket-{LOCAL_ACCOUNT_ID}-eu-west-1-fresh is free: deploy creates it"
    )


def test_account_settings_answer_like_aws_and_a_reservation_below_the_minimum_is_refused(
    endpoint: tuple[str, Path],
) -> None:
    # GIVEN a function reserving 300 in ap-northeast-1
    url, _ = endpoint
    create_function(url, "ap-northeast-1", "reserving", 300)
    lam = local_client("lambda", "ap-northeast-1", url)
    # WHEN / THEN the account settings count the reservation, per region
    limit = lam.get_account_settings()["AccountLimit"]
    assert (limit["ConcurrentExecutions"], limit["UnreservedConcurrentExecutions"]) == (1000, 700)
    assert local_client("lambda", "ap-northeast-2", url).get_account_settings()["AccountLimit"][
        "UnreservedConcurrentExecutions"] == 1000  # fmt: skip
    # AND a reservation that would leave fewer than 100 unreserved is refused as Lambda refuses it
    with pytest.raises(ClientError) as refused:
        lam.put_function_concurrency(FunctionName="reserving", ReservedConcurrentExecutions=901)
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert "below its minimum value of [100]" in refused.value.response["Error"]["Message"]
    assert lam.put_function_concurrency(FunctionName="reserving", ReservedConcurrentExecutions=900)[
        "ReservedConcurrentExecutions"] == 900  # fmt: skip


def test_expected_bucket_owner_of_another_account_is_forbidden(endpoint: tuple[str, Path]) -> None:
    url, _ = endpoint
    s3 = local_client("s3", "eu-west-1", url)
    s3.create_bucket(Bucket="owned-here", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert s3.head_bucket(Bucket="owned-here", ExpectedBucketOwner=LOCAL_ACCOUNT_ID)["BucketRegion"] == "eu-west-1"
    with pytest.raises(ClientError) as refused:
        s3.head_bucket(Bucket="owned-here", ExpectedBucketOwner="111122223333")
    assert refused.value.response["Error"]["Code"] == "403"


def test_a_constrained_account_fails_the_concurrency_and_bucket_checks_with_what_to_do(
    endpoint: tuple[str, Path], constraints: Path
) -> None:
    # GIVEN the endpoint playing an account with a quota of 10 and the data bucket's name owned elsewhere
    url, _ = endpoint
    target = deployment(url, "us-west-2", suffix="tight")
    bucket = target.config.names("us-west-2").bucket
    write_constraints(constraints, AccountConstraints(10, frozenset({bucket})))
    # WHEN
    found = by_check(run_preflight(target), "us-west-2")
    # THEN the two checks fail, each saying what to do; the others pass
    assert {name for name, result in found.items() if not result.ok} == {"lambda-concurrency", "data-bucket"}
    concurrency = found["lambda-concurrency"]
    assert concurrency.detail.startswith("quota 10, 10 unreserved; reserving 10 leaves 0")
    assert "quota of at least 110" in concurrency.remedy and "--quota-code L-B99A9384" in concurrency.remedy
    assert found["data-bucket"].detail == f"{bucket} exists and is not account {LOCAL_ACCOUNT_ID}'s (403)"
    assert "choose another environment_suffix" in found["data-bucket"].remedy
    # AND the name answers as another account's bucket does: CreateBucket 409
    with pytest.raises(ClientError) as taken:
        local_client("s3", "us-west-2", url).create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-west-2"}
        )
    assert taken.value.response["Error"]["Code"] == "BucketAlreadyExists"


def test_a_region_not_enabled_stops_that_region_only(endpoint: tuple[str, Path]) -> None:
    # GIVEN ap-southeast-7, an opt-in region a new account has not enabled
    url, _ = endpoint
    results = run_preflight(deployment(url, "ap-southeast-7", "eu-west-2", suffix="optin"))
    # THEN its region check fails with what to do and its other checks are not run; eu-west-2 is checked in full
    assert [r.check for r in results if r.region == "ap-southeast-7"] == ["credentials", "region-enabled"]
    refused = by_check(results, "ap-southeast-7")["region-enabled"]
    assert not refused.ok and "not-opted-in" in refused.detail and "other checks were not run" in refused.detail
    assert "aws account enable-region --region-name ap-southeast-7" in refused.remedy
    assert all(r.ok for r in results if r.region == "eu-west-2") and len(by_check(results, "eu-west-2")) == 7


def test_vpc_quota_counts_the_vpcs_in_use(endpoint: tuple[str, Path]) -> None:
    # GIVEN ca-central-1 with its default VPC and 4 more: the quota of 5 is used up
    url, _ = endpoint
    ec2 = local_client("ec2", "ca-central-1", url)
    for index in range(4):
        ec2.create_vpc(CidrBlock=f"10.{50 + index}.0.0/16")
    found = by_check(run_preflight(deployment(url, "ca-central-1", suffix="full")), "ca-central-1")
    assert not found["vpc-quota"].ok
    assert found["vpc-quota"].detail == "5 VPC(s) in use, the stack adds 1; quota 5"
    assert "--quota-code L-F678F1CE --desired-value 6" in found["vpc-quota"].remedy


def test_lake_formation_without_iam_defaults_fails_once_deployed_until_the_worker_role_is_granted(
    endpoint: tuple[str, Path],
) -> None:
    # GIVEN Lake Formation in sa-east-1 with no IAM_ALLOWED_PRINCIPALS defaults
    url, _ = endpoint
    target = deployment(url, "sa-east-1", suffix="governed")
    names = target.config.names("sa-east-1")
    lakeformation = local_client("lakeformation", "sa-east-1", url)
    lakeformation.put_data_lake_settings(DataLakeSettings={
        "DataLakeAdmins": [], "CreateDatabaseDefaultPermissions": [], "CreateTableDefaultPermissions": []})  # fmt: skip
    role_arn = f"arn:aws:iam::{LOCAL_ACCOUNT_ID}:role/{names.role}"
    grant = f"DataLakePrincipalIdentifier={role_arn} --permissions ALTER CREATE_TABLE DESCRIBE"
    # WHEN the stack was never deployed THEN the first deploy is not blocked (nothing can be granted before the
    # deploy creates the database and the role): the row passes and says what to run right after it
    first = by_check(run_preflight(target), "sa-east-1")["lake-formation"]
    assert first.ok and first.remedy.startswith("right after this deploy, grant") and grant in first.remedy
    # WHEN the database exists and the role holds nothing THEN the check fails and says which role needs which grant
    local_client("glue", "sa-east-1", url).create_database(DatabaseInput={"Name": names.glue_database})
    failed = by_check(run_preflight(target), "sa-east-1")["lake-formation"]
    assert not failed.ok and "would be denied" in failed.detail and grant in failed.remedy
    # WHEN the role is granted those permissions on the stack's database, THEN it passes
    lakeformation.grant_permissions(
        Principal={"DataLakePrincipalIdentifier": role_arn}, Resource={"Database": {"Name": names.glue_database}},
        Permissions=["CREATE_TABLE", "ALTER", "DESCRIBE"],
    )  # fmt: skip
    assert by_check(run_preflight(target), "sa-east-1")["lake-formation"].ok


# --- credentials of another account: refused before anything is touched (moto in-process) -------------------------
@pytest.fixture
def other_account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Environment ``dev`` belongs to 111122223333; moto's credentials are of 123456789012. Yields the services
    every boto3 client made so far was for."""
    environments = tmp_path / "environments"
    environments.mkdir()
    (environments / "dev.toml").write_text('backend = "s3"\naccount_id = "111122223333"\n')
    monkeypatch.setenv("TAP_ENVIRONMENTS_DIR", str(environments))
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "ENVIRONMENT_SUFFIX", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    made: list[str] = []
    real_client = boto3.client

    def recording_client(service: str, *args: Any, **kwargs: Any) -> Any:
        made.append(service)
        return real_client(service, *args, **kwargs)

    def untouchable(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("called after the credentials were refused")

    monkeypatch.setattr(boto3, "client", recording_client)
    monkeypatch.setattr(Deployment, "synthesize", untouchable)
    monkeypatch.setattr(Deployment, "runner", untouchable)
    monkeypatch.setattr(Deployment, "exclusive", untouchable)
    with mock_aws():
        yield made


@pytest.mark.parametrize("command", [["bootstrap"], ["plan"], ["deploy"], ["destroy", "--yes"]])
def test_credentials_of_another_account_are_refused_before_anything_is_touched(
    other_account: list[str], command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # WHEN
    code = cli.main([*command, "--env", "dev"])
    # THEN exit 2 naming both accounts, and nothing but STS was asked: no bucket, no synth, no Terraform
    assert code == 2
    error = capsys.readouterr().err
    assert "account_id" in error and "111122223333" in error and "123456789012" in error
    assert set(other_account) == {"sts"}
    assert real_buckets() == []


def real_buckets() -> list[str]:
    s3 = boto3.session.Session().client("s3", region_name="us-east-1")
    return [b["Name"] for b in s3.list_buckets().get("Buckets", [])]


def test_preflight_reports_credentials_of_another_account_in_every_region(
    other_account: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["preflight", "--env", "dev", "--json"])
    rows = json.loads(capsys.readouterr().out)
    validate(rows, "tap.preflight")
    assert code == 1
    assert [(r["region"], r["check"], r["ok"]) for r in rows] == [
        (region, "credentials", False) for region in ("us-east-1", "eu-west-1", "ap-southeast-1")
    ]
    assert "111122223333" in rows[0]["detail"] and "use credentials of the environment's account" in rows[0]["remedy"]
    assert set(other_account) == {"sts"}
