"""The ``tap bootstrap | plan | deploy | destroy | drift`` commands: resolve, run per region, report, exit code."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import ClientError

from analytics_platform.exit_codes import ExitCode
from analytics_platform.infra.config import ConfigError
from analytics_platform.machine_output import emit, machine_readable
from analytics_platform.ops.runs import RegionRun
from analytics_platform.targeting.deployment import Deployment, OperationError, resolve_deployment


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
    from analytics_platform.ops.state_storage import bootstrap_region

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


#: ``schema`` of the ``--json`` documents of ``tap plan | deploy | destroy`` and ``tap drift``.
TERRAFORM_SCHEMA, DRIFT_SCHEMA = "tap.terraform/1", "tap.drift/1"


def run_rows(runs: Sequence[RegionRun], *, drift: bool = False) -> list[dict[str, Any]]:
    """One JSON row per region: ``region, result, added, changed, destroyed`` (``drift``: ``drifted``),
    ``seconds, error``."""
    counts = (lambda r: {"drifted": r.changed}) if drift else (
        lambda r: {"added": r.added, "changed": r.changed, "destroyed": r.destroyed})  # fmt: skip
    return [
        {"region": r.region, "result": r.result, **counts(r), "seconds": round(r.seconds, 1), "error": r.error}
        for r in runs
    ]


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
    as_json: bool = False,
) -> int:
    """``tap plan | deploy | destroy``: the summary table; exit 1 if any region failed. A deploy runs ``tap
    preflight``'s checks first and stops (exit 1, nothing applied) when one fails, unless ``skip_preflight``.

    ``as_json``: the lines for people go to stderr and stdout carries ``{schema, command, environment, local, ok,
    exit_code, regions: [...]}`` (:func:`run_rows`; empty when refused before Terraform ran).
    """
    document: dict[str, Any] = {"schema": TERRAFORM_SCHEMA, "command": command, "environment": env, "local": local,
                                "regions": []}  # fmt: skip
    with _reported(document, as_json) as result:
        result.append(_terraform(
            command, document, env=env, regions=regions, local=local, config_path=config_path, assume_yes=assume_yes,
            allow_data_loss=allow_data_loss, skip_preflight=skip_preflight,
        ))  # fmt: skip
    return result[0]


@contextmanager
def _reported(document: dict[str, Any], as_json: bool) -> Iterator[list[int]]:
    """Run the block (it appends its exit code) with people's lines on stderr when ``as_json``, then print
    ``document`` with ``ok`` and ``exit_code``. A configuration error (exit 2) or any other failure (exit 1) is
    reported as ``tap`` reports it, the document still printed (``TAP_DEBUG=1``: the traceback instead)."""
    result: list[int] = []
    with machine_readable(as_json):
        try:
            yield result
        except ConfigError as error:
            if not as_json:
                raise
            print(f"error: {error}", file=sys.stderr)
            result.append(ExitCode.USAGE)
        except Exception as error:
            if not as_json or os.environ.get("TAP_DEBUG"):
                raise
            print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
            result.append(ExitCode.FAILED)
    if as_json:
        emit({**document, "ok": result[0] == ExitCode.OK, "exit_code": int(result[0])})


def _resolve_for(
    document: dict[str, Any], env: str | None, regions: Sequence[str] | None, local: bool, config_path: str | None
) -> Deployment | None:
    """The deployment, named in ``document``; None (the reason on stderr) when it cannot be resolved."""
    try:
        deployment = _resolve(env, regions, local, config_path)
    except OperationError as error:
        print(f"error: {error}", file=sys.stderr)
        return None
    document["environment"] = deployment.env
    return deployment


def _terraform(
    command: str, document: dict[str, Any], *, env: str | None, regions: Sequence[str] | None, local: bool,
    config_path: str | None, assume_yes: bool, allow_data_loss: bool, skip_preflight: bool,
) -> int:  # fmt: skip
    from analytics_platform.ops.runs import confirm_destroy, summary_table, terraform_runs

    deployment = _resolve_for(document, env, regions, local, config_path)
    if deployment is None:
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
    except OperationError as error:  # the environment's lock is held: refused before anything happened
        print(f"error: {error}", file=sys.stderr)
        return ExitCode.USAGE
    document["regions"] = run_rows(runs)
    print(summary_table(runs))
    return ExitCode.FAILED if any(run.failed for run in runs) else ExitCode.OK


def drift_command(
    *, env: str | None, regions: Sequence[str] | None, local: bool, config_path: str | None, publish: bool,
    as_json: bool = False,
) -> int:  # fmt: skip
    """``tap drift``: 0 in sync, 3 drifted, 1 a region could not be checked (or its metric not published), 2 a
    usage or configuration error.

    ``as_json``: stdout carries ``{schema, environment, local, ok, exit_code, regions: [...], drifts: [{region,
    address, kind, attributes}], code: [...]}`` (``code``: where the synthesized stacks differ between regions).
    """
    document: dict[str, Any] = {"schema": DRIFT_SCHEMA, "environment": env, "local": local, "regions": [],
                                "drifts": [], "code": []}  # fmt: skip
    with _reported(document, as_json) as result:
        result.append(_drift_command(document, env=env, regions=regions, local=local, config_path=config_path,
                                     publish=publish))  # fmt: skip
    return result[0]


def _drift_command(
    document: dict[str, Any], *, env: str | None, regions: Sequence[str] | None, local: bool,
    config_path: str | None, publish: bool,
) -> int:  # fmt: skip
    deployment = _resolve_for(document, env, regions, local, config_path)
    if deployment is None:
        return ExitCode.USAGE
    print(f"drift: {deployment.env} in {', '.join(deployment.regions)}")
    try:
        with deployment.exclusive():
            return _drift(deployment, publish, document)
    except OperationError as error:  # the environment's lock is held: refused before anything happened
        print(f"error: {error}", file=sys.stderr)
        return ExitCode.USAGE


def _drift(deployment: Deployment, publish: bool, document: dict[str, Any]) -> int:
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
    document.update(
        regions=run_rows(report.runs, drift=True), code=in_code,
        drifts=[{"region": d.region, "address": d.address, "kind": d.kind, "attributes": d.attributes}
                for d in report.drifts],
    )  # fmt: skip
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
