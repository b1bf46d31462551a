"""The ``tap`` command line: synth, check, bootstrap, preflight, plan, deploy, destroy, drift, redrive, etl convert,
local up/down/constrain, demo, jobs (and jobs retry), query and datasets.

Heavy modules (cdktf bindings, DuckDB, moto) are imported inside the subcommands that need them, so
``tap --help`` and config errors answer at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from analytics_platform.etl.job_values import JobStatus

if TYPE_CHECKING:
    from analytics_platform.infra.config import PlatformConfig

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def _load_config(path: str | None, env: str | None = None) -> PlatformConfig:
    from analytics_platform.infra.config import load_config

    return load_config(path, env_name=env)


def synth_for_cdktf(config_path: str | None) -> int:
    """Entry used by ``tap.py`` (``cdktf synth``): output goes where the cdktf CLI asks; ``TAP_ENV`` names the
    environment."""
    outdir = os.environ.get("CDKTF_OUTDIR", "cdktf.out")
    return _run(lambda: _synth(config_path, outdir, os.environ.get("TAP_ENV") or None))


def _synth(config_path: str | None, outdir: str, env: str | None = None) -> int:
    from analytics_platform.infra.account import resolve_account

    return _synth_config(resolve_account(_load_config(config_path, env)), outdir)


def _synth_config(config: PlatformConfig, outdir: str) -> int:
    from analytics_platform.infra.app import synth

    out = synth(config, outdir=outdir)
    regions = ", ".join(r.region for r in config.regions)
    print(f"synthesized {len(config.regions)} stack(s) ({regions}) of {config.environment} into {out}/stacks")
    return EXIT_OK


def _cmd_synth(args: argparse.Namespace) -> int:
    return _synth(args.config, args.out, args.env)


def _check_one(args: argparse.Namespace, env: str | None, out: str) -> int:
    from analytics_platform.infra.account import account_for_check
    from analytics_platform.infra.checks import run_checks

    config, note = account_for_check(_load_config(args.config, env))
    if note:
        print(f"tap check: {note}")
    if not args.no_synth:
        _synth_config(config, out)
    findings = run_checks(config, Path(out), with_checkov=not args.skip_checkov)
    if not args.skip_validate:
        findings += _terraform_validate(config, Path(out))
    for finding in findings:
        print(f"FINDING {finding}")
    label = f" of {env}" if env else ""
    print(f"tap check: {len(findings)} finding(s) in {len(config.regions)} stack(s){label}")
    return len(findings)


def _terraform_validate(config: PlatformConfig, out: Path) -> list[str]:
    """``terraform validate`` of every stack (the provider's schema refuses values AWS refuses)."""
    import tempfile

    from analytics_platform.infra.names import stack_id
    from analytics_platform.local.terraform import TerraformError, validate_stacks

    names = [stack_id(r.region, config.environment_suffix) for r in config.regions]
    with tempfile.TemporaryDirectory(prefix="tap-validate-") as work:
        try:
            return validate_stacks(out / "stacks", names, Path(work))
        except TerraformError as error:
            return [f"terraform validate could not run ({error}); --skip-validate skips it"]


def _cmd_check(args: argparse.Namespace) -> int:
    if not args.all_envs:
        return EXIT_FAILED if _check_one(args, args.env, args.out) else EXIT_OK
    from analytics_platform.infra.config import environment_names, isolation_findings

    names = environment_names()
    if not names:
        print("error: --all-envs: no environment files (environments/<name>.toml)", file=sys.stderr)
        return EXIT_USAGE
    findings = isolation_findings(names)
    for finding in findings:
        print(f"FINDING {finding}")
    total = len(findings) + sum(_check_one(args, name, str(Path(args.out) / name)) for name in names)
    print(f"tap check --all-envs: {total} finding(s) in {len(names)} environment(s) ({', '.join(names)})")
    return EXIT_FAILED if total else EXIT_OK


def _port(text: str) -> int:
    """A TCP port (argparse type): anything else is a usage error before anything starts."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port (1 to 65535)")
    return port


def _reject_ratio(text: str) -> float:
    """``--max-reject-ratio`` within the worker setting's own range (argparse type)."""
    from analytics_platform.etl.settings import tunable_fields

    (definition,) = [f for f in tunable_fields() if f.name == "max_reject_ratio"]
    low, high = definition.metadata["minimum"], definition.metadata["maximum"]
    try:
        ratio = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not low <= ratio <= high:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text} is outside {low} to {high} (a share of the rows, not a percentage)")
    return ratio


def _cmd_etl_convert(args: argparse.Namespace) -> int:
    from analytics_platform.etl.convert_cli import convert_command

    return convert_command(args.input, args.output, max_reject_ratio=args.max_reject_ratio, as_json=args.json)


def _cmd_local_up(args: argparse.Namespace) -> int:
    from analytics_platform.local.platform import local_up

    return local_up(config_path=args.config, port=args.port, fault_rate=args.fault_rate, env=args.env)


def _cmd_local_down(args: argparse.Namespace) -> int:
    from analytics_platform.local.platform import local_down

    return local_down()


def _cmd_demo(args: argparse.Namespace) -> int:
    from analytics_platform.local.demo import run_demo

    return run_demo(config_path=args.config, port=args.port, keep=args.keep, env=args.env)


def _cmd_jobs(args: argparse.Namespace) -> int:
    from analytics_platform.local.jobs_query import jobs_command

    if not args.region:
        print("error: tap jobs: --region is required", file=sys.stderr)
        return EXIT_USAGE

    return jobs_command(
        region=args.region,
        status=args.status,
        since=args.since,
        as_json=args.json,
        config_path=args.config,
        env=args.env,
    )


def _cmd_retry(args: argparse.Namespace) -> int:
    from analytics_platform.ops.recover import retry_command

    return retry_command(
        region=args.region, local=args.local, config_path=args.config, env=args.env, job_ids=args.job_ids,
        status=args.status, since=args.since, restore=args.restore,
    )  # fmt: skip


def _cmd_redrive(args: argparse.Namespace) -> int:
    from analytics_platform.ops.recover import redrive_command

    return redrive_command(region=args.region, local=args.local, config_path=args.config, env=args.env)


def _cmd_query(args: argparse.Namespace) -> int:
    from analytics_platform.analytics.commands import query_command

    return query_command(
        region=args.region, sql=args.sql, local=args.local, as_json=args.json, config_path=args.config, env=args.env,
        role_arn=args.role_arn, as_query_role=args.as_query_role,
    )  # fmt: skip


def _cmd_datasets(args: argparse.Namespace) -> int:
    from analytics_platform.analytics.commands import datasets_command

    return datasets_command(
        region=args.region, local=args.local, as_json=args.json, config_path=args.config, env=args.env
    )


def _cmd_bootstrap(args: argparse.Namespace) -> int:
    from analytics_platform.ops.commands import bootstrap_command

    return bootstrap_command(env=args.env, regions=args.region, local=args.local, config_path=args.config)


def _cmd_terraform(args: argparse.Namespace) -> int:
    from analytics_platform.ops.commands import terraform_command

    return terraform_command(
        args.command, env=args.env, regions=args.region, local=args.local, config_path=args.config,
        assume_yes=getattr(args, "yes", False), allow_data_loss=getattr(args, "allow_data_loss", False),
        skip_preflight=getattr(args, "skip_preflight", False),
    )  # fmt: skip


def _cmd_preflight(args: argparse.Namespace) -> int:
    from analytics_platform.ops.preflight import preflight_command

    return preflight_command(
        env=args.env, regions=args.region, local=args.local, config_path=args.config, as_json=args.json
    )


def _cmd_local_constrain(args: argparse.Namespace) -> int:
    from analytics_platform.local.constrain import constrain_command

    return constrain_command(
        concurrency_limit=args.concurrency_limit, foreign_buckets=args.foreign_bucket, reset=args.reset
    )


def _cmd_drift(args: argparse.Namespace) -> int:
    from analytics_platform.ops.commands import drift_command

    return drift_command(
        env=args.env, regions=args.region, local=args.local, config_path=args.config, publish=args.publish
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``tap``."""
    parser = argparse.ArgumentParser(prog="tap", description="Multi-region analytics platform as code.")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, handler: Callable[[argparse.Namespace], int] | None, help_text: str) -> argparse.ArgumentParser:
        """A subcommand; ``None`` for a group whose own subcommands are required (and carry the handlers)."""
        command = sub.add_parser(name, help=help_text, description=help_text)
        if handler is not None:
            command.set_defaults(handler=handler)
        return command

    def config_option(command: argparse.ArgumentParser) -> None:
        command.add_argument("--env", help="named environment: environments/ENV.toml over the defaults")
        command.add_argument("--config", help="JSON or TOML file over the defaults (and over --env's file)")

    synth = add("synth", _cmd_synth, "Synthesize one Terraform stack per region.")
    synth.add_argument("--out", default="cdktf.out", help="output folder (default: cdktf.out)")
    config_option(synth)

    check = add(
        "check", _cmd_check, "Synthesize, then check residency, IAM, tags, names, cross-region consistency and checkov."
    )
    check.add_argument("--out", default="cdktf.out", help="synth output folder (default: cdktf.out)")
    check.add_argument("--no-synth", action="store_true", help="check an existing synth output")
    check.add_argument("--skip-checkov", action="store_true", help="run only the project's own checks")
    check.add_argument(
        "--skip-validate", action="store_true", help="skip terraform validate (needs Terraform and the provider mirror)"
    )
    check.add_argument(
        "--all-envs", action="store_true",
        help="check every environments/*.toml (each synthesized into OUT/<env>) and that their state is isolated",
    )  # fmt: skip
    config_option(check)

    def operations_options(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "--region", action="append", metavar="R", help="only this region (repeatable; default: every region)"
        )
        command.add_argument("--local", action="store_true", help="the running local platform (tap local up)")
        config_option(command)

    bootstrap = add(
        "bootstrap", _cmd_bootstrap,
        "Create (or confirm) each region's Terraform state bucket and lock table, in that region; idempotent.",
    )  # fmt: skip
    operations_options(bootstrap)
    preflight = add(
        "preflight", _cmd_preflight,
        "Read-only checks per region, in parallel, that the account can take the stacks; exit 1 if one fails.",
    )  # fmt: skip
    preflight.add_argument("--json", action="store_true", help="a JSON list of {region, check, ok, detail, remedy}")
    operations_options(preflight)
    for verb, text in (
        ("plan", "Synthesize, then plan every regional stack in parallel; a summary table per region."),
        ("deploy", "Synthesize, then plan and apply every regional stack in parallel; a summary table per region."),
        ("destroy", "Destroy every regional stack of an environment in parallel (asks first, unless --yes)."),
    ):
        command = add(verb, _cmd_terraform, text)
        operations_options(command)
        if verb == "destroy":
            command.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        if verb == "deploy":
            command.add_argument(
                "--allow-data-loss", action="store_true",
                help="apply even if the plan deletes or replaces a data bucket, job table or key",
            )  # fmt: skip
            command.add_argument(
                "--skip-preflight", action="store_true", help="do not run tap preflight's checks first"
            )
    drift = add(
        "drift", _cmd_drift,
        "Compare deployed resources with Terraform's state per region, and regions with each other; exit 2 on drift.",
    )  # fmt: skip
    drift.add_argument("--publish", action="store_true", help="write ConfigurationDrift to each region's CloudWatch")
    operations_options(drift)

    etl = add("etl", None, "ETL worker tools.")
    etl_sub = etl.add_subparsers(dest="etl_command", required=True)
    convert = etl_sub.add_parser("convert", help="Run the worker's transform on a local file.")
    convert.set_defaults(handler=_cmd_etl_convert)
    convert.add_argument("input", help="CSV / JSON Lines / JSON array file, optionally gzip")
    convert.add_argument("output", nargs="?", help="Parquet output (default: INPUT stem + .parquet)")
    convert.add_argument(
        "--max-reject-ratio", type=_reject_ratio, default=0.1, help="0.0 to 0.99, as the worker setting (default 0.1)"
    )
    convert.add_argument("--json", action="store_true", help="print the job summary as JSON")

    local = add("local", None, "Embedded local AWS.")
    local_sub = local.add_subparsers(dest="local_command", required=True)
    up = local_sub.add_parser("up", help="Start local AWS and apply every regional stack to it.")
    up.set_defaults(handler=_cmd_local_up)
    up.add_argument("--port", type=_port, default=None, help="endpoint port, 1 to 65535 (default: a free port)")
    up.add_argument(
        "--fault-rate", type=float, default=0.0,
        help="share (0 to <1) of the worker's S3/DynamoDB/SQS requests answered with a transient error (default 0)",
    )  # fmt: skip
    config_option(up)
    down = local_sub.add_parser("down", help="Destroy the local stacks and stop local AWS.")
    down.set_defaults(handler=_cmd_local_down)
    constrain = local_sub.add_parser(
        "constrain", help="Make the running local endpoint play a constrained account (at once, no restart).",
        description="Make the running local endpoint play a constrained account (at once, no restart).",
    )  # fmt: skip
    constrain.set_defaults(handler=_cmd_local_constrain)
    constrain.add_argument(
        "--concurrency-limit",
        type=int,
        metavar="N",
        help="Lambda concurrent executions quota per region (default 1000)",
    )
    constrain.add_argument(
        "--foreign-bucket", action="append", default=[], metavar="NAME",
        help="answer this bucket name as another account's (403; CreateBucket 409); repeatable",
    )  # fmt: skip
    constrain.add_argument("--reset", action="store_true", help="back to a new account's answers")

    demo = add("demo", _cmd_demo, "Run the platform locally end to end with sample data.")
    demo.add_argument("--keep", action="store_true", help="leave the local platform up afterwards")
    demo.add_argument("--port", type=_port, default=None, help="endpoint port, 1 to 65535 (default: a free port)")
    config_option(demo)

    jobs = add("jobs", _cmd_jobs, "List jobs of one region through the job table's indexes (or retry some).")
    jobs.add_argument("--region")
    jobs.add_argument("--status", choices=[s.value for s in JobStatus])
    jobs.add_argument("--since", help="ISO date or time, or a duration such as 2h / 30m (default: 24h)")
    jobs.add_argument("--json", action="store_true")
    config_option(jobs)
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=False)
    retry = jobs_sub.add_parser(
        "retry", help="Re-queue FAILED / DEAD_LETTERED jobs' object versions; each keeps its history.",
        description="Re-queue FAILED / DEAD_LETTERED jobs' object versions; each keeps its history.",
    )  # fmt: skip
    retry.set_defaults(handler=_cmd_retry)
    retry.add_argument("job_ids", nargs="*", metavar="JOB_ID", help="job ids of --region's table")
    retry.add_argument("--region", required=True)
    # SUPPRESS: an option given before "retry" (tap jobs --env prod retry ...) is not reset by the subcommand.
    retry.add_argument(
        "--status", choices=["FAILED", "DEAD_LETTERED"], default=argparse.SUPPRESS,
        help="every job in this state (with --since)",
    )  # fmt: skip
    retry.add_argument(
        "--since", default=argparse.SUPPRESS,
        help="with --status: ISO date or time, or a duration such as 1d / 2h (default: 24h)",
    )  # fmt: skip
    retry.add_argument(
        "--restore", action="store_true",
        help="start the restore of versions archived to Glacier (retry them again once it is done)",
    )  # fmt: skip
    retry.add_argument("--local", action="store_true", help="the running local platform (tap local up)")
    retry.add_argument("--env", default=argparse.SUPPRESS, help="named environment: environments/ENV.toml")
    retry.add_argument("--config", default=argparse.SUPPRESS, help="JSON or TOML file over the defaults")

    redrive = add(
        "redrive", _cmd_redrive,
        "Move one region's dead-letter queue back to its work queue; the jobs are processed again.",
    )  # fmt: skip
    redrive.add_argument("--region", required=True)
    redrive.add_argument("--local", action="store_true", help="the running local platform (tap local up)")
    config_option(redrive)

    query = add(
        "query", _cmd_query,
        "Run SQL over one region's datasets: its Athena workgroup on AWS, DuckDB over its Parquet with --local.",
    )  # fmt: skip
    query.add_argument("sql", help='the query; table names are dataset names, e.g. "SELECT count(*) FROM orders"')
    role = query.add_mutually_exclusive_group()
    role.add_argument("--as-query-role", action="store_true", help="run as the region's query role (README: Query "
                      "boundary): its stack's output query_role_arn")  # fmt: skip
    role.add_argument("--role-arn", metavar="ARN", help="run as this IAM role of the environment's account")
    datasets = add("datasets", _cmd_datasets, "List one region's datasets: columns, types, files, rows, last update.")
    for command in (query, datasets):
        command.add_argument("--region", required=True)
        command.add_argument("--local", action="store_true", help="the running local platform (tap local up)")
        command.add_argument("--json", action="store_true", help="JSON instead of a table")
        config_option(command)
    return parser


def _run(action: Callable[[], int]) -> int:
    from analytics_platform.infra.config import ConfigError

    try:
        return action()
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # the user gets one clear line; TAP_DEBUG=1 shows the traceback
        if os.environ.get("TAP_DEBUG"):
            raise
        name = type(error).__name__
        print(f"error: {name}: {error}", file=sys.stderr)
        return EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tap``; returns the exit code."""
    args = build_parser().parse_args(argv)
    return _run(lambda: int(args.handler(args)))


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["build_parser", "main", "synth_for_cdktf"]
