"""``tap local constrain``: make the running local endpoint play an account with less room (see
:mod:`analytics_platform.local.endpoint.account_answers`), so ``tap preflight --local`` and deploys show each
refusal."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import replace

from analytics_platform.exit_codes import ExitCode
from analytics_platform.local.endpoint.account_answers import (
    CONSTRAINTS_FILE,
    UNRESERVED_MINIMUM,
    AccountConstraints,
    write_constraints,
)
from analytics_platform.local.state import LocalPaths, read_state


def constrain(
    paths: LocalPaths,
    *,
    concurrency_limit: int | None = None,
    foreign_buckets: Sequence[str] = (),
    reset: bool = False,
) -> AccountConstraints:
    """Put constraints in force on the running endpoint: ``reset`` starts from a new account's answers, else from
    the ones in force; a given limit replaces the limit, given buckets are added. Returns what is now in force."""
    path = paths.runtime / CONSTRAINTS_FILE
    current = AccountConstraints() if reset or not path.exists() else AccountConstraints.from_json(path.read_text())
    if concurrency_limit is not None:
        current = replace(current, concurrent_executions=concurrency_limit)
    current = replace(current, foreign_buckets=current.foreign_buckets | frozenset(foreign_buckets))
    write_constraints(paths.runtime, current)
    return current


def constrain_command(
    *, concurrency_limit: int | None, foreign_buckets: Sequence[str], reset: bool, paths: LocalPaths | None = None
) -> int:
    """CLI wrapper: exit 2 when nothing is up or the limit is not a number of executions."""
    paths = paths or LocalPaths.default()
    if read_state(paths) is None:
        print("error: the local platform is not up: start it with 'tap local up'", file=sys.stderr)
        return ExitCode.USAGE
    if concurrency_limit is not None and concurrency_limit < 1:
        print("error: --concurrency-limit must be at least 1", file=sys.stderr)
        return ExitCode.USAGE
    now = constrain(paths, concurrency_limit=concurrency_limit, foreign_buckets=foreign_buckets, reset=reset)
    buckets = ", ".join(sorted(now.foreign_buckets)) or "none"
    print(
        f"local endpoint now plays an account with a Lambda concurrency quota of {now.concurrent_executions} per "
        f"region (AWS keeps {UNRESERVED_MINIMUM} unreserved); buckets of another account: {buckets}"
    )
    return ExitCode.OK
