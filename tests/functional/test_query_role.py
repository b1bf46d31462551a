"""Querying as the region's query role: the role's exact policy (as the stacks build it) on the local endpoint,
which holds a role session to its policies as AWS does, and ``tap query --as-query-role`` / ``--role-arn``."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import duckdb
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from analytics_platform.analytics import commands
from analytics_platform.analytics.role_session import assume_role, chosen_role
from analytics_platform.cli import build_parser
from analytics_platform.etl.arns import partition_of
from analytics_platform.etl.catalog import table_input
from analytics_platform.exit_codes import ExitCode
from analytics_platform.infra import iam, query_access
from analytics_platform.local.clients import LOCAL_ACCOUNT_ID, local_client
from analytics_platform.local.endpoint import start_endpoint
from analytics_platform.targeting.deployment import resolve_target
from analytics_platform.targeting.region_target import RegionTarget, TargetError

REGION = "eu-west-1"
BUCKET = f"analytics-bucket-{LOCAL_ACCOUNT_ID}-eu-west-1-test"
DATABASE = "analytics_eu_west_1_test"
ROLE = "analytics-query-role-eu-west-1-test"
PARTITION = partition_of(REGION)
ROLE_ARN = f"arn:{PARTITION}:iam::{LOCAL_ACCOUNT_ID}:role/{ROLE}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegionTarget]:
    """A region on the local endpoint: one dataset in its catalog and bucket, an upload under raw/, another
    database, and the query role with the trust and policy documents the stacks synthesize."""
    folder = tmp_path_factory.mktemp("query-role")
    running = start_endpoint(free_port(), log_dir=folder / "logs")
    url = f"http://127.0.0.1:{running.server.server_port}"
    s3, glue, iam_client = (local_client(service, REGION, url) for service in ("s3", "glue", "iam"))
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    parquet = folder / "orders.parquet"
    duckdb.connect().execute(f"COPY (SELECT 1 AS id, 2.5 AS amount) TO '{parquet}' (FORMAT parquet)")
    s3.upload_file(str(parquet), BUCKET, "processed/orders/ingest_date=2026-01-02/a.parquet")
    s3.put_object(Bucket=BUCKET, Key="raw/orders/a.csv", Body=b"id,amount\n1,2.5\n")
    for database in (DATABASE, "otherdb"):
        glue.create_database(DatabaseInput={"Name": database})
        columns = [("id", "integer"), ("amount", "double")]
        glue.create_table(
            DatabaseName=database,
            TableInput=table_input("orders", columns, bucket=BUCKET, prefix="processed/", version=1),
        )
    bucket_arn = f"arn:{PARTITION}:s3:::{BUCKET}"
    statements = query_access.query_statements(
        partition=PARTITION, region=REGION, account_id=LOCAL_ACCOUNT_ID, database=DATABASE, bucket_arn=bucket_arn,
        workgroup_arn=f"arn:{PARTITION}:athena:{REGION}:{LOCAL_ACCOUNT_ID}:workgroup/analytics-athena-eu-west-1-test",
    )  # fmt: skip
    trust = query_access.trust_document(partition=PARTITION, account_id=LOCAL_ACCOUNT_ID)
    iam_client.create_role(RoleName=ROLE, AssumeRolePolicyDocument=trust)
    iam_client.put_role_policy(RoleName=ROLE, PolicyName="query-region", PolicyDocument=iam.policy_document(statements))
    yield RegionTarget(
        REGION, BUCKET, "jobs", DATABASE, "analytics-athena-eu-west-1-test", url, account_id=LOCAL_ACCOUNT_ID,
        query_role_arn=ROLE_ARN,
    )  # fmt: skip
    running.stop()


def denied(call: Any, **kwargs: Any) -> bool:
    try:
        call(**kwargs)
    except ClientError as error:
        return "AccessDenied" in str(error.response["Error"]["Code"])
    return False


def test_as_the_query_role_the_region_reads_its_tables_and_nothing_else(region: RegionTarget) -> None:
    # GIVEN a session of the region's query role
    session = assume_role(region, chosen_role(region, role_arn=None, as_query_role=True) or "")
    s3, glue = session.client("s3"), session.client("glue")
    # WHEN the local engine reads the region's catalog and processed data through it
    result = commands.run_query(session, "SELECT id, amount, ingest_date FROM orders")
    # THEN the query runs, every read allowed by the role's policy
    assert result.rows == [(1, 2.5, "2026-01-02")]
    # AND the role reads no upload, lists no raw/ key, writes no data, changes no table, reads no other database
    assert denied(s3.get_object, Bucket=BUCKET, Key="raw/orders/a.csv")
    assert denied(s3.list_objects_v2, Bucket=BUCKET, Prefix="raw/")
    assert denied(s3.put_object, Bucket=BUCKET, Key="processed/orders/ingest_date=2026-01-02/b.parquet", Body=b"")
    assert denied(s3.delete_object, Bucket=BUCKET, Key="processed/orders/ingest_date=2026-01-02/a.parquet")
    assert denied(glue.get_tables, DatabaseName="otherdb")
    table = glue.get_table(DatabaseName=DATABASE, Name="orders")["Table"]
    changed = {"Name": "orders", "StorageDescriptor": table["StorageDescriptor"]}
    assert denied(glue.update_table, DatabaseName=DATABASE, TableInput=changed)
    # AND it writes query results only under athena-results/
    s3.put_object(Bucket=BUCKET, Key="athena-results/q1.csv", Body=b"id\n1\n")
    assert s3.get_object(Bucket=BUCKET, Key="athena-results/q1.csv")["Body"].read() == b"id\n1\n"


def test_tap_query_as_query_role_prints_the_rows(
    region: RegionTarget, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(commands, "resolve_target", lambda *args, **kwargs: region)
    code = commands.query_command(region=REGION, sql="SELECT count(*) AS n FROM orders", local=True, as_json=True,
                                  config_path=None, as_query_role=True)  # fmt: skip
    assert code == ExitCode.OK and json.loads(capsys.readouterr().out) == [{"n": 1}]


@pytest.mark.parametrize(
    ("role_arn", "reason"),
    [
        ("analysts", "is not the ARN of an IAM role"),
        (f"arn:{PARTITION}:iam::444455556666:role/{ROLE}", "is of account 444455556666, the region's is 123456789012"),
        (f"arn:{PARTITION}:iam::{LOCAL_ACCOUNT_ID}:role/analytics-query-role-us-east-1-test", "is a role of region "
         "us-east-1: a query in eu-west-1 runs as eu-west-1's role"),
    ],
)  # fmt: skip
def test_tap_query_refuses_a_role_it_should_not_run_as(
    region: RegionTarget, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], role_arn: str,
    reason: str,
) -> None:  # fmt: skip
    monkeypatch.setattr(commands, "resolve_target", lambda *args, **kwargs: region)
    code = commands.query_command(region=REGION, sql="SELECT 1", local=True, as_json=False, config_path=None,
                                  role_arn=role_arn)  # fmt: skip
    assert code == ExitCode.USAGE and reason in capsys.readouterr().err


def test_a_role_sts_refuses_is_reported_with_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN STS refusing the caller the role (no sts:AssumeRole granted)
    sts = boto3.client("sts", region_name=REGION)
    stub = Stubber(sts)
    stub.add_client_error("assume_role", "AccessDenied", "User: arn:x is not authorized to perform: sts:AssumeRole")
    monkeypatch.setattr(RegionTarget, "client", lambda self, service: sts)
    target = RegionTarget(REGION, BUCKET, "jobs", DATABASE, "wg", account_id="123456789012", query_role_arn=ROLE_ARN)
    # WHEN tap query would run as it
    with stub, pytest.raises(TargetError) as refused:
        assume_role(target, ROLE_ARN)
    # THEN the error names the role, STS's reason and who can grant it
    assert f"cannot assume {ROLE_ARN}" in str(refused.value) and "not authorized" in str(refused.value)
    assert "An administrator grants sts:AssumeRole on it" in str(refused.value)


def test_a_refused_query_assumes_no_role(region: RegionTarget, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_session(*args: Any, **kwargs: Any) -> RegionTarget:
        raise AssertionError("a refused query must not assume a role")

    monkeypatch.setattr(commands, "resolve_target", lambda *args, **kwargs: region)
    monkeypatch.setattr(commands, "assume_role", no_session)
    code = commands.query_command(region=REGION, sql="DROP TABLE orders", local=True, as_json=False,
                                  config_path=None, as_query_role=True)  # fmt: skip
    assert code == ExitCode.USAGE


def test_outputs_of_a_platform_started_before_the_query_role_say_so() -> None:
    old = RegionTarget(REGION, BUCKET, "jobs", DATABASE, "wg", "http://127.0.0.1:1")
    with pytest.raises(TargetError, match="name no query role"):
        chosen_role(old, role_arn=None, as_query_role=True)


@mock_aws
def test_on_aws_the_query_role_is_the_one_the_stack_names_and_sts_of_the_region_issues_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"account_id": "123456789012", "regions": ["eu-west-1"], "environment_suffix": "qa"}))
    target = resolve_target(REGION, local=False, config_path=str(config))
    assert target.query_role_arn == f"arn:{PARTITION}:iam::123456789012:role/analytics-query-role-eu-west-1-qa"
    local_trust = query_access.trust_document(partition=PARTITION, account_id="123456789012")
    boto3.client("iam").create_role(RoleName="analytics-query-role-eu-west-1-qa", AssumeRolePolicyDocument=local_trust)
    session = assume_role(target, target.query_role_arn)
    arn = session.client("sts").get_caller_identity()["Arn"]
    assert ":assumed-role/analytics-query-role-eu-west-1-qa/tap-query-" in arn


def test_the_two_role_options_exclude_each_other() -> None:
    parser = build_parser()
    arguments = parser.parse_args(["query", "--region", REGION, "--as-query-role", "SELECT 1"])
    assert arguments.as_query_role is True and arguments.role_arn is None
    with pytest.raises(SystemExit):
        parser.parse_args(["query", "--region", REGION, "--as-query-role", "--role-arn", ROLE_ARN, "SELECT 1"])
