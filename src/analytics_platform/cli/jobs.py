"""``tap jobs`` (and ``tap jobs retry``) and ``tap redrive``: one region's jobs, seen and recovered.

The command functions resolve the region's resources as every region-bound command does
(:func:`analytics_platform.targeting.deployment.resolve_target`), run :mod:`analytics_platform.ops.retry` or
:mod:`analytics_platform.ops.redrive` on them, print a report and return an exit code: 0 everything done, 1
something was not done (reported per message or job), 2 refused before anything happened (bad arguments, region
not deployed). boto3 and what needs it are imported inside them, so the parser (``tap --help``) stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from analytics_platform.cli.options import (
    Command,
    Subparsers,
    add_command,
    config_options,
    json_option,
    target_options,
    usage_error,
)  # fmt: skip
from analytics_platform.etl.job_values import RETRYABLE, JobStatus, iso
from analytics_platform.exit_codes import ExitCode

if TYPE_CHECKING:
    from analytics_platform.targeting.region_target import RegionTarget


def _queue_urls(sqs: Any, target: RegionTarget) -> tuple[str, str]:
    """The region's work queue and DLQ URLs, by the names the target resolved."""
    from botocore.exceptions import ClientError

    from analytics_platform.targeting.region_target import TargetError

    if not target.queue_name or not target.dlq_name:
        raise TargetError(f"the queues of {target.region} are not known")
    try:
        return (
            str(sqs.get_queue_url(QueueName=target.queue_name)["QueueUrl"]),
            str(sqs.get_queue_url(QueueName=target.dlq_name)["QueueUrl"]),
        )
    except ClientError as error:
        raise TargetError(
            f"the queues of {target.region} cannot be found ({error}): is the region deployed?"
        ) from error


def redrive_command(
    *, region: str, local: bool, config_path: str | None, env: str | None = None,
    timeout_seconds: float | None = None,
) -> int:  # fmt: skip
    """``tap redrive --region R``: move the region's DLQ back to its work queue; print how many moved.

    AWS: an SQS message move task, waited for up to ``timeout_seconds`` (by default
    :data:`~analytics_platform.ops.redrive.MOVE_TASK_TIMEOUT_SECONDS`). ``--local``: receive-send-delete (the
    local endpoint has no move tasks). Exit 0 when the move finished, 1 when not (still running, failed, some
    messages not sent), 2 when the region cannot be resolved.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    from analytics_platform.ops.redrive import MOVE_TASK_TIMEOUT_SECONDS, RedriveMethod, redrive
    from analytics_platform.targeting.deployment import resolve_target
    from analytics_platform.targeting.region_target import TargetError

    try:
        target = resolve_target(region, local=local, config_path=config_path, env=env)
        sqs = target.client("sqs")
        queue_url, dlq_url = _queue_urls(sqs, target)
    except (TargetError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return ExitCode.USAGE
    method = RedriveMethod.COPY if target.local else RedriveMethod.MOVE_TASK
    timeout = MOVE_TASK_TIMEOUT_SECONDS if timeout_seconds is None else timeout_seconds
    try:
        report = redrive(sqs, queue_url=queue_url, dlq_url=dlq_url, method=method, timeout_seconds=timeout,
                         s3=target.client("s3"))  # fmt: skip
    except (ClientError, BotoCoreError) as error:
        print(f"error: {region}: {error}", file=sys.stderr)
        return ExitCode.FAILED
    print("\n".join(report.lines(region)))
    if report.moved:
        print("  their jobs are processed again by the worker: follow them with 'tap jobs --region "
              f"{region} --since 1h'")  # fmt: skip
    return ExitCode.OK if report.finished and not report.failed and not report.archived else ExitCode.FAILED


def retry_command(
    *, region: str, local: bool, config_path: str | None, env: str | None = None, job_ids: Sequence[str] = (),
    status: str | None = None, since: str | None = None, restore: bool = False,
) -> int:  # fmt: skip
    """``tap jobs retry JOB_ID ... --region R`` or ``tap jobs retry --status FAILED|DEAD_LETTERED --since 1d
    --region R``: re-queue those jobs' object versions; print one line per job.

    ``restore``: start the restore of archived versions (reported "archived" either way). Exit 0 when every
    selected job was re-queued (or none matched), 1 when some were not (refused, gone, archived, lost a race,
    send failed), 2 when refused before anything happened.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    from analytics_platform.analytics.job_listing import parse_since
    from analytics_platform.ops.retry import retry_jobs
    from analytics_platform.targeting.deployment import resolve_target
    from analytics_platform.targeting.region_target import TargetError

    try:
        start = parse_since(since) if status else None
        target = resolve_target(region, local=local, config_path=config_path, env=env)
        sqs = target.client("sqs")
        queue_url, _ = _queue_urls(sqs, target)
        report = retry_jobs(
            table=target.job_table(), s3=target.client("s3"), sqs=sqs, region=region, bucket=target.bucket,
            queue_url=queue_url, job_ids=job_ids, status=status, since=start, restore=restore,
        )  # fmt: skip
    except (TargetError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return ExitCode.USAGE
    except (ClientError, BotoCoreError) as error:
        print(f"error: {region}: {error}", file=sys.stderr)
        return ExitCode.FAILED
    if not report.jobs:
        print(f"no {status} job in {region} since {iso(start or parse_since(None))}")
        return ExitCode.OK
    print("\n".join(report.lines()))
    return ExitCode.OK if report.complete else ExitCode.FAILED


def jobs_command(
    *, region: str, status: str | None, since: str | None, as_json: bool, config_path: str | None,
    env: str | None = None,
) -> int:  # fmt: skip
    """``tap jobs``: the region's jobs since ``since`` (newest first), as a table or JSON (``tap.jobs`` schema)."""
    import json

    from analytics_platform.analytics.job_listing import format_rows, job_table, parse_since, query_jobs

    try:
        start = parse_since(since)
        items = query_jobs(job_table(region, config_path, env), since=start, status=status)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return ExitCode.USAGE
    if as_json:
        print(json.dumps(items, indent=2, default=lambda v: int(v) if v == int(v) else float(v)))
    else:
        print("\n".join(format_rows(items)))
        print(f"{len(items)} job(s) in {region} since {iso(start)}")
    return ExitCode.OK


def _cmd_jobs(args: argparse.Namespace) -> int:
    if not args.region:  # checked here: "tap jobs retry --region R" carries its own --region
        return usage_error(args, "the following arguments are required: --region")
    return jobs_command(
        region=args.region, status=args.status, since=args.since, as_json=args.json, config_path=args.config,
        env=args.env,
    )  # fmt: skip


def _cmd_retry(args: argparse.Namespace) -> int:
    return retry_command(
        region=args.region, local=args.local, config_path=args.config, env=args.env, job_ids=args.job_ids,
        status=args.status, since=args.since, restore=args.restore,
    )  # fmt: skip


def _cmd_redrive(args: argparse.Namespace) -> int:
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
