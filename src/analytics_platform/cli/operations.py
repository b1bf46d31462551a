"""``tap bootstrap``, ``preflight``, ``plan``, ``deploy``, ``destroy`` and ``drift``: an environment's regional
stacks, every region in parallel."""

from __future__ import annotations

import argparse

from analytics_platform.cli.options import Command, Subparsers, add_command, json_option, target_options


def _cmd_bootstrap(args: argparse.Namespace) -> int:
    from analytics_platform.ops.stack_commands import bootstrap_command

    return bootstrap_command(env=args.env, regions=args.region, local=args.local, config_path=args.config)


def _cmd_preflight(args: argparse.Namespace) -> int:
    from analytics_platform.ops.preflight import preflight_command

    return preflight_command(
        env=args.env, regions=args.region, local=args.local, config_path=args.config, as_json=args.json
    )


def _cmd_terraform(args: argparse.Namespace) -> int:
    from analytics_platform.ops.stack_commands import terraform_command

    return terraform_command(
        args.command, env=args.env, regions=args.region, local=args.local, config_path=args.config,
        assume_yes=getattr(args, "yes", False), allow_data_loss=getattr(args, "allow_data_loss", False),
        skip_preflight=getattr(args, "skip_preflight", False), as_json=args.json,
    )  # fmt: skip


def _cmd_drift(args: argparse.Namespace) -> int:
    from analytics_platform.ops.stack_commands import drift_command

    return drift_command(
        env=args.env,
        regions=args.region,
        local=args.local,
        config_path=args.config,
        publish=args.publish,
        as_json=args.json,
    )


BOOTSTRAP = Command(
    "bootstrap", _cmd_bootstrap,
    "Create (or confirm) each region's Terraform state bucket and lock table, in that region; idempotent.",
    examples=("tap bootstrap --env prod", "tap bootstrap --env prod --region eu-west-1"),
)  # fmt: skip
PREFLIGHT = Command(
    "preflight", _cmd_preflight,
    "Read-only checks per region, in parallel, that the account can take the stacks; exit 1 if one fails.",
    examples=("tap preflight --env prod", "tap preflight --local --json"),
)  # fmt: skip
PLAN = Command(
    "plan", _cmd_terraform, "Synthesize, then plan every regional stack in parallel; a summary table per region.",
    examples=("tap plan --env prod", "tap plan --local --region us-east-1"),
)  # fmt: skip
DEPLOY = Command(
    "deploy", _cmd_terraform,
    "Synthesize, then plan and apply every regional stack in parallel; a summary table per region.",
    examples=("tap deploy --env prod", "tap deploy --env prod --region eu-west-1 --skip-preflight"),
    details="A plan that deletes or replaces a data bucket, job table or key is refused without --allow-data-loss.",
)  # fmt: skip
DESTROY = Command(
    "destroy", _cmd_terraform, "Destroy every regional stack of an environment in parallel (asks first, unless --yes).",
    examples=("tap destroy --env staging", "tap destroy --env staging --region us-east-1 --yes"),
)  # fmt: skip
DRIFT = Command(
    "drift", _cmd_drift,
    "Compare deployed resources with Terraform's state per region, and regions with each other; exit 3 on drift.",
    examples=("tap drift --env prod", "tap drift --env prod --publish"),
    details="Exit 0 without drift, 3 with drift (one DRIFT line each), 1 when a region could not be read, 2 on a "
    "usage or configuration error.",
)  # fmt: skip


def register(sub: Subparsers) -> None:
    bootstrap = add_command(sub, BOOTSTRAP)
    target_options(bootstrap, regions="many")
    preflight = add_command(sub, PREFLIGHT)
    json_option(preflight, "a list of {region, check, ok, detail, remedy}")
    target_options(preflight, regions="many")
    for command in (PLAN, DEPLOY, DESTROY):
        parser = add_command(sub, command)
        json_option(parser, "{schema, command, environment, local, ok, exit_code, regions} (README)")
        target_options(parser, regions="many")
        if command is DESTROY:
            parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        if command is DEPLOY:
            parser.add_argument(
                "--allow-data-loss", action="store_true",
                help="apply even if the plan deletes or replaces a data bucket, job table or key",
            )  # fmt: skip
            parser.add_argument("--skip-preflight", action="store_true", help="do not run tap preflight's checks first")
    drift = add_command(sub, DRIFT)
    drift.add_argument("--publish", action="store_true", help="write ConfigurationDrift to each region's CloudWatch")
    json_option(drift, "{schema, environment, local, ok, exit_code, regions, drifts, code} (README)")
    target_options(drift, regions="many")
