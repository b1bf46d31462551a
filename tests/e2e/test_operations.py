"""End to end: the operations of a platform team (issue 10) against the running local platform.

One local platform runs environment ``dev`` (from a temporary ``environments/`` folder); ``staging`` is bootstrapped,
deployed next to it with an S3 backend in the local endpoint, planned and destroyed. Then drift, retry and redrive
are exercised on ``dev``'s regions through the same functions the ``tap`` commands call.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from analytics_platform.cli.jobs import redrive_command, retry_command
from analytics_platform.etl.events import object_created_event
from analytics_platform.etl.job_values import settled
from analytics_platform.infra.names import DRIFT_METRIC, DRIFT_NAMESPACE, LOCAL_ACCOUNT_ID, ResourceNames
from analytics_platform.local.clients import local_client, local_resource
from analytics_platform.local.platform import LocalPaths, leftovers, platform_down, platform_up
from analytics_platform.ops.stack_commands import bootstrap_command, drift_command, terraform_command

pytestmark = pytest.mark.e2e
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-1")
#: dev: short queue timings (a failing message reaches the DLQ in a minute, the sweep runs every minute).
DEV = "queue_visibility_timeout_seconds = 60\nlambda_timeout_seconds = 10\ndead_letter_sweep_minutes = 1\n"
#: staging: its own suffix and an S3 backend; one region keeps the test short (each region is its own stack).
STAGING = 'backend = "s3"\nregions = ["us-east-1"]\n'
GOOD = b"id,name,score\n1,Ann,1.5\n2,Bo,2.5\n"
TERMINAL = {"SUCCEEDED", "FAILED", "DEAD_LETTERED", "SUPERSEDED", "DELETED"}
DRIFT_LINE = re.compile(r"^DRIFT \[(?P<region>[a-z0-9-]+)\] (?P<type>\w+)\.\S+ \((?P<kind>[a-z-]+)\): (?P<what>.*)$")


@pytest.fixture(scope="module")
def ops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("environments")
    (folder / "dev.toml").write_text(DEV)
    (folder / "staging.toml").write_text(STAGING)
    paths = LocalPaths(tmp_path_factory.mktemp("ops-local"))
    saved = {name: os.environ.get(name) for name in ("TAP_ENVIRONMENTS_DIR", "TAP_LOCAL_HOME")}
    os.environ.update({"TAP_ENVIRONMENTS_DIR": str(folder), "TAP_LOCAL_HOME": str(paths.root)})
    try:
        outputs = platform_up(paths=paths, env="dev")
        yield {"outputs": outputs, "paths": paths}
        assert platform_down(paths=paths) is True
        assert json.loads((paths.root / "leftovers.json").read_text()) == []
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def client(ops: dict[str, Any], service: str, region: str) -> Any:
    return local_client(service, region, ops["outputs"].endpoint)


def region_outputs(ops: dict[str, Any], region: str) -> Any:
    return ops["outputs"].regions[region]


def job_table(ops: dict[str, Any], region: str) -> Any:
    endpoint = ops["outputs"].endpoint
    return local_resource("dynamodb", region, endpoint).Table(region_outputs(ops, region).table_name)


def wait_job(ops: dict[str, Any], region: str, job_id: str, done: Any, timeout: float = 150) -> dict[str, Any]:
    table = job_table(ops, region)
    deadline = time.monotonic() + timeout
    item: dict[str, Any] = {}
    while time.monotonic() < deadline:
        item = table.get_item(Key={"job_id": job_id}, ConsistentRead=True).get("Item", {})
        if item and done(item):
            return item
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not get there in {timeout}s: {item}")


def upload(ops: dict[str, Any], region: str, key: str, body: bytes) -> tuple[str, str]:
    """``(job id, version id)`` of a new upload."""
    from analytics_platform.etl.events import ObjectRef

    bucket = region_outputs(ops, region).bucket_name
    version = client(ops, "s3", region).put_object(Bucket=bucket, Key=key, Body=body)["VersionId"]
    return ObjectRef(bucket, key, version, len(body), datetime.now(UTC), region).job_id, version


def test_bootstrap_creates_state_storage_in_each_region_and_a_second_run_changes_nothing(
    ops: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # WHEN staging's state storage is bootstrapped twice
    assert bootstrap_command(env="staging", regions=None, local=True, config_path=None) == 0
    first = capsys.readouterr().out
    assert bootstrap_command(env="staging", regions=None, local=True, config_path=None) == 0
    second = capsys.readouterr().out
    # THEN the first run created them, the second changed nothing
    assert "created bucket analytics-tfstate-123456789012-us-east-1-staging" in first and "created lock table" in first
    assert "already in place, nothing changed" in second and "created" not in second
    # AND the bucket is versioned, encrypted, TLS-only and private; the table on demand with PITR
    s3, dynamodb = client(ops, "s3", "us-east-1"), client(ops, "dynamodb", "us-east-1")
    bucket, table = "analytics-tfstate-123456789012-us-east-1-staging", "analytics-tflock-us-east-1-staging"
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert all(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    assert policy["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    description = dynamodb.describe_table(TableName=table)["Table"]
    assert description["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    backups = dynamodb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    # AND it is all in staging's one region: nothing of it anywhere else
    assert s3.get_bucket_location(Bucket=bucket).get("LocationConstraint") in (None, "us-east-1")
    for region in REGIONS[1:]:
        assert not [t for t in client(ops, "dynamodb", region).list_tables()["TableNames"] if "staging" in t]


def staging_resources(ops: dict[str, Any]) -> list[str]:
    """staging's resources on the endpoint, without its state storage (bootstrap's, which outlives a destroy)."""
    found = leftovers(ops["outputs"].endpoint, ["us-east-1"], "staging")
    return [r for r in found if "tfstate" not in r and "tflock" not in r]


def test_staging_deploys_next_to_dev_plans_no_changes_and_is_destroyed_without_touching_dev(
    ops: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint = ops["outputs"].endpoint
    # WHEN staging is deployed next to the running dev
    assert terraform_command("deploy", env="staging", regions=None, local=True, config_path=None) == 0
    deployed = capsys.readouterr().out
    assert re.search(r"^us-east-1\s+applied\s+\d+\s+0\s+0\s", deployed, re.M), deployed
    # THEN its state is in its own region's state bucket, and its resources carry its suffix
    state_keys = [o["Key"] for o in client(ops, "s3", "us-east-1").list_objects_v2(
        Bucket="analytics-tfstate-123456789012-us-east-1-staging")["Contents"]]  # fmt: skip
    assert state_keys == ["analytics-us-east-1-staging/terraform.tfstate"]
    assert staging_resources(ops)
    # AND a plan right after shows no changes
    assert terraform_command("plan", env="staging", regions=None, local=True, config_path=None) == 0
    planned = capsys.readouterr().out
    assert re.search(r"^us-east-1\s+no changes\s+0\s+0\s+0\s", planned, re.M), planned
    # WHEN staging is destroyed
    assert terraform_command("destroy", env="staging", regions=None, local=True, config_path=None, assume_yes=True) == 0
    capsys.readouterr()
    # THEN nothing of staging is left, and every dev resource is still there and still works
    assert staging_resources(ops) == []
    dev = leftovers(endpoint, list(REGIONS), "dev")
    assert (
        len([r for r in dev if r.startswith("bucket ")]) == 3
        and len([r for r in dev if r.startswith("function ")]) == 3
    )
    job_id, _ = upload(ops, "us-east-1", "raw/after-staging/file.csv", GOOD)
    assert wait_job(ops, "us-east-1", job_id, settled)["job_status"] == "SUCCEEDED"
    # AND the running environment itself cannot be destroyed by mistake
    assert terraform_command("destroy", env=None, regions=None, local=True, config_path=None, assume_yes=True) == 2


def test_plan_of_the_running_environment_right_after_tap_local_up_shows_no_changes(
    ops: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert terraform_command("plan", env="dev", regions=["eu-west-1"], local=True, config_path=None) == 0
    planned = capsys.readouterr().out
    assert re.search(r"^eu-west-1\s+no changes\s+0\s+0\s+0\s", planned, re.M), planned


def test_drift_names_exactly_the_two_resources_changed_outside_terraform_in_their_regions(
    ops: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    us, eu = region_outputs(ops, "us-east-1"), region_outputs(ops, "eu-west-1")
    # GIVEN versioning suspended on us-east-1's bucket and eu-west-1's queue timeout changed, outside Terraform
    client(ops, "s3", "us-east-1").put_bucket_versioning(
        Bucket=us.bucket_name, VersioningConfiguration={"Status": "Suspended"}
    )
    eu_sqs = client(ops, "sqs", "eu-west-1")
    eu_sqs.set_queue_attributes(QueueUrl=eu.queue_url, Attributes={"VisibilityTimeout": "75"})
    try:
        # WHEN drift is checked and published
        code = drift_command(env=None, regions=None, local=True, config_path=None, publish=True)
        out = capsys.readouterr().out
    finally:
        client(ops, "s3", "us-east-1").put_bucket_versioning(
            Bucket=us.bucket_name, VersioningConfiguration={"Status": "Enabled"}
        )
        eu_sqs.set_queue_attributes(QueueUrl=eu.queue_url, Attributes={"VisibilityTimeout": "20"})
    # THEN it exits 3 (drift; 2 is a usage error) and names exactly those two resources in exactly those regions,
    # deployed and cross-region
    assert code == 3, out
    found = [m.groupdict() for line in out.splitlines() if (m := DRIFT_LINE.match(line))]
    changed = {("us-east-1", "aws_s3_bucket_versioning"), ("eu-west-1", "aws_sqs_queue")}
    expected = {(region, kind_of, kind) for region, kind_of in changed for kind in ("deployed", "cross-region")}
    assert {(f["region"], f["type"], f["kind"]) for f in found} == expected, out
    deployed = {f["region"]: f["what"] for f in found if f["kind"] == "deployed"}
    assert deployed["us-east-1"] == "versioning_configuration[0].status: 'Enabled' -> 'Suspended'"
    assert deployed["eu-west-1"] == "visibility_timeout_seconds: 60 -> 75"
    assert re.search(r"^ap-southeast-1\s+in sync\s", out, re.M), out
    # AND each region's CloudWatch got its own count, which its stack's drift alarm watches
    for region, expected in (("us-east-1", 1.0), ("eu-west-1", 1.0), ("ap-southeast-1", 0.0)):
        stack = f"analytics-{region}-dev"
        cloudwatch = client(ops, "cloudwatch", region)
        points = cloudwatch.get_metric_statistics(
            Namespace=DRIFT_NAMESPACE, MetricName=DRIFT_METRIC, Dimensions=[{"Name": "Stack", "Value": stack}],
            StartTime=datetime.now(UTC) - timedelta(minutes=10), EndTime=datetime.now(UTC) + timedelta(minutes=1),
            Period=60, Statistics=["Maximum"],
        )["Datapoints"]  # fmt: skip
        assert [p["Maximum"] for p in points] == [expected], (region, points)
        alarm_name = ResourceNames.build(region, "dev", LOCAL_ACCOUNT_ID).alarm_drift
        alarm = cloudwatch.describe_alarms(AlarmNames=[alarm_name])["MetricAlarms"]
        assert alarm and alarm[0]["Dimensions"] == [{"Name": "Stack", "Value": stack}]


def test_retry_requeues_a_failed_job_which_keeps_its_history_and_a_gone_version_is_reported(
    ops: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    region = "ap-southeast-1"
    # GIVEN a job that failed on purpose (a malformed file), and another whose object version was deleted since
    job_id, _ = upload(ops, region, "raw/retry/Ünïcode file+1.json", b'{"a": 1, broken')
    failed = wait_job(ops, region, job_id, lambda i: i["job_status"] in TERMINAL)
    assert failed["job_status"] == "FAILED"
    gone_id, gone_version = upload(ops, region, "raw/retry/gone.json", b'{"a": 1, broken')
    gone = wait_job(ops, region, gone_id, lambda i: i["job_status"] in TERMINAL)
    bucket = region_outputs(ops, region).bucket_name
    client(ops, "s3", region).delete_object(Bucket=bucket, Key="raw/retry/gone.json", VersionId=gone_version)
    # WHEN both are retried
    code = retry_command(region=region, local=True, config_path=None, job_ids=[job_id, gone_id])
    out = capsys.readouterr().out
    # THEN the gone one is reported and left as it was; the other is processed again
    assert code == 1 and "gone" in out, out
    assert job_table(ops, region).get_item(Key={"job_id": gone_id}, ConsistentRead=True)["Item"] == gone
    again = wait_job(ops, region, job_id, lambda i: i.get("retries") == 1 and i["job_status"] in TERMINAL)
    # AND it ends in a new terminal state, its attempts counting on, its history keeping the first outcome
    assert again["job_status"] == "FAILED" and again["attempts"] == failed["attempts"] + 1
    assert again["finished_at"] > failed["finished_at"]
    [entry] = again["history"]
    assert entry["status"] == "FAILED" and entry["error_message"] == failed["error_message"]


def test_redrive_moves_a_dead_lettered_upload_back_and_its_job_is_processed(
    ops: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    region = "ap-southeast-1"
    outputs = region_outputs(ops, region)
    events = client(ops, "events", region)
    rule = ResourceNames.build(region, "dev", LOCAL_ACCOUNT_ID).rule
    # GIVEN an upload whose event ended in the dead-letter queue (the rule is off while it lands, and its event
    # is put in the DLQ as SQS would after the last failed receive); the sweep marks its job DEAD_LETTERED
    events.disable_rule(Name=rule)
    try:
        job_id, version = upload(ops, region, "raw/redrive/orders.csv", GOOD)
    finally:
        events.enable_rule(Name=rule)
    event = object_created_event(outputs.bucket_name, "raw/redrive/orders.csv", version_id=version, size=len(GOOD),
                                 region=region)  # fmt: skip
    client(ops, "sqs", region).send_message(QueueUrl=outputs.dlq_url, MessageBody=json.dumps(event))
    wait_job(ops, region, job_id, lambda i: i["job_status"] == "DEAD_LETTERED")
    # WHEN the DLQ is redriven (again while the sweep holds the message for its read)
    moved = ""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and "moved 1 message" not in moved:
        assert redrive_command(region=region, local=True, config_path=None) in (0, 1)
        moved = capsys.readouterr().out
        time.sleep(2)
    # THEN it reports the message moved, and the job is processed to SUCCEEDED
    assert "moved 1 message" in moved, moved
    done = wait_job(ops, region, job_id, lambda i: i["job_status"] == "SUCCEEDED")
    assert done["rows_out"] == 2
    dlq = client(ops, "sqs", region).get_queue_attributes(QueueUrl=outputs.dlq_url, AttributeNames=["All"])
    assert dlq["Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_operations_refuse_clearly_when_something_is_missing(
    ops: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # an environment without state storage: deploy says to bootstrap first, and does nothing
    (Path(os.environ["TAP_ENVIRONMENTS_DIR"]) / "qa.toml").write_text('backend = "s3"\nregions = ["eu-west-1"]\n')
    assert terraform_command("deploy", env="qa", regions=None, local=True, config_path=None) == 2
    assert "tap bootstrap --env qa --local" in capsys.readouterr().err
    assert leftovers(ops["outputs"].endpoint, ["eu-west-1"], "qa") == []
