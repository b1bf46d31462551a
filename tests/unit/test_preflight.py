"""``tap preflight`` with stub clients: each check's verdict and advice, the report, and ``tap deploy`` stopping
before Terraform when a check fails. No network."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from analytics_platform import cli
from analytics_platform.infra.config import PlatformConfig, RegionConfig, with_account
from analytics_platform.ops import runs
from analytics_platform.ops import stack_commands as commands
from analytics_platform.ops.preflight import CheckResult, check_region, report_json, report_table
from analytics_platform.targeting.deployment import Deployment

ACCOUNT = "111122223333"
REGION = "eu-west-1"


def error(code: str, operation: str = "Call") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, operation)


class Stub:
    """A client whose methods answer from ``answers``: a value, or an exception to raise."""

    def __init__(self, **answers: Any) -> None:
        self.answers = answers

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # pytest and copy look for protocol attributes: a stub has none
            raise AttributeError(name)
        if name not in self.answers:
            raise AssertionError(f"unexpected call {name}")

        def call(**kwargs: Any) -> Any:
            answer = self.answers[name]
            if isinstance(answer, Exception):
                raise answer
            return answer(**kwargs) if callable(answer) else answer

        return call

    def get_paginator(self, name: str) -> Any:
        answer = self.answers[name]
        return Stub(paginate=lambda **kwargs: iter([answer]))


IAM_ONLY = {"Principal": {"DataLakePrincipalIdentifier": "IAM_ALLOWED_PRINCIPALS"}, "Permissions": ["ALL"]}


def new_account(**changes: Stub) -> dict[str, Stub]:
    """The answers of a new account (quota 1000, nothing deployed), with some clients replaced."""
    quota = {"Quota": {"Value": 5.0}}
    clients = {
        "sts": Stub(get_caller_identity={"Account": ACCOUNT}),
        "ec2": Stub(describe_regions={"Regions": [{"RegionName": REGION, "OptInStatus": "opt-in-not-required"}]},
                    describe_vpcs={"Vpcs": [{"VpcId": "vpc-default"}]}),
        "lambda": Stub(get_account_settings={"AccountLimit": {"ConcurrentExecutions": 1000,
                                                              "UnreservedConcurrentExecutions": 1000}},
                       get_function_concurrency=error("ResourceNotFoundException")),
        "s3": Stub(head_bucket=error("404")),
        "service-quotas": Stub(get_service_quota=quota),
        "lakeformation": Stub(get_data_lake_settings={"DataLakeSettings": {
            "CreateDatabaseDefaultPermissions": [IAM_ONLY], "CreateTableDefaultPermissions": [IAM_ONLY]}}),
    }  # fmt: skip
    return {**clients, **changes}


@dataclass(frozen=True)
class StubDeployment(Deployment):
    """A deployment whose clients are stubs."""

    stubs: Any = None

    def client(self, service: str, region: str) -> Any:
        return self.stubs[service]


def stub_deployment(stubs: dict[str, Stub], **config: Any) -> StubDeployment:
    platform = with_account(PlatformConfig(regions=(RegionConfig(REGION, "10.1.0.0/16"),), **config), ACCOUNT)
    return StubDeployment("dev", platform, (REGION,), Path("/nonexistent"), stubs=stubs)


def results_of(stubs: dict[str, Stub], **config: Any) -> dict[str, CheckResult]:
    return {r.check: r for r in check_region(stub_deployment(stubs, **config), REGION)}


def test_a_new_account_passes() -> None:
    found = results_of(new_account())
    assert all(r.ok for r in found.values()), found
    assert "state-bucket" not in found  # a local backend has no state bucket


def test_credentials_of_another_account_stop_the_region() -> None:
    found = results_of(new_account(sts=Stub(get_caller_identity={"Account": "444455556666"})))
    assert list(found) == ["credentials"]
    assert "of account 444455556666, the environment's is 111122223333" in found["credentials"].detail


@pytest.mark.parametrize(
    ("ec2", "said"),
    [
        (Stub(describe_regions={"Regions": [{"RegionName": REGION, "OptInStatus": "not-opted-in"}]}), "not-opted-in"),
        (Stub(describe_regions=error("AuthFailure")), "EC2 endpoint refuses the credentials (AuthFailure)"),
    ],
)
def test_a_region_not_enabled_stops_the_region_with_how_to_enable_it(ec2: Stub, said: str) -> None:
    found = results_of(new_account(ec2=ec2))
    assert list(found) == ["credentials", "region-enabled"]
    assert not found["region-enabled"].ok and said in found["region-enabled"].detail
    assert f"aws account enable-region --region-name {REGION}" in found["region-enabled"].remedy


def test_a_redeploy_counts_the_functions_own_reservation_and_advises_a_lower_one() -> None:
    # GIVEN a quota of 200 with 95 unreserved, 10 of the reserved ones this stack's function's
    settings = {"AccountLimit": {"ConcurrentExecutions": 200, "UnreservedConcurrentExecutions": 95}}
    lam = Stub(get_account_settings=settings, get_function_concurrency={"ReservedConcurrentExecutions": 10})
    # WHEN reserving 10 again: 95 left; reserving 5 would leave 100
    failed = results_of(new_account(**{"lambda": lam}))["lambda-concurrency"]
    # THEN
    assert not failed.ok and "reserving 10 leaves 95" in failed.detail
    assert "quota of at least 205" in failed.remedy and "lower lambda_reserved_concurrency to 5" in failed.remedy
    settings["AccountLimit"]["UnreservedConcurrentExecutions"] = 100
    assert results_of(new_account(**{"lambda": lam}))["lambda-concurrency"].ok


@pytest.mark.parametrize(
    ("answer", "ok", "said"),
    [
        (error("404"), True, "is free: deploy creates it"),
        (error("403"), False, "exists and is not account 111122223333's (403)"),
        ({"BucketRegion": REGION, "ResponseMetadata": {"HTTPHeaders": {}}}, True, "exists and is this account's"),
        ({"BucketRegion": "us-east-1", "ResponseMetadata": {"HTTPHeaders": {}}}, False, "but in us-east-1"),
    ],
)
def test_bucket_names_free_ours_or_another_accounts(answer: Any, ok: bool, said: str) -> None:
    asked: list[dict[str, Any]] = []

    def head_bucket(**kwargs: Any) -> Any:
        asked.append(kwargs)
        if isinstance(answer, Exception):
            raise answer
        return answer

    found = results_of(new_account(s3=Stub(head_bucket=head_bucket)), backend="s3")
    assert (found["data-bucket"].ok, found["state-bucket"].ok) == (ok, ok)
    assert said in found["data-bucket"].detail
    assert {a["ExpectedBucketOwner"] for a in asked} == {ACCOUNT}
    assert [a["Bucket"].split("-")[1] for a in asked] == ["bucket", "tfstate"]


def test_an_unreadable_answer_fails_its_check_naming_the_permission_and_the_others_still_run() -> None:
    found = results_of(new_account(**{"lambda": Stub(get_account_settings=error("AccessDeniedException"))}))
    failed = found["lambda-concurrency"]
    assert not failed.ok and "AccessDeniedException" in failed.detail
    assert "lambda:GetAccountSettings" in failed.remedy
    assert all(r.ok for name, r in found.items() if name != "lambda-concurrency")


def test_an_unreadable_quota_passes_with_a_note() -> None:
    quotas = Stub(get_service_quota=error("AccessDeniedException"))
    found = results_of(new_account(**{"service-quotas": quotas}))
    assert found["vpc-quota"].ok and "quota not readable" in found["vpc-quota"].detail


def test_the_report_has_a_row_per_check_and_what_to_do_under_each_failure() -> None:
    results = [CheckResult(REGION, "credentials", True, "account 1"),
               CheckResult(REGION, "data-bucket", False, "taken", "choose another suffix")]  # fmt: skip
    lines = report_table(results).splitlines()
    assert lines[0].split() == ["region", "check", "result", "detail"]
    assert lines[2].split() == [REGION, "credentials", "pass", "account", "1"]
    assert lines[3].split() == [REGION, "data-bucket", "FAIL", "taken"]
    assert lines[4].strip() == "to do: choose another suffix"
    assert lines[-1] == "preflight: 2 check(s) in 1 region(s): 1 check(s) FAILED"
    assert json.loads(report_json(results))[1] == {
        "region": REGION, "check": "data-bucket", "ok": False, "detail": "taken", "remedy": "choose another suffix"
    }  # fmt: skip


@pytest.mark.parametrize("skip", [False, True])
def test_deploy_runs_preflight_first_and_stops_before_terraform_when_a_check_fails(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], skip: bool
) -> None:
    # GIVEN an account whose quota leaves no room for the reservation
    settings = {"AccountLimit": {"ConcurrentExecutions": 10, "UnreservedConcurrentExecutions": 10}}
    lam = Stub(get_account_settings=settings, get_function_concurrency=error("ResourceNotFoundException"))
    deployment = stub_deployment(new_account(**{"lambda": lam}))
    monkeypatch.setattr(commands, "resolve_deployment", lambda **kwargs: deployment)
    reached: list[str] = []
    monkeypatch.setattr(runs, "terraform_runs", lambda *args, **kwargs: reached.append("terraform") or [])
    # WHEN
    code = cli.main(["deploy", "--env", "dev", *(["--skip-preflight"] if skip else [])])
    # THEN without --skip-preflight: exit 1, the failed check in the report, Terraform never reached
    out, err = capsys.readouterr()
    if skip:
        assert (code, reached) == (0, ["terraform"]) and "lambda-concurrency" not in out
    else:
        assert (code, reached) == (1, [])
        assert [REGION, "lambda-concurrency", "FAIL"] in [line.split()[:3] for line in out.splitlines()]
        assert "nothing was applied" in err


def test_preflight_exit_codes(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from analytics_platform.ops import preflight

    deployment = stub_deployment(new_account())
    monkeypatch.setattr(preflight, "resolve_deployment", lambda **kwargs: deployment)
    assert cli.main(["preflight", "--env", "dev"]) == 0
    assert "every check passed" in capsys.readouterr().out
    monkeypatch.setattr(deployment.stubs["s3"], "answers", {"head_bucket": error("403")})
    assert cli.main(["preflight", "--env", "dev"]) == 1
    # a configuration error is a usage error
    assert cli.main(["preflight", "--config", "/nonexistent.toml"]) == 2


def test_refused_credentials_and_an_unconfigured_region_is_a_usage_error_not_a_pass(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN credentials of another account than the environment's
    caller = SimpleNamespace(get_caller_identity=lambda: {"Account": "444455556666"})
    monkeypatch.setattr("analytics_platform.infra.account._default_sts", lambda _region: caller)
    monkeypatch.setenv("ENVIRONMENT_SUFFIX", "pf")
    config = tmp_config(monkeypatch)
    # WHEN preflight is asked for a region the configuration does not hold THEN it is refused (exit 2, naming it),
    # never an empty "every check passed"
    assert cli.main(["preflight", "--config", str(config), "--region", "us-west-2"]) == 2
    captured = capsys.readouterr()
    assert "us-west-2" in captured.err and "every check passed" not in captured.out
    # AND for a configured region the refusal is a failed credentials row (exit 1)
    assert cli.main(["preflight", "--config", str(config), "--region", "eu-west-1"]) == 1
    assert "credentials" in capsys.readouterr().out


def tmp_config(monkeypatch: pytest.MonkeyPatch) -> Path:
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="pf-"))
    monkeypatch.setenv("TAP_ENVIRONMENTS_DIR", str(folder / "none"))
    path = folder / "c.toml"
    path.write_text('account_id = "111122223333"\n')
    return path
