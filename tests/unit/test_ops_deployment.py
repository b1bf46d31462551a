"""Deployment resolution: regions, the local platform, environments, backends, and which job table tap jobs reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analytics_platform.infra.config import ConfigError
from analytics_platform.local.state import LocalPaths
from analytics_platform.targeting.deployment import OperationError, resolve_deployment
from tests.unit.ops_support import (
    ACCOUNT,
    ENDPOINT,
    CallerOf,
    start_fake_platform,
)


def test_resolve_an_unknown_region_is_a_config_error_naming_it(workspace: Path) -> None:
    with pytest.raises(ConfigError, match="mars-north-1"):
        resolve_deployment(env="dev", regions=["us-east-1", "mars-north-1"])


def test_resolve_some_regions_keeps_the_configured_order(workspace: Path) -> None:
    deployment = resolve_deployment(env="dev", regions=["ap-southeast-1", "us-east-1", "us-east-1"])
    assert deployment.regions == ("us-east-1", "ap-southeast-1")
    assert deployment.config.log_retention_days == 14


def test_resolve_local_with_nothing_up_is_an_operation_error(workspace: Path) -> None:
    with pytest.raises(OperationError, match="tap local up"):
        resolve_deployment(env=None, local=True, paths=LocalPaths(workspace / "nothing"))


def test_resolve_local_with_a_dead_daemon_is_an_operation_error(workspace: Path) -> None:
    paths = start_fake_platform(workspace)
    document = json.loads(paths.state.read_text())
    document["pid"] = 2**22 + 12345  # above pid_max: no such process
    paths.state.write_text(json.dumps(document))
    with pytest.raises(OperationError):
        resolve_deployment(env=None, local=True, paths=paths)


def test_resolve_local_running_environment(workspace: Path) -> None:
    paths = start_fake_platform(workspace)
    deployment = resolve_deployment(env=None, local=True, paths=paths)
    assert (deployment.env, deployment.running, deployment.endpoint) == ("dev", True, ENDPOINT)
    assert deployment.local
    assert deployment.workdir == paths.root / "ops" / "dev"
    assert Path(deployment.config.state_dir) == paths.root / "tfstate"
    assert deployment.backend_file("us-east-1") is None  # the running platform keeps its local state


def test_resolve_local_running_environment_by_name_keeps_its_state(workspace: Path) -> None:
    paths = start_fake_platform(workspace)
    deployment = resolve_deployment(env="dev", local=True, paths=paths)
    assert deployment.running and deployment.config.backend == "local"
    assert deployment.config.state_dir == str(paths.root / "tfstate")
    assert deployment.config.log_retention_days == 14  # dev's file applies


def test_resolve_local_other_environment_with_s3_backend_points_at_the_endpoint(workspace: Path) -> None:
    # GIVEN the platform runs dev; staging's file says backend = "s3"
    paths = start_fake_platform(workspace)
    # WHEN
    deployment = resolve_deployment(env="staging", regions=["eu-west-1"], local=True, paths=paths)
    backend = deployment.backend_file("eu-west-1")
    # THEN staging is deployed next to dev, its S3 backend on the local endpoint
    assert (deployment.env, deployment.running, deployment.regions) == ("staging", False, ("eu-west-1",))
    assert deployment.config.environment_suffix == "staging"
    assert deployment.config.local_endpoint == ENDPOINT
    assert deployment.workdir == paths.root / "ops" / "staging"
    assert deployment.stack_dir("eu-west-1").name.endswith("staging")
    assert backend is not None and backend.is_file()
    text = backend.read_text()
    assert f's3       = "{ENDPOINT}"' in text and f'dynamodb = "{ENDPOINT}"' in text
    assert "use_path_style              = true" in text


def test_resolve_on_aws_writes_no_backend_file(workspace: Path) -> None:
    deployment = resolve_deployment(env="staging")
    assert not deployment.local and deployment.endpoint is None
    assert deployment.config.local_endpoint is None
    assert deployment.backend_file("us-east-1") is None
    assert not (deployment.workdir / "backend").exists()


def test_resolve_local_environment_with_the_running_suffix_is_refused(workspace: Path) -> None:
    paths = start_fake_platform(workspace)
    with pytest.raises(ConfigError, match="suffix"):
        resolve_deployment(env="clash", local=True, paths=paths)


def test_resolve_local_backend_state_dirs_are_absolute(workspace: Path) -> None:
    paths = start_fake_platform(workspace)
    # on AWS, the default relative state_dir is made absolute (Terraform runs inside each stack folder)
    on_aws = resolve_deployment(env="dev")
    assert Path(on_aws.config.state_dir).is_absolute()
    assert Path(on_aws.config.state_dir) == workspace / "terraform-state"
    # locally, another environment with a local backend gets its own state folder, absolute
    qa = resolve_deployment(env="qa", local=True, paths=paths)
    assert Path(qa.config.state_dir).is_absolute()
    assert Path(qa.config.state_dir) == paths.root / "ops" / "qa" / "tfstate"
    assert qa.backend_file("us-east-1") is None


def test_resolve_local_with_a_relative_home_is_still_absolute(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAP_LOCAL_HOME", "rel/local")
    start_fake_platform(workspace / "rel")
    deployment = resolve_deployment(env="qa", local=True)
    assert deployment.workdir.is_absolute()
    assert Path(deployment.config.state_dir).is_absolute()


def test_an_operation_on_aws_must_name_its_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from analytics_platform.infra.config import ConfigError
    from analytics_platform.targeting.deployment import resolve_deployment

    (tmp_path / "dev.toml").write_text("lambda_reserved_concurrency = 5\n")
    monkeypatch.setenv("TAP_ENVIRONMENTS_DIR", str(tmp_path))
    monkeypatch.setattr("analytics_platform.infra.account._default_sts", lambda _region: CallerOf(ACCOUNT))
    with pytest.raises(ConfigError) as refused:
        resolve_deployment(env=None)
    assert refused.value.field == "env" and "--env dev" in str(refused.value)
    assert resolve_deployment(env="dev").config.lambda_reserved_concurrency == 5


def test_tap_jobs_reads_the_local_platform_only_for_the_environment_it_runs(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from analytics_platform.analytics import job_listing as jobs_query
    from analytics_platform.local.state import LocalOutputs, RegionOutputs, write_outputs

    paths = start_fake_platform(workspace)
    monkeypatch.setenv("TAP_LOCAL_HOME", str(paths.root))
    names = RegionOutputs("b", "local-jobs-table", "q", "d", "f", "g", "w")
    write_outputs(paths, LocalOutputs(ENDPOINT, {"us-east-1": names}))
    # no --env, or the running one: the local platform's table
    assert jobs_query.job_table("us-east-1", None).name == "local-jobs-table"
    assert jobs_query.job_table("us-east-1", None, env="dev").name == "local-jobs-table"
    # another environment: its table on AWS, never the local one
    (workspace / "environments" / "prod.toml").write_text("")
    assert jobs_query.job_table("us-east-1", None, env="prod").name == "analytics-jobs-us-east-1-prod"


def test_one_resolver_serves_the_operations_and_the_reads_with_the_same_names(workspace: Path) -> None:
    from analytics_platform.targeting.deployment import resolve_target

    # GIVEN staging on AWS, resolved once for an operation and once for a read
    operated = resolve_deployment(env="staging", regions=["eu-west-1"])
    read = resolve_target("eu-west-1", local=False, config_path=None, env="staging")
    # THEN the read's region is the operation's region, named from the same configuration
    assert operated.target("eu-west-1") == read
    names = operated.config.names("eu-west-1")
    assert (read.bucket, read.table_name, read.queue_name, read.dlq_name) == (
        names.bucket, names.table, names.queue, names.dlq)  # fmt: skip
    assert read.endpoint is None and read.account_id == ACCOUNT
    assert read.query_role_arn == f"arn:aws:iam::{ACCOUNT}:role/{names.query_role}"


def test_a_read_on_aws_may_leave_out_the_environment_an_operation_may_not(workspace: Path) -> None:
    from analytics_platform.targeting.deployment import resolve_target

    with pytest.raises(ConfigError, match="--env"):
        resolve_deployment(env=None)
    assert resolve_target("us-east-1", local=False, config_path=None).table_name == "analytics-jobs-us-east-1-dev"


def test_a_region_outside_the_deployment_is_refused_by_its_target(workspace: Path) -> None:
    deployment = resolve_deployment(env="staging", regions=["eu-west-1"])
    with pytest.raises(OperationError, match="us-east-1 is not part of staging"):
        deployment.target("us-east-1")


def test_a_local_read_sees_what_was_applied_and_only_the_running_environment(workspace: Path) -> None:
    from analytics_platform.local.state import LocalOutputs, RegionOutputs, write_outputs
    from analytics_platform.targeting.deployment import resolve_target

    # GIVEN dev running locally with its outputs, and dev's file changed since (another retention)
    paths = start_fake_platform(workspace)
    names = RegionOutputs("applied-bucket", "applied-table", f"{ENDPOINT}/1/q", f"{ENDPOINT}/1/d", "f", "g", "w")
    write_outputs(paths, LocalOutputs(ENDPOINT, {"us-east-1": names}))
    (workspace / "environments" / "dev.toml").write_text("log_retention_days = 30\n")
    # WHEN a read resolves the region THEN it names what the outputs name, on the local endpoint
    deployment = resolve_deployment(env=None, regions=["us-east-1"], local=True, paths=paths, purpose="read")
    target = deployment.target("us-east-1")
    assert (target.bucket, target.table_name, target.queue_name, target.endpoint) == (
        "applied-bucket", "applied-table", "q", ENDPOINT)  # fmt: skip
    assert deployment.regions == ("us-east-1",) and deployment.running
    # another environment, or a region the platform does not run, is refused by name
    with pytest.raises(OperationError, match="runs environment 'dev', not 'staging'"):
        resolve_deployment(env="staging", local=True, paths=paths, purpose="read")
    with pytest.raises(OperationError, match="eu-west-1 is not part of the local platform"):
        resolve_deployment(env=None, regions=["eu-west-1"], local=True, paths=paths, purpose="read")
    # nothing up: the same message as every local command
    with pytest.raises(OperationError, match="tap local up"):
        resolve_target("us-east-1", local=True, config_path=None)


def test_the_console_reads_what_the_resolver_resolves(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from analytics_platform.cli.console import console_source
    from analytics_platform.local.state import LocalOutputs, RegionOutputs, write_outputs

    paths = start_fake_platform(workspace)
    monkeypatch.setenv("TAP_LOCAL_HOME", str(paths.root))
    regions = {r: RegionOutputs(f"b-{r}", f"t-{r}", "q", "d", "f", "g", "w") for r in ("us-east-1", "eu-west-1")}
    write_outputs(paths, LocalOutputs(ENDPOINT, regions))
    source = console_source(local=True, config_path=None, env=None)
    assert (source.environment, source.local, source.regions) == ("dev", True, ["us-east-1", "eu-west-1"])
    assert source.target("eu-west-1").table_name == "t-eu-west-1"
    with pytest.raises(OperationError, match="not 'staging'"):
        console_source(local=True, config_path=None, env="staging")
