"""``tap synth`` and ``tap check``: the stacks as code, before anything is deployed."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from analytics_platform.cli.options import Command, Default, Subparsers, add_command, config_options, json_option
from analytics_platform.cli.reports import CheckedEnvironment, check_document, emit, machine_readable, sarif_document
from analytics_platform.exit_codes import ExitCode
from analytics_platform.progress import spinner

if TYPE_CHECKING:
    from analytics_platform.infra.checks import Finding
    from analytics_platform.infra.config import PlatformConfig

#: What a check gives: the environments checked, the findings between them, why it could not run, its exit code.
CheckRun: TypeAlias = "tuple[list[CheckedEnvironment], list[Finding], str | None, int]"


def load(path: str | None, env: str | None = None) -> PlatformConfig:
    """The platform configuration (defaults, ``--env``'s file, ``--config``'s file), validated."""
    from analytics_platform.infra.config import load_config

    return load_config(path, env_name=env)


def synth_from_environment(config_path: str | None) -> int:
    """``cdktf synth`` (through ``tap.py``): output goes where the cdktf CLI asks; ``TAP_ENV`` names the
    environment."""
    return synth(config_path, os.environ.get("CDKTF_OUTDIR", "cdktf.out"), os.environ.get("TAP_ENV") or None)


def synth(config_path: str | None, outdir: str, env: str | None = None) -> int:
    from analytics_platform.infra.account import resolve_account

    return synth_config(resolve_account(load(config_path, env)), outdir)


def synth_config(config: PlatformConfig, outdir: str) -> int:
    from analytics_platform.infra.app import synth as synth_app

    out = synth_app(config, outdir=outdir)
    regions = ", ".join(r.region for r in config.regions)
    print(f"synthesized {len(config.regions)} stack(s) ({regions}) of {config.environment} into {out}/stacks")
    return ExitCode.OK


def _cmd_synth(args: argparse.Namespace) -> int:
    return synth(args.config, args.out, args.env)


def _check_one(args: argparse.Namespace, env: str | None, out: str) -> CheckedEnvironment:
    from analytics_platform.infra.account import account_for_check
    from analytics_platform.infra.checks import checked

    config, note = account_for_check(load(args.config, env))
    if note:
        print(f"tap check: {note}")
    if not args.no_synth:
        synth_config(config, out)
    if args.skip_checkov:
        findings = checked(config, Path(out), with_checkov=False)
    else:
        with spinner(f"tap check: checkov on {len(config.regions)} stack(s)"):
            findings = checked(config, Path(out))
    if not args.skip_validate:
        findings += _terraform_validate(config, Path(out))
    for finding in findings:
        print(f"FINDING {finding.message}")
    label = f" of {env}" if env else ""
    print(f"tap check: {len(findings)} finding(s) in {len(config.regions)} stack(s){label}")
    return CheckedEnvironment(env, len(config.regions), Path(out), findings)


def _terraform_validate(config: PlatformConfig, out: Path) -> list[Finding]:
    """``terraform validate`` of every stack (the provider's schema refuses values AWS refuses)."""
    import tempfile

    from analytics_platform.infra.checks import Finding
    from analytics_platform.infra.names import stack_id
    from analytics_platform.local.terraform import TerraformError, validate_stacks

    names = [stack_id(r.region, config.environment_suffix) for r in config.regions]
    with tempfile.TemporaryDirectory(prefix="tap-validate-") as work:
        try:
            texts = validate_stacks(out / "stacks", names, Path(work))
        except TerraformError as error:
            return [Finding("terraform-validate", None, f"terraform validate could not run ({error}); "
                            "--skip-validate skips it")]  # fmt: skip
    return [Finding("terraform-validate", text.split(":", 1)[0], text) for text in texts]


def _cmd_check(args: argparse.Namespace) -> int:
    """Text (FINDING lines), or with ``--format json|sarif`` one document on stdout and the rest on stderr."""
    from analytics_platform.cli import package_version

    fmt = "json" if args.json else args.format
    with machine_readable(fmt != "text"):
        try:
            found = _check_all(args)
        except Exception as failure:  # a document even then: CI reads stdout, the reason goes into it
            if fmt == "text" or os.environ.get("TAP_DEBUG"):
                raise
            found = _refused(failure)
    environments, shared, reason, code = found
    if fmt == "json":
        emit(check_document(environments, shared, error=reason))
    elif fmt == "sarif":
        emit(sarif_document(environments, shared, version=package_version(), error=reason))
    if reason is not None:
        return code
    failed = shared or any(e.findings for e in environments)
    return ExitCode.FAILED if failed else ExitCode.OK


def _refused(error: Exception) -> CheckRun:
    """No check ran: the error as ``tap`` prints it (on stderr) and in the document, with its exit code."""
    from analytics_platform.infra.config import ConfigError

    usage = isinstance(error, ConfigError)
    message = str(error) if usage else f"{type(error).__name__}: {error}"
    print(f"error: {message}", file=sys.stderr)
    return [], [], message, ExitCode.USAGE if usage else ExitCode.FAILED


def _check_all(args: argparse.Namespace) -> CheckRun:
    """Every environment checked (one without ``--all-envs``), the findings shared between them, and (when
    ``--all-envs`` finds no environment file) why nothing was checked with its exit code."""
    if not args.all_envs:
        return [_check_one(args, args.env, args.out)], [], None, ExitCode.OK
    from analytics_platform.infra.checks import Finding
    from analytics_platform.infra.environments import environment_names, isolation_findings

    names = environment_names()
    if not names:
        message = "--all-envs: no environment files (environments/<name>.toml)"
        print(f"error: {message}", file=sys.stderr)
        return [], [], message, ExitCode.USAGE
    shared = [Finding("isolation", None, text) for text in isolation_findings(names)]
    for finding in shared:
        print(f"FINDING {finding.message}")
    environments = [_check_one(args, name, str(Path(args.out) / name)) for name in names]
    total = len(shared) + sum(len(e.findings) for e in environments)
    print(f"tap check --all-envs: {total} finding(s) in {len(names)} environment(s) ({', '.join(names)})")
    return environments, shared, None, ExitCode.OK


SYNTH = Command(
    "synth", _cmd_synth, "Synthesize one Terraform stack per region.",
    examples=("tap synth", "tap synth --env prod --out build/prod"),
    details="Needs AWS credentials only to learn the account id (account_id in the configuration avoids it).",
)  # fmt: skip
CHECK = Command(
    "check", _cmd_check,
    "Synthesize, then check residency, IAM, tags, names, cross-region consistency, checkov and terraform validate.",
    examples=("tap check", "tap check --env prod --skip-checkov", "tap check --all-envs --json",
              "tap check --format sarif > tap-check.sarif"),
    details="Exit 0 without findings, 1 with findings (one FINDING line each), 2 on a configuration error. With "
    "--json or --format sarif, stdout carries only that document; progress goes to stderr.",
)  # fmt: skip


def register(sub: Subparsers) -> None:
    synth_parser = add_command(sub, SYNTH)
    synth_parser.add_argument(
        "--out", default=Default("cdktf.out"), metavar="DIR", help="output folder (default: cdktf.out)"
    )
    config_options(synth_parser)

    check = add_command(sub, CHECK)
    check.add_argument(
        "--out", default=Default("cdktf.out"), metavar="DIR", help="synth output folder (default: cdktf.out)"
    )
    check.add_argument("--no-synth", action="store_true", help="check an existing synth output")
    check.add_argument("--skip-checkov", action="store_true", help="run only the project's own checks")
    check.add_argument(
        "--skip-validate", action="store_true", help="skip terraform validate (needs Terraform and the provider mirror)"
    )
    check.add_argument(
        "--all-envs", action="store_true",
        help="check every environments/*.toml (each synthesized into OUT/<env>) and that their state is isolated",
    )  # fmt: skip
    check.add_argument(
        "--format", choices=("text", "json", "sarif"), default="text",
        help="text (default), json (README: Machine-readable output) or SARIF 2.1.0 for code-scanning tools",
    )  # fmt: skip
    json_option(check, "the findings (the same as --format json)")
    config_options(check)
