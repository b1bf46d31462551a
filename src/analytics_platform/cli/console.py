"""``tap console``: the read-only web console on localhost."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from analytics_platform.cli.options import Command, Subparsers, add_command, config_options, port
from analytics_platform.exit_codes import ExitCode

if TYPE_CHECKING:
    from analytics_platform.console.web_server import ConsoleSource


def console_source(*, local: bool, config_path: str | None, env: str | None) -> ConsoleSource:
    """The :class:`~analytics_platform.console.web_server.ConsoleSource` of the running local platform or of the
    environment on AWS, resolved as every region-bound command resolves what it reads."""
    from analytics_platform.console.web_server import ConsoleSource
    from analytics_platform.targeting.deployment import resolve_deployment

    deployment = resolve_deployment(env=env, local=local, config_path=config_path, purpose="read")
    return ConsoleSource(deployment.env, deployment.local, list(deployment.regions), deployment.target)


def _cmd_console(args: argparse.Namespace) -> int:
    from analytics_platform.console.web_server import ConsoleServer
    from analytics_platform.targeting.region_target import TargetError

    try:
        source = console_source(local=args.local, config_path=args.config, env=args.env)
    except TargetError as error:
        print(f"error: {error}", file=sys.stderr)
        return ExitCode.USAGE
    try:
        server = ConsoleServer(source, args.port or 0)
    except OSError as error:
        print(f"error: port {args.port}: {error.strerror}", file=sys.stderr)
        return ExitCode.USAGE
    where = "the local platform" if source.local else "AWS (read-only)"
    print(f"tap console: {source.environment} on {where}, {', '.join(source.regions)}")
    print(f"open {server.url}  (Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return ExitCode.OK


CONSOLE = Command(
    "console", _cmd_console,
    "Serve a read-only web console on localhost: every region side by side, and a query box bound to one region.",
    examples=("tap console --local", "tap console --env prod --port 8765"),
    details="Each region shows its stack outputs, job counts by status (and per hour over the last day), dead-letter "
    "depth, recent failures with their reasons and its datasets. Queries go through tap query's guard.",
)  # fmt: skip


def register(sub: Subparsers) -> None:
    console = add_command(sub, CONSOLE)
    console.add_argument("--local", action="store_true", help="the running local platform (tap local up)")
    console.add_argument("--port", type=port, default=None, help="port on 127.0.0.1, 1 to 65535 (default: a free one)")
    config_options(console)
