"""``tap preflight``: read-only checks, per region and in parallel, that an account can take the stacks.

The checks themselves are in :mod:`.preflight_checks` (the quotas in :mod:`.preflight_quotas`). ``tap deploy`` runs
them first and applies nothing when one fails (``--skip-preflight`` to go on anyway).

``--json`` prints a list with one object per region and check::

    [{"region": "eu-west-1", "check": "lambda-concurrency", "ok": false,
      "detail": "quota 10, 0 unreserved; ...", "remedy": "ask for a Lambda concurrent executions quota of ..."}]

``remedy`` is empty for a passed check.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from botocore.exceptions import BotoCoreError, ClientError

from analytics_platform.exit_codes import ExitCode
from analytics_platform.infra.config import ConfigError, PlatformConfig, load_config
from analytics_platform.ops.preflight_checks import (
    Outcome,
    RegionProbe,
    credentials,
    data_bucket,
    lake_formation,
    region_enabled,
    state_bucket,
)
from analytics_platform.ops.preflight_quotas import interface_endpoint_quota, lambda_concurrency, vpc_quota
from analytics_platform.targeting.deployment import Deployment, OperationError, resolve_deployment


@dataclass(frozen=True)
class Check:
    """One check: its name in the report, the IAM actions it reads with, and whether its failure ends the region."""

    name: str
    run: Callable[[RegionProbe], Outcome | None]
    reads: tuple[str, ...]
    gate: bool = False


CHECKS: tuple[Check, ...] = (
    Check("credentials", credentials, ("sts:GetCallerIdentity",), gate=True),
    Check("region-enabled", region_enabled, ("ec2:DescribeRegions",), gate=True),
    Check("lambda-concurrency", lambda_concurrency, ("lambda:GetAccountSettings", "lambda:GetFunctionConcurrency")),
    Check("data-bucket", data_bucket, ("s3:ListBucket",)),
    Check("state-bucket", state_bucket, ("s3:ListBucket",)),
    Check("vpc-quota", vpc_quota, ("ec2:DescribeVpcs", "servicequotas:GetServiceQuota")),
    Check(
        "interface-endpoint-quota",
        interface_endpoint_quota,
        ("ec2:DescribeVpcs", "ec2:DescribeVpcEndpoints", "servicequotas:GetServiceQuota"),
    ),
    Check("lake-formation", lake_formation, ("lakeformation:GetDataLakeSettings", "lakeformation:ListPermissions")),
)


@dataclass(frozen=True)
class CheckResult:
    """One row of the report."""

    region: str
    check: str
    ok: bool
    detail: str
    remedy: str = ""


def _run_check(check: Check, probe: RegionProbe) -> Outcome | None:
    try:
        return check.run(probe)
    except (BotoCoreError, ClientError) as error:  # an unreadable answer fails the check, never the whole run
        return Outcome(
            False,
            f"could not check: {type(error).__name__}: {error}",
            f"let these credentials call {', '.join(check.reads)} in {probe.region}, then run tap preflight again",
        )


def check_region(deployment: Deployment, region: str) -> list[CheckResult]:
    """Every check of ``region``, in :data:`CHECKS` order; a failed gate ends the region's checks."""
    probe = RegionProbe(deployment, region)
    results: list[CheckResult] = []
    for check in CHECKS:
        outcome = _run_check(check, probe)
        if outcome is None:
            continue
        results.append(CheckResult(region, check.name, outcome.ok, outcome.detail, outcome.remedy))
        if check.gate and not outcome.ok:
            results[-1] = CheckResult(
                region, check.name, False, f"{outcome.detail} (the region's other checks were not run)", outcome.remedy
            )
            break
    return results


def run_preflight(deployment: Deployment) -> list[CheckResult]:
    """Every region's checks, the regions in parallel; rows in the deployment's region order."""
    from analytics_platform.ops.runs import RegionRun, run_regions

    def action(region: str, run: RegionRun) -> None:
        run.details["checks"] = check_region(deployment, region)

    runs = run_regions(deployment, action, verb="checking", out=lambda line: None)
    results: list[CheckResult] = []
    for run in runs:
        results += run.details.get("checks", [])
        if run.error:  # a defect in a check, not an answer of AWS: still one failed row, the other regions kept
            results.append(CheckResult(run.region, "preflight", False, run.error, "report this as a bug"))
    return results


def refused_everywhere(config: PlatformConfig, regions: Sequence[str] | None, error: ConfigError) -> list[CheckResult]:
    """The report when the credentials are refused before any region can be checked (another account, or none)."""
    for region in regions or ():
        config.region(region)  # a region the configuration does not hold is a usage error, as with good credentials
    chosen = [r.region for r in config.regions if not regions or r.region in regions]
    remedy = "use credentials of the environment's account (AWS_PROFILE, aws sso login, or that account's CI role)"
    return [CheckResult(region, "credentials", False, str(error), remedy) for region in chosen]


def report_table(results: Sequence[CheckResult]) -> str:
    """Region, check, result and detail, one row each; under a failed row, what to do."""
    header = ("region", "check", "result", "detail")
    rows = [(r.region, r.check, "pass" if r.ok else "FAIL", r.detail) for r in results]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]

    def line(row: tuple[str, ...]) -> str:
        return "  ".join([*(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])), row[3]]).rstrip()

    lines = [line(header), line((*("-" * w for w in widths), "-" * 6))]
    for result, row in zip(results, rows, strict=True):
        lines.append(line(row))
        if result.remedy:
            lines.append(f"{'':{widths[0]}}  to do: {result.remedy}")
    failed = [r for r in results if not r.ok]
    regions = len({r.region for r in results})
    verdict = f"{len(failed)} check(s) FAILED" if failed else "every check passed"
    lines.append(f"preflight: {len(results)} check(s) in {regions} region(s): {verdict}")
    return "\n".join(lines)


def report_json(results: Sequence[CheckResult]) -> str:
    """The ``--json`` document (see the module docstring)."""
    return json.dumps([asdict(result) for result in results], indent=2)


def preflight_command(
    *, env: str | None, regions: Sequence[str] | None, local: bool, config_path: str | None, as_json: bool
) -> int:
    """``tap preflight``: 0 every check passed, 1 one failed, 2 a bad argument or configuration."""
    # a bad file or option is a usage error (exit 2); after this, account_id can only be refused for the credentials
    config = load_config(config_path, env_name=env)
    try:
        deployment = resolve_deployment(env=env, regions=regions, local=local, config_path=config_path)
        results = run_preflight(deployment)
    except OperationError as error:
        print(f"error: {error}", file=sys.stderr)
        return ExitCode.USAGE
    except ConfigError as error:
        if error.field != "account_id":
            raise
        results = refused_everywhere(config, regions, error)
    print(report_json(results) if as_json else report_table(results))
    return ExitCode.FAILED if any(not r.ok for r in results) else ExitCode.OK


def preflight_passes(deployment: Deployment) -> bool:
    """For ``tap deploy``: run the checks; print one line when they pass, the report when one fails."""
    results = run_preflight(deployment)
    failed = [r for r in results if not r.ok]
    if not failed:
        print(f"preflight: {len(results)} check(s) passed in {', '.join(deployment.regions)}")
        for result in results:
            if result.remedy:  # a passing check that leaves something to do after the deploy
                print(f"  [{result.region}] {result.check}: to do: {result.remedy}")
        return True
    print(report_table(results))
    print("error: preflight failed: nothing was applied (fix the above, or deploy with --skip-preflight)",
          file=sys.stderr)  # fmt: skip
    return False
