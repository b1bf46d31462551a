"""Configuration is validated before synth; every rejection names its field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analytics_platform.cli import main
from analytics_platform.infra.config import ConfigError, PlatformConfig, load_config


def test_defaults_match_the_specification() -> None:
    config = load_config(None, environ={})
    assert [(r.region, r.vpc_cidr) for r in config.regions] == [
        ("us-east-1", "10.0.0.0/16"), ("eu-west-1", "10.1.0.0/16"), ("ap-southeast-1", "10.2.0.0/16"),
    ]  # fmt: skip
    assert config.environment_suffix == "dev"
    # The spec's 300 s visibility; the timeout at AWS's advice of a sixth of it; AWS's advised 5 receives.
    assert (config.lambda_memory_mb, config.queue_visibility_timeout_seconds, config.worker.max_receive_count) == (
        1024,
        300,
        5,
    )
    # one of the reservation is left for the scheduled dead-letter sweep
    assert config.lambda_timeout_seconds == 50 and config.maximum_concurrency == config.lambda_reserved_concurrency - 1
    assert config.log_retention_days == 30 and config.glacier_transition_days == 90
    assert config.account_id is None and config.alarm_emails == () and config.deletion_protection is False
    # bucket names carry the account: S3's namespace is shared by every account
    with pytest.raises(ConfigError, match="account_id"):
        config.names("eu-west-1")
    named = load_config(None, environ={}, account_id="123456789012")
    assert named.names("eu-west-1").bucket == "analytics-bucket-123456789012-eu-west-1-dev"
    assert named.names("eu-west-1").state_bucket == "analytics-tfstate-123456789012-eu-west-1-dev"
    assert set(config.tags("us-east-1")) >= {"Environment", "Region", "CostCenter", "ManagedBy"}


def test_environment_suffix_comes_from_the_environment() -> None:
    assert load_config(None, environ={"ENVIRONMENT_SUFFIX": "pr42"}).environment_suffix == "pr42"


def test_any_number_of_regions_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('regions = [{region = "eu-central-1", vpc_cidr = "10.8.0.0/16"}, "us-east-1"]\n')
    config = load_config(path, environ={})
    assert [r.region for r in config.regions] == ["eu-central-1", "us-east-1"]


REJECTIONS = {
    "overlapping": ({"regions": [{"region": "us-east-1", "vpc_cidr": "10.0.0.0/16"},
                                 {"region": "eu-west-1", "vpc_cidr": "10.0.128.0/17"}]}, "regions[1].vpc_cidr"),
    "invalid_cidr": ({"regions": [{"region": "us-east-1", "vpc_cidr": "10.0.0.300/16"}]}, "regions[0].vpc_cidr"),
    "host_bits_set": ({"regions": [{"region": "us-east-1", "vpc_cidr": "10.0.0.1/16"}]}, "regions[0].vpc_cidr"),
    "public_cidr": ({"regions": [{"region": "us-east-1", "vpc_cidr": "8.8.0.0/16"}]}, "regions[0].vpc_cidr"),
    "too_small": ({"regions": [{"region": "us-east-1", "vpc_cidr": "10.0.0.0/26"}]}, "regions[0].vpc_cidr"),
    "unknown_region": ({"regions": [{"region": "moon-east-1", "vpc_cidr": "10.0.0.0/16"}]}, "regions[0].region"),
    "duplicate_region": ({"regions": ["us-east-1", "us-east-1"]}, "regions[1].region"),
    "no_regions": ({"regions": []}, "regions"),
    "bad_suffix": ({"environment_suffix": "Prod_1"}, "environment_suffix"),
    "suffix_too_long": ({"environment_suffix": "a" * 40}, "environment_suffix"),
    "unknown_setting": ({"colour": "blue"}, "colour"),
    "timeout_above_visibility": ({"lambda_timeout_seconds": 400}, "queue_visibility_timeout_seconds"),
    "timeout_equal_to_visibility": ({"lambda_timeout_seconds": 300}, "queue_visibility_timeout_seconds"),
    "visibility_below_6x_timeout": ({"lambda_timeout_seconds": 51}, "queue_visibility_timeout_seconds"),
    "log_retention_not_a_cloudwatch_value": ({"log_retention_days": 17}, "log_retention_days"),
    "account_id_short": ({"account_id": "12345"}, "account_id"),
    "account_id_number": ({"account_id": 123456789012}, "account_id"),
    "alarm_email": ({"alarm_emails": ["oncall"]}, "alarm_emails[0]"),
    "alarm_email_twice": ({"alarm_emails": ["a@example.com", "a@example.com"]}, "alarm_emails"),
    "alarm_emails_not_list": ({"alarm_emails": "a@example.com"}, "alarm_emails"),
    "queue_concurrency_above_reservation": ({"queue_maximum_concurrency": 11}, "queue_maximum_concurrency"),
    "queue_concurrency_below_aws_minimum": ({"queue_maximum_concurrency": 1}, "queue_maximum_concurrency"),
    "reservation_below_trigger_minimum": ({"lambda_reserved_concurrency": 1}, "lambda_reserved_concurrency"),
    "az_id_local_zone": ({"regions": [{"region": "us-east-1", "vpc_cidr": "10.0.0.0/16",
                                       "az_ids": ["use1-bos1-az1", "use1-az2"]}]}, "regions[0].az_ids"),
    "az_ids_count": ({"regions": [{"region": "us-east-1", "vpc_cidr": "10.0.0.0/16", "az_count": 3,
                                   "az_ids": ["use1-az1", "use1-az2"]}]}, "regions[0].az_ids"),
    "az_ids_twice": ({"regions": [{"region": "us-east-1", "vpc_cidr": "10.0.0.0/16",
                                   "az_ids": ["use1-az1", "use1-az1"]}]}, "regions[0].az_ids"),
    "noncurrent_days": ({"noncurrent_version_expiration_days": 0}, "noncurrent_version_expiration_days"),
    "az_ids_of_another_region": ({"regions": [{"region": "us-east-1", "vpc_cidr": "10.0.0.0/16",
                                               "az_ids": ["euw1-az1", "apse1-az2"]}]}, "regions[0].az_ids"),
    "deletion_protection": ({"deletion_protection": "yes"}, "deletion_protection"),
    # A trailing newline matched '$' and reached the bucket name, the e-mail endpoint and the zone id.
    "account_id_trailing_newline": ({"account_id": "111122223333\n"}, "account_id"),
    "alarm_email_trailing_newline": ({"alarm_emails": ["ops@example.com\n"]}, "alarm_emails[0]"),
    "az_id_trailing_newline": ({"regions": [{"region": "us-east-1", "vpc_cidr": "10.0.0.0/16",
                                             "az_ids": ["use1-az1\n", "use1-az2"]}]}, "regions[0].az_ids"),
    "suffix_trailing_newline": ({"environment_suffix": "dev\n"}, "environment_suffix"),
    # true == 1 and 14.0 == 14 in Python; CloudWatch wants an integer from its list
    "log_retention_boolean": ({"log_retention_days": True}, "log_retention_days"),
    "log_retention_float": ({"log_retention_days": 14.0}, "log_retention_days"),
    "error_rate_boolean": ({"error_rate_threshold_percent": True}, "error_rate_threshold_percent"),
    "single_delivery": ({"max_receive_count": 1}, "max_receive_count"),
    "receive_count_not_integer": ({"max_receive_count": 2.5}, "max_receive_count"),
    "sweep_interval": ({"dead_letter_sweep_minutes": 0}, "dead_letter_sweep_minutes"),
    "bad_architecture": ({"lambda_architecture": "sparc"}, "lambda_architecture"),
    "object_too_big_for_disk": ({"max_object_mb": 8000}, "max_object_mb"),
    "reject_ratio": ({"max_reject_ratio": 1.5}, "max_reject_ratio"),
    "backend": ({"backend": "gcs"}, "backend"),
    "encryption": ({"encryption": "aws:kms"}, "encryption"),
    "endpoint_not_loopback": ({"local_endpoint": "http://10.0.0.5:4566"}, "local_endpoint"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(REJECTIONS))
def test_invalid_configuration_is_rejected_naming_the_field(case: str, tmp_path: Path) -> None:
    raw, field = REJECTIONS[case]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ConfigError) as raised:
        load_config(path, environ={})
    assert raised.value.field == field
    assert field in str(raised.value)


def test_cli_stops_before_synth_with_the_field_and_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a config with overlapping CIDRs WHEN tap synth runs THEN it exits 2 naming the field, writing nothing
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(REJECTIONS["overlapping"][0]))
    out = tmp_path / "out"
    assert main(["synth", "--config", str(path), "--out", str(out)]) == 2
    assert "regions[1].vpc_cidr" in capsys.readouterr().err
    assert not out.exists()


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="config"):
        load_config(path, environ={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.json", environ={})


def test_the_visibility_relation_error_says_why() -> None:
    # GIVEN a timeout above a sixth of the visibility timeout (AWS's advice for a queue triggering a function)
    with pytest.raises(ConfigError) as raised:
        load_config(None, environ={}, lambda_timeout_seconds=60)
    # THEN the error names the field, the minimum and the reason
    assert "at least 6 x lambda_timeout_seconds (60 s) = 360" in str(raised.value)
    assert "AWS advises 6x" in str(raised.value) and "lease" in str(raised.value)
    # AND the largest safe value is accepted; the lease margin still binds for the shortest timeouts
    assert load_config(None, environ={}, lambda_timeout_seconds=50).lambda_timeout_seconds == 50
    with pytest.raises(ConfigError, match="= 11"):
        load_config(None, environ={}, lambda_timeout_seconds=1, queue_visibility_timeout_seconds=10)


def test_every_cloudwatch_log_retention_value_is_accepted() -> None:
    from analytics_platform.infra.platform_settings import LOG_RETENTION_DAYS

    for days in LOG_RETENTION_DAYS:
        assert load_config(None, environ={}, log_retention_days=days).log_retention_days == days


def test_names_fit_aws_limits_for_the_longest_region_and_suffix() -> None:
    from analytics_platform.infra.names import NAME_LIMITS
    from analytics_platform.infra.validation import KNOWN_REGIONS

    longest = max(KNOWN_REGIONS, key=len)
    # GIVEN the longest region and a suffix as long as the bucket name allows
    regions = [{"region": longest, "vpc_cidr": "10.9.0.0/16"}]
    config = load_config(None, environ={}, regions=regions, environment_suffix="s" * 17, account_id="999999999999")
    names = config.names(longest)
    assert len(names.state_bucket) == 63 and len(names.bucket) <= 63
    assert "999999999999" in names.bucket and "999999999999" in names.state_bucket
    assert all(len(getattr(names, kind)) <= limit for kind, limit in NAME_LIMITS.items())
    # AND one more character is refused before synth, naming the suffix, even before the account is known
    with pytest.raises(ConfigError, match=r"environment_suffix: makes the state_bucket name .* 64 characters"):
        load_config(None, environ={}, regions=regions, environment_suffix="s" * 18)


def test_credentials_of_another_account_are_refused() -> None:
    from analytics_platform.infra.account import resolve_account

    class Sts:
        def __init__(self, account: str) -> None:
            self.account = account

        def get_caller_identity(self) -> dict[str, str]:
            return {"Account": self.account}

    config = load_config(None, environ={}, account_id="111122223333")
    assert resolve_account(config, sts_factory=lambda _region: Sts("111122223333")).account_id == "111122223333"
    with pytest.raises(ConfigError, match="belongs to account 111122223333, but the credentials are of account 4"):
        resolve_account(config, sts_factory=lambda _region: Sts("444455556666"))
    # without account_id, the caller's account names the buckets
    unnamed = load_config(None, environ={})
    assert resolve_account(unnamed, sts_factory=lambda _r: Sts("444455556666")).names("us-east-1").bucket == (
        "analytics-bucket-444455556666-us-east-1-dev"
    )
    # the local endpoint is an account of its own
    local = load_config(None, environ={}, account_id="111122223333", local_endpoint="http://127.0.0.1:1")
    assert resolve_account(local).account_id == "123456789012"


def test_worker_settings_are_flat_keys_in_a_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("max_reject_ratio = 0.25\nmax_receive_count = 5\n")
    config = load_config(path, environ={})
    assert (config.worker.max_reject_ratio, config.worker.max_receive_count) == (0.25, 5)


def test_config_is_frozen() -> None:
    with pytest.raises(AttributeError):
        PlatformConfig().environment_suffix = "x"  # type: ignore[misc]


def test_readme_worker_settings_table_is_generated_from_the_definitions() -> None:
    from analytics_platform.etl.settings import settings_table

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    between = readme.split("<!-- worker-settings:start -->\n", 1)[1].split("\n<!-- worker-settings:end -->", 1)[0]
    assert between == settings_table()


def test_one_definition_drives_validation_environment_and_parsing() -> None:
    # GIVEN a deployment that changes every worker setting
    from dataclasses import fields

    from analytics_platform.etl.settings import Settings, Tunables
    from analytics_platform.infra.worker_wiring import worker_environment

    changed = {"max_object_mb": 100, "max_reject_ratio": 0.5, "max_receive_count": 7}
    assert set(changed) == {f.name for f in fields(Tunables)}, "a new setting needs a value in this test"
    config = load_config(None, environ={}, account_id="123456789012", **changed)
    # WHEN the function's environment is built and the worker reads it back
    environment = worker_environment(config, "us-east-1", queue_url="q", dlq_url="d")
    settings = Settings.from_environment(environment)
    # THEN the worker sees exactly the deployment's values
    assert settings.tunables == config.worker == Tunables(**changed)
    # AND an out-of-range value in the environment is refused by name
    with pytest.raises(RuntimeError, match="MAX_RECEIVE_COUNT"):
        Settings.from_environment({**environment, "MAX_RECEIVE_COUNT": "0"})


# --- named environments (issue 10) ----------------------------------------------------------------------------
def test_the_repositorys_environments_load_validated_with_their_own_suffix_and_state() -> None:
    from analytics_platform.infra.environments import environment_names, isolation_findings

    names = environment_names(environ={})
    assert {"dev", "staging", "prod"} <= set(names)
    configs = {name: load_config(None, environ={}, env_name=name) for name in names}
    assert {c.environment_suffix for c in configs.values()} == set(names)  # isolated state and resources
    assert all(c.environment == name for name, c in configs.items())
    assert configs["prod"].lambda_reserved_concurrency > configs["dev"].lambda_reserved_concurrency
    assert configs["prod"].backend == "s3"
    assert isolation_findings(names, environ={}) == []


def test_an_environment_is_overridden_by_config_but_never_moved_to_another_suffix(tmp_path: Path) -> None:
    override = tmp_path / "o.toml"
    override.write_text("log_retention_days = 7\n")
    config = load_config(override, environ={}, env_name="prod")
    assert (config.environment, config.environment_suffix, config.log_retention_days) == ("prod", "prod", 7)
    assert config.lambda_reserved_concurrency == 50  # the rest of prod's file still applies
    # prod's settings on dev's names would deploy over dev's state: refused, whichever way the suffix comes
    with pytest.raises(ConfigError, match="environment_suffix: is 'dev' but environment 'prod' owns suffix 'prod'"):
        load_config(None, environ={"ENVIRONMENT_SUFFIX": "dev"}, env_name="prod")
    override.write_text('environment_suffix = "dev"\n')
    with pytest.raises(ConfigError, match="owns suffix 'prod'"):
        load_config(override, environ={}, env_name="prod")


def test_unknown_bad_and_colliding_environments_are_clear_errors(tmp_path: Path) -> None:
    from analytics_platform.infra.environments import isolation_findings

    environ = {"TAP_ENVIRONMENTS_DIR": str(tmp_path)}
    (tmp_path / "a.toml").write_text('environment_suffix = "shared"\n')
    (tmp_path / "b.toml").write_text('environment_suffix = "shared"\n')
    (tmp_path / "bad.toml").write_text("lambda_memory_mb = 1\n")
    with pytest.raises(ConfigError, match=r"env: no environment 'qa'.*known: a, b, bad"):
        load_config(None, environ=environ, env_name="qa")
    for bad in ("../etc/passwd", "dev\n", "Prod"):
        with pytest.raises(ConfigError, match="not an environment name"):
            load_config(None, environ=environ, env_name=bad)
    with pytest.raises(ConfigError, match="lambda_memory_mb"):
        load_config(None, environ=environ, env_name="bad")
    assert isolation_findings(["a", "b"], environ=environ) == [
        "environments a, b share environment_suffix 'shared': their state and resources would collide"
    ]


# --- encryption option (issue 10) --------------------------------------------------------------------------------
def test_encryption_defaults_to_sse_s3_and_production_uses_kms() -> None:
    assert load_config(None, environ={}).encryption == "sse-s3"
    assert load_config(None, environ={}, encryption="kms").encryption == "kms"
    modes = {name: load_config(None, environ={}, env_name=name).encryption for name in ("dev", "staging", "prod")}
    assert modes == {"dev": "sse-s3", "staging": "sse-s3", "prod": "kms"}


@pytest.mark.parametrize("value", ["KMS", "sse-kms", "", None, 1])
def test_an_unknown_encryption_mode_is_rejected_naming_the_field(value: object) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(None, environ={}, encryption=value)
    assert raised.value.field == "encryption"
    assert str(raised.value).startswith("invalid configuration: encryption: must be one of sse-s3, kms, got ")


def test_zone_ids_of_each_region_are_accepted() -> None:
    from analytics_platform.infra.region_validation import zone_id_prefix

    assert [zone_id_prefix(r) for r in ("us-east-1", "eu-west-1", "ap-southeast-1", "ap-northeast-3", "ca-central-1",
                                        "me-south-1", "us-west-2")] == [
        "use1", "euw1", "apse1", "apne3", "cac1", "mes1", "usw2"]  # fmt: skip
    regions = [{"region": "ap-southeast-1", "vpc_cidr": "10.2.0.0/16", "az_ids": ["apse1-az1", "apse1-az3"]}]
    assert load_config(None, environ={}, regions=regions).regions[0].az_ids == ("apse1-az1", "apse1-az3")


def test_the_readme_configuration_table_is_the_declared_settings() -> None:
    from analytics_platform.infra.platform_settings import TABLE_END, TABLE_START, declared, settings_table

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    start, end = readme.index(TABLE_START), readme.index(TABLE_END)
    assert readme[start + len(TABLE_START) : end].strip() == settings_table()
    # every setting is declared with a description, and every integer setting with its range
    for definition in declared():
        assert len(definition.metadata["description"]) > 15, definition.name
        if definition.type in ("int", "int | None") and not definition.metadata["choices"]:
            assert definition.metadata["minimum"] is not None, definition.name
