"""End to end: ``tap preflight --local`` passes on the running local platform and refuses a constrained one.

One ``tap local up`` (one region, to keep it short, run in a pseudo-terminal as a user would) serves both halves:
the constraint is switched on and off at runtime with ``tap local constrain``, as an operator would.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from analytics_platform import cli
from analytics_platform.local.platform import LocalPaths
from analytics_platform.local.state import read_outputs, read_state
from tests.pty_run import run_in_pty
from tests.schemas import validate

pytestmark = pytest.mark.e2e
REGION = "eu-west-1"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The platform started and stopped as a user does, with ``tap local up`` / ``tap local down`` in a terminal
    (a pseudo-terminal): their live per-region progress is checked on the way."""
    folder = tmp_path_factory.mktemp("environments")
    (folder / "dev.toml").write_text(f'regions = ["{REGION}"]\n')
    paths = LocalPaths(tmp_path_factory.mktemp("preflight-local"))
    saved = {name: os.environ.get(name) for name in ("TAP_ENVIRONMENTS_DIR", "TAP_LOCAL_HOME")}
    os.environ.update({"TAP_ENVIRONMENTS_DIR": str(folder), "TAP_LOCAL_HOME": str(paths.root)})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    tap = [sys.executable, "-m", "analytics_platform.cli"]
    try:
        code, shown = run_in_pty([*tap, "local", "up", "--env", "dev"], env=env, cwd=ROOT, timeout=900)
        assert code == 0, shown[-3000:]
        # drawn live: the region's row with resources done of planned, then its time
        assert "\x1b[" in shown and re.search(rf"{REGION}.*\d+/\d+.*done in \d", shown), shown[-3000:]
        outputs = read_outputs(paths)
        assert outputs is not None
        yield outputs
        code, shown = run_in_pty([*tap, "local", "down"], env=env, cwd=ROOT, timeout=600)
        assert code == 0 and re.search(rf"{REGION}.*done in \d", shown), shown[-3000:]
        assert read_state(paths) is None
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def preflight(capsys: pytest.CaptureFixture[str], *options: str) -> tuple[int, str]:
    code = cli.main(["preflight", "--local", *options])
    return code, capsys.readouterr().out


def test_preflight_passes_on_the_local_platform_and_refuses_a_constrained_account(
    platform: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = platform.regions[REGION].bucket_name
    # WHEN preflight runs against the platform as it is up: a new account, the stack already deployed
    code, out = preflight(capsys, "--json")
    rows = json.loads(out)
    validate(rows, "tap.preflight")
    # THEN every check passes, the deployed bucket is this account's and the function's reservation is counted back
    assert code == 0, out
    assert all(row["ok"] for row in rows) and {row["region"] for row in rows} == {REGION}
    by_check = {row["check"]: row for row in rows}
    assert by_check["data-bucket"]["detail"] == f"{bucket} exists and is this account's"
    assert by_check["lambda-concurrency"]["detail"].startswith("quota 1000, 990 unreserved; reserving 10 leaves 990")

    # GIVEN the endpoint switched to an account with a quota of 10 and the bucket's name owned by another account
    assert cli.main(["local", "constrain", "--concurrency-limit", "10", "--foreign-bucket", bucket]) == 0
    capsys.readouterr()
    try:
        # WHEN
        code, out = preflight(capsys)
        # THEN exit 1; the table names both checks as failed, each followed by what to do
        assert code == 1, out
        lines = out.splitlines()
        failed = [line.split()[1] for line in lines if line.split()[2:3] == ["FAIL"]]
        assert failed == ["lambda-concurrency", "data-bucket"]
        advice = [lines[i + 1].strip() for i, line in enumerate(lines) if line.split()[2:3] == ["FAIL"]]
        assert advice[0].startswith("to do: ask for a Lambda concurrent executions quota of at least 110")
        assert advice[1].startswith("to do: another account owns the name")
        assert lines[-1].endswith("2 check(s) FAILED")
        # AND a deploy stops at its preflight: exit 1, nothing applied
        assert cli.main(["deploy", "--local"]) == 1
        assert "nothing was applied" in capsys.readouterr().err
    finally:
        assert cli.main(["local", "constrain", "--reset"]) == 0
    # AND with the constraint lifted, preflight passes again
    assert preflight(capsys)[0] == 0
