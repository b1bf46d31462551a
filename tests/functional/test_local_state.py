"""The local platform's typed state: persisted and read back in one place, and enough for ``tap local down``."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import ClassVar

import pytest

from analytics_platform.infra.config import load_config
from analytics_platform.infra.names import stack_id
from analytics_platform.local import platform as platform_module
from analytics_platform.local.state import (
    LocalOutputs,
    LocalPaths,
    LocalState,
    RegionOutputs,
    config_document,
    read_outputs,
    read_state,
    write_outputs,
    write_state,
)


def region_outputs(region: str) -> RegionOutputs:
    return RegionOutputs(f"bucket-{region}", f"table-{region}", f"https://q/{region}", f"https://dlq/{region}",
                         f"fn-{region}", f"db_{region}", f"wg-{region}")  # fmt: skip


def test_state_and_outputs_read_back_as_written(tmp_path: Path) -> None:
    # GIVEN a running platform's state (resolved configuration included) and outputs
    contract = {"columns": {"id": {"type": "integer", "required": True, "not_null": True},
                            "state": {"allowed": ["a", "b"]}, "score": {"min": 0, "max": 9.5}}}  # fmt: skip
    config = load_config(None, environ={}, environment_suffix="round", max_receive_count=4,
                         datasets={"graded": contract})  # fmt: skip
    paths = LocalPaths(tmp_path / "home")
    state = LocalState(os.getpid(), 4566, "http://127.0.0.1:4566", ["us-east-1", "eu-west-1"],
                       config_document(config), fault_rate=0.05)  # fmt: skip
    outputs = LocalOutputs(state.endpoint, {r: region_outputs(r) for r in state.regions})
    # WHEN written and read back
    write_state(paths, state)
    write_outputs(paths, outputs)
    # THEN the same typed values come back, under the documented file names
    assert read_state(paths) == state and read_outputs(paths) == outputs
    assert (paths.root / "state.json").exists() and (paths.root / "outputs.json").exists()
    assert state.platform_config() == config and state.environment_suffix == "round"


def test_paths_honour_tap_local_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAP_LOCAL_HOME", str(tmp_path / "elsewhere"))
    assert LocalPaths.default().state == tmp_path / "elsewhere" / "state.json"


class FakeRunner:
    """Records what ``platform_down`` asks Terraform to destroy."""

    destroyed: ClassVar[list[Path]] = []

    @classmethod
    def create(cls, work_dir: Path) -> FakeRunner:
        return cls()

    def destroy(self, stack_dir: Path, log_name: str, events: object = None) -> None:
        self.destroyed.append(stack_dir)


def test_down_destroys_what_was_applied_after_the_config_file_is_deleted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a platform applied from a configuration file (suffix "gone", one region), its daemon running
    config_file = tmp_path / "platform.toml"
    config_file.write_text('environment_suffix = "gone"\nregions = ["eu-west-1"]\n')
    applied = load_config(config_file, environ={})
    daemon = subprocess.Popen(["sleep", "60"], start_new_session=True)
    paths = LocalPaths(tmp_path / "home")
    write_state(paths, LocalState(daemon.pid, 1, "http://127.0.0.1:1", ["eu-west-1"], config_document(applied)))
    write_outputs(paths, LocalOutputs("http://127.0.0.1:1", {"eu-west-1": region_outputs("eu-west-1")}))
    # ... and the configuration file deleted while it is up
    config_file.unlink()
    monkeypatch.chdir(tmp_path)  # no stray configuration file in the working folder either
    FakeRunner.destroyed = []
    monkeypatch.setattr(platform_module, "TerraformRunner", FakeRunner)
    monkeypatch.setattr(platform_module, "leftovers", lambda endpoint, regions, suffix: [])
    try:
        # WHEN the platform is taken down
        assert platform_module.platform_down(paths=paths, progress=lambda line: None) is True
        # THEN exactly the applied stack was destroyed, the daemon stopped and the state removed
        assert FakeRunner.destroyed == [paths.synth / "stacks" / stack_id("eu-west-1", "gone")]
        assert daemon.wait(timeout=5) is not None
        assert not paths.state.exists() and not paths.outputs.exists()
    finally:
        daemon.kill()
        daemon.wait()
