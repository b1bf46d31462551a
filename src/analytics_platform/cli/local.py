"""``tap local up|down|constrain`` and ``tap demo``: the platform on this machine, no cloud account."""

from __future__ import annotations

import argparse

from analytics_platform.cli.options import (
    Command,
    Subparsers,
    add_command,
    config_options,
    fault_rate,
    port,
)  # fmt: skip


def _cmd_local_up(args: argparse.Namespace) -> int:
    from analytics_platform.local.platform import local_up

    return local_up(config_path=args.config, port=args.port, fault_rate=args.fault_rate, env=args.env)


def _cmd_local_down(args: argparse.Namespace) -> int:
    from analytics_platform.local.platform import local_down

    return local_down()


def _cmd_local_constrain(args: argparse.Namespace) -> int:
    from analytics_platform.local.constrain import constrain_command

    return constrain_command(
        concurrency_limit=args.concurrency_limit, foreign_buckets=args.foreign_bucket, reset=args.reset
    )


def _cmd_demo(args: argparse.Namespace) -> int:
    from analytics_platform.demo import run_demo

    return run_demo(config_path=args.config, port=args.port, keep=args.keep, env=args.env)


LOCAL = Command("local", None, "The platform on this machine: embedded local AWS with every regional stack applied.")
UP = Command(
    "up", _cmd_local_up, "Start local AWS and apply every regional stack to it (Terraform, in parallel).",
    examples=("tap local up", "tap local up --env dev --port 4566", "tap local up --fault-rate 0.1"),
    details="Prints the endpoint and each region's bucket; point any AWS tool at it with --endpoint-url.",
)  # fmt: skip
DOWN = Command(
    "down", _cmd_local_down, "Destroy the local stacks and stop local AWS; says so when nothing is up.",
    examples=("tap local down",),
)  # fmt: skip
CONSTRAIN = Command(
    "constrain", _cmd_local_constrain, "Make the running local endpoint play a constrained account (at once, no "
    "restart).",
    examples=("tap local constrain --concurrency-limit 10", "tap local constrain --foreign-bucket NAME",
              "tap local constrain --reset"),
)  # fmt: skip
DEMO = Command(
    "demo", _cmd_demo, "Run the platform locally end to end with sample data: up, uploads, jobs, queries, down.",
    examples=("tap demo", "tap demo --keep"),
)  # fmt: skip


def register(sub: Subparsers) -> None:
    local = add_command(sub, LOCAL)
    local_sub = local.add_subparsers(dest="local_command", required=True, metavar="{up,down,constrain}")
    up = add_command(local_sub, UP)
    up.add_argument("--port", type=port, default=None, help="endpoint port, 1 to 65535 (default: a free port)")
    up.add_argument(
        "--fault-rate", type=fault_rate, default=0.0, metavar="RATE",
        help="share (0 to <1) of the worker's S3/DynamoDB/SQS requests answered with a transient error (default 0)",
    )  # fmt: skip
    config_options(up)
    add_command(local_sub, DOWN)
    constrain = add_command(local_sub, CONSTRAIN)
    constrain.add_argument(
        "--concurrency-limit", type=int, metavar="N", help="Lambda concurrent executions quota per region "
        "(default 1000)",
    )  # fmt: skip
    constrain.add_argument(
        "--foreign-bucket", action="append", default=[], metavar="NAME",
        help="answer this bucket name as another account's (403; CreateBucket 409); repeatable",
    )  # fmt: skip
    constrain.add_argument("--reset", action="store_true", help="back to a new account's answers")

    demo = add_command(sub, DEMO)
    demo.add_argument("--keep", action="store_true", help="leave the local platform up afterwards")
    demo.add_argument("--port", type=port, default=None, help="endpoint port, 1 to 65535 (default: a free port)")
    config_options(demo)
