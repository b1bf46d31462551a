"""``tap jobs`` (and ``tap jobs retry``) and ``tap redrive``: one region's jobs, seen and recovered."""

from __future__ import annotations

import argparse

from analytics_platform.cli.options import (
    Command,
    Subparsers,
    add_command,
    config_options,
    json_option,
    target_options,
    usage_error,
)  # fmt: skip
from analytics_platform.etl.job_values import RETRYABLE, JobStatus


def _cmd_jobs(args: argparse.Namespace) -> int:
    from analytics_platform.local.jobs_query import jobs_command

    if not args.region:  # checked here: "tap jobs retry --region R" carries its own --region
        return usage_error(args, "the following arguments are required: --region")
    return jobs_command(
        region=args.region, status=args.status, since=args.since, as_json=args.json, config_path=args.config,
        env=args.env,
    )  # fmt: skip


def _cmd_retry(args: argparse.Namespace) -> int:
    from analytics_platform.ops.recover import retry_command

    return retry_command(
        region=args.region, local=args.local, config_path=args.config, env=args.env, job_ids=args.job_ids,
        status=args.status, since=args.since, restore=args.restore,
    )  # fmt: skip


def _cmd_redrive(args: argparse.Namespace) -> int:
    from analytics_platform.ops.recover import redrive_command

    return redrive_command(region=args.region, local=args.local, config_path=args.config, env=args.env)


JOBS = Command(
    "jobs", _cmd_jobs, "List one region's jobs through the job table's indexes (or retry some: tap jobs retry).",
    examples=("tap jobs --region eu-west-1", "tap jobs --region eu-west-1 --status FAILED --since 2h --json"),
)  # fmt: skip
RETRY = Command(
    "retry", _cmd_retry, "Re-queue FAILED / DEAD_LETTERED jobs' object versions; each keeps its history.",
    examples=(
        "tap jobs retry 3f2a... --region eu-west-1",
        "tap jobs retry --status FAILED --since 1d --region us-east-1",
        "tap jobs retry --status DEAD_LETTERED --region us-east-1 --restore",
    ),
    details="Exit 0 when every selected job was re-queued (or none matched), 1 when some were not, 2 when refused "
    "before anything happened.",
)  # fmt: skip
REDRIVE = Command(
    "redrive", _cmd_redrive,
    "Move one region's dead-letter queue back to its work queue; the jobs are processed again.",
    examples=("tap redrive --region eu-west-1", "tap redrive --region eu-west-1 --local"),
)  # fmt: skip


def register(sub: Subparsers) -> None:
    jobs = add_command(sub, JOBS)
    jobs.add_argument("--region", metavar="REGION", help="the region whose jobs to list; required")
    jobs.add_argument("--status", choices=[s.value for s in JobStatus], help="only jobs in this state")
    jobs.add_argument("--since", help="ISO date or time, or a duration such as 2h / 30m (default: 24h)")
    json_option(jobs, "the jobs")
    config_options(jobs)
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=False, metavar="{retry}")
    retry = add_command(jobs_sub, RETRY)
    retry.add_argument("job_ids", nargs="*", metavar="JOB_ID", help="job ids of --region's table")
    # SUPPRESS: an option given before "retry" (tap jobs --status ... retry) is not reset by the subcommand.
    retry.add_argument(
        "--status", choices=sorted(RETRYABLE), default=argparse.SUPPRESS,
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
    target_options(retry, regions="one", keep_parent=True)

    redrive = add_command(sub, REDRIVE)
    target_options(redrive, regions="one")
