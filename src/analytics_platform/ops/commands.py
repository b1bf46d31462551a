"""The ``tap bootstrap | plan | deploy | destroy | drift`` commands: resolve, run per region, report, exit code."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from botocore.exceptions import ClientError

from analytics_platform.exit_codes import ExitCode
from analytics_platform.ops.deployment import Deployment, OperationError, resolve_deployment


def _resolve(env: str | None, regions: Sequence[str] | None, local: bool, config_path: str | None) -> Deployment:
    return resolve_deployment(env=env, regions=regions, local=local, config_path=config_path)


def _missing_state_storage(deployment: Deployment) -> list[str]:
    """Regions whose S3 backend bucket does not exist yet (``tap bootstrap`` creates it)."""
    if deployment.config.backend != "s3":
        return []
    missing = []
    for region in deployment.regions:
        bucket = deployment.config.names(region).state_bucket
        try:
            deployment.client("s3", region).head_bucket(Bucket=bucket)
        except ClientError:
            missing.append(f"{region} (s3://{bucket})")
    return missing


def bootstrap_command(*, env: str | None, regions: Sequence[str] | None, local: bool, config_path: str | None) -> int:
    """``tap bootstrap``: exit 1 if any region failed (each region is tried)."""
    from analytics_platform.ops.bootstrap import bootstrap_region

    try:
        deployment = _resolve(env, regions, local, config_path)
    except OperationError as error:
        print(f"error: {error}", file=sys.stderr)
        return ExitCode.USAGE
    if deployment.config.backend != "s3":
        print(f'{deployment.env} uses backend = "local": it has no state bucket or lock table to create (set '
              'backend = "s3" in its file first)')  # fmt: skip
        return ExitCode.OK
    print(f"bootstrap: state storage of {deployment.env} in {', '.join(deployment.regions)}")
    failed = 0
    for region in deployment.regions:
        try:
            result = bootstrap_region(deployment, region)
        except Exception as error:  # the next region is still bootstrapped
            failed += 1
            print(f"  [{region}] FAILED: {type(error).__name__}: {error}")
            continue
        what = "; ".join(result.changes) if result.changes else "already in place, nothing changed"
        print(f"  [{region}] s3://{result.bucket} + {result.table}: {what}")
    return ExitCode.FAILED if failed else ExitCode.OK


def terraform_command(
    command: str,
    *,
    env: str | None,
    regions: Sequence[str] | None,
    local: bool,
    config_path: str | None,
    assume_yes: bool = False,
    allow_data_loss: bool = False,
    skip_preflight: bool = False,
) -> int:
    """``tap plan | deploy | destroy``: the summary table; exit 1 if any region failed. A deploy runs ``tap
    preflight``'s checks first and stops (exit 1, nothing applied) when one fails, unless ``skip_preflight``."""
    from analytics_platform.ops.runs import confirm_destroy, summary_table, terraform_runs

    try:
        deployment = _resolve(env, regions, local, config_path)
    except OperationError as error:
        print(f"error: {error}", file=sys.stderr)
        return ExitCode.USAGE
    if command == "destroy" and deployment.running:
        print(
            f"error: {deployment.env} is the environment 'tap local up' runs; stop it with 'tap local down'",
            file=sys.stderr,
        )
        return ExitCode.USAGE
    if command == "deploy" and not skip_preflight:
        from analytics_platform.ops.preflight import preflight_passes

        if not preflight_passes(deployment):
            return ExitCode.FAILED
    missing = _missing_state_storage(deployment)
    if missing:
        where = " --local" if local else ""
        print(
            f"error: no state bucket for {deployment.env} in {', '.join(missing)}: run "
            f"'tap bootstrap --env {deployment.env}{where}' first",
            file=sys.stderr,
        )
        return ExitCode.USAGE
    if command == "destroy" and not confirm_destroy(deployment, assume_yes):
        print("destroy cancelled")
        return ExitCode.USAGE
    try:
        with deployment.exclusive():
            runs = terraform_runs(deployment, command, allow_data_loss=allow_data_loss)
    except OperationError as error:
        print(f"error: {error}", file=sys.stderr)
        return ExitCode.FAILED
    print(summary_table(runs))
    return ExitCode.FAILED if any(run.failed for run in runs) else ExitCode.OK


def drift_command(
    *, env: str | None, regions: Sequence[str] | None, local: bool, config_path: str | None, publish: bool
) -> int:
    """``tap drift``: 0 in sync, 2 drifted, 1 a region could not be checked (or its metric not published)."""
    try:
        deployment = _resolve(env, regions, local, config_path)
    except OperationError as error:
        print(f"error: {error}", file=sys.stderr)
        return ExitCode.USAGE
    print(f"drift: {deployment.env} in {', '.join(deployment.regions)}")
    try:
        with deployment.exclusive():
            return _drift(deployment, publish)
    except OperationError as error:
        print(f"error: {error}", file=sys.stderr)
        return ExitCode.FAILED


def _drift(deployment: Deployment, publish: bool) -> int:
    from analytics_platform.ops.drift import detect_drift, publish_drift
    from analytics_platform.ops.emulator import emulator_filter
    from analytics_platform.ops.runs import summary_table

    deployment.synthesize()
    from analytics_platform.infra.checks import consistency_findings

    in_code = consistency_findings(deployment.config, deployment.synth_dir) if len(deployment.regions) > 1 else []
    for finding in in_code:
        print(f"DRIFT [code] {finding}")
    report = detect_drift(deployment, accepted=emulator_filter if deployment.local else None)
    for drift in report.drifts:
        print(f"DRIFT {drift.describe()}")
    print(summary_table(report.runs, drift=True))
    unpublished: list[str] = []
    if publish:
        unpublished = publish_drift(deployment, report)
        for failure in unpublished:
            print(f"error: {failure}", file=sys.stderr)
        published = len([run for run in report.runs if not run.failed]) - len(unpublished)
        print(f"published ConfigurationDrift to {published} region(s)' CloudWatch")
    if report.failed or unpublished:
        return ExitCode.FAILED
    return ExitCode.DRIFT if report.drifts or in_code else ExitCode.OK
