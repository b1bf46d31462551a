"""Configuration errors are reported all at once, each with the file it came from and a "did you mean"; YAML is
refused by name; nothing is synthesized."""

from __future__ import annotations

from pathlib import Path

import pytest

from analytics_platform import cli
from analytics_platform.infra.config import ConfigError, ConfigErrors, load_config


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "environments").mkdir()
    monkeypatch.setenv("TAP_ENVIRONMENTS_DIR", str(tmp_path / "environments"))
    monkeypatch.delenv("ENVIRONMENT_SUFFIX", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def layers(project: Path, env_text: str, extra_name: str, extra_text: str) -> tuple[Path, Path, ConfigErrors]:
    """The prod environment's file and a --config file written, and the error of loading both."""
    env_file, extra = project / "environments" / "prod.toml", project / extra_name
    env_file.write_text(env_text)
    extra.write_text(extra_text)
    with pytest.raises(ConfigErrors) as raised:
        load_config(extra, env_name="prod")
    return env_file, extra, raised.value


def test_every_error_of_every_layer_is_reported_at_once_with_its_file(project: Path) -> None:
    env_file, extra, raised = layers(
        project, 'lambda_memroy_mb = 2048\nlog_retention_days = 13\nregions = ["us-east-1"]\n',
        "extra.json", '{"lambda_timeout_seconds": 5000, "alarm_emails": ["nope"], "encryptoin": "kms"}',
    )  # fmt: skip
    found = {(e.source, e.field): e.message for e in raised.errors}
    assert found[(str(env_file), "lambda_memroy_mb")] == "unknown setting; did you mean 'lambda_memory_mb'?"
    assert found[(str(extra), "encryptoin")] == "unknown setting; did you mean 'encryption'?"
    assert "from 1 to 900, got 5000" in found[(str(extra), "lambda_timeout_seconds")]
    assert "got 13" in found[(str(env_file), "log_retention_days")]
    assert "not an e-mail address" in found[(str(extra), "alarm_emails[0]")]
    # a rule about two settings names no single file
    assert (None, "queue_visibility_timeout_seconds") in found
    assert raised.field == "lambda_memroy_mb"  # the first, for callers that look at one


def test_the_command_line_prints_each_error_on_its_own_line_and_exits_2(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = project / "c.toml"
    config.write_text('lambda_memory_mb = 1\nbackend = "gcs"\n')
    assert cli.main(["synth", "--config", str(config), "--out", str(project / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: invalid configuration, 2 errors:\n")
    assert f"  - {config}: lambda_memory_mb: must be an integer from 128 to 10240, got 1\n" in err
    assert f"  - {config}: backend: must be one of local, s3, got 'gcs'\n" in err
    assert not (project / "out").exists()


def test_a_single_error_reads_as_before_with_its_file(project: Path) -> None:
    config = project / "c.toml"
    config.write_text("lambda_batch_size = 11\n")
    with pytest.raises(ConfigError) as raised:
        load_config(config)
    assert not isinstance(raised.value, ConfigErrors)
    assert str(raised.value) == f"invalid configuration in {config}: lambda_batch_size: must be an integer from 1 to " \
        "10, got 11"  # fmt: skip


def test_nothing_close_suggests_nothing(project: Path) -> None:
    config = project / "c.json"
    config.write_text('{"colour": "blue"}')
    with pytest.raises(ConfigError) as raised:
        load_config(config)
    assert raised.value.message == "unknown setting"


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".YAML"])
def test_yaml_is_refused_by_name(project: Path, suffix: str) -> None:
    config = project / f"c{suffix}"
    config.write_text("lambda_memory_mb: 2048\n")
    with pytest.raises(ConfigError) as raised:
        load_config(config)
    assert "is YAML, which tap does not read" in str(raised.value) and "TOML" in str(raised.value)


def test_a_worker_setting_is_checked_with_the_rest(project: Path) -> None:
    config = project / "c.toml"
    config.write_text("max_reject_ratio = 5\nlambda_batch_size = 0\n")
    with pytest.raises(ConfigErrors) as raised:
        load_config(config)
    assert {e.field for e in raised.value.errors} == {"max_reject_ratio", "lambda_batch_size"}
    assert all(e.source == str(config) for e in raised.value.errors)


def test_unreadable_files_and_wrong_types_are_configuration_errors_not_crashes(project: Path) -> None:
    folder = project / "d.toml"
    folder.mkdir()
    latin = project / "l.toml"
    latin.write_bytes(b'environment = "caf\xe9"\n')
    typed = project / "t.toml"
    typed.write_text('state_dir = 5\nlocal_endpoint = 5\n[datasets.orders.columns.id]\ntype = ["integer"]\n')
    upper = project / "u.TOML"
    upper.write_text("lambda_batch_size = 11\n")
    for path, message in ((folder, "is a folder"), (latin, "is not UTF-8 text")):
        with pytest.raises(ConfigError, match=message):
            load_config(path)
    with pytest.raises(ConfigErrors) as raised:
        load_config(typed)
    assert {e.field for e in raised.value.errors} >= {"state_dir", "local_endpoint", "datasets.orders.columns.id.type"}
    with pytest.raises(ConfigError, match="lambda_batch_size"):  # read as TOML whatever the suffix's case
        load_config(upper)


def test_an_unreadable_environment_file_does_not_hide_the_config_file_s_errors(project: Path) -> None:
    # GIVEN an environment file that does not parse, and a --config file with its own mistakes
    # WHEN loaded THEN both files' errors are reported at once, each with its file
    env_file, extra, raised = layers(project, "lambda_memory_mb = = 2\n", "extra.toml",
                                     'encryptoin = "kms"\nbackend = "gcs"\n')  # fmt: skip
    sources = {(e.source, e.field) for e in raised.errors}
    assert str(env_file) in str(raised)
    assert (str(extra), "encryptoin") in sources and (str(extra), "backend") in sources
    # AND an environment that does not exist is reported with them too
    with pytest.raises(ConfigErrors) as missing:
        load_config(extra, env_name="nope")
    assert "no environment 'nope'" in str(missing.value) and "encryptoin" in str(missing.value)


def test_a_rule_stopped_by_a_wrong_type_does_not_stop_the_groups_after_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from analytics_platform.infra import validation
    from analytics_platform.infra.config_errors import require
    from analytics_platform.infra.platform_settings import PlatformConfig

    def early(config: PlatformConfig) -> None:
        require(False, "lambda_memory_mb", "must be an integer, got 'big'")
        raise TypeError("'<' not supported between instances of 'str' and 'int'")  # the next rule of the group

    def late(config: PlatformConfig) -> None:
        require(False, "alarm_emails[0]", "is not an e-mail address")

    monkeypatch.setattr(validation, "_groups", lambda: (early, late))
    with pytest.raises(ConfigErrors) as raised:
        validation.validate(PlatformConfig())
    assert [e.field for e in raised.value.errors] == ["lambda_memory_mb", "alarm_emails[0]"]
