import base64
import re

import pytest

from infrastructure import settings as config

pytestmark = pytest.mark.unit


def test_defaults_then_env_file_then_environment(tmp_path):
    env_file = tmp_path / "custom.env"
    env_file.write_text("# comment\nKAFKA_TOPIC=from_file\nexport TIME_SCALE='60'\nPOSTGRES_PORT=6000\n")
    s = config.load({"ENV_FILE": str(env_file), "POSTGRES_PORT": "7000"})
    assert s.kafka_topic == "from_file"          # .env beats the default
    assert s.time_scale == 60.0                  # quotes and `export` are accepted
    assert s.postgres_port == 7000               # the environment beats .env
    assert s.postgres_db == "tripclick_gold"     # untouched default


def test_relative_paths_are_relative_to_the_repository(tmp_path):
    s = config.load({"ENV_FILE": str(tmp_path / "none"), "RUN_DIR": "./x/run", "LAKE_ROOT": "lake"})
    assert s.run_dir == config.REPO_ROOT / "x" / "run"
    assert s.lake_root == str(config.REPO_ROOT / "lake")
    s3 = config.load({"ENV_FILE": str(tmp_path / "none"), "LAKE_ROOT": "s3a://tripclick-lake/"})
    assert s3.lake_root == "s3a://tripclick-lake/" and s3.lake_is_s3


def test_secrets_are_masked_when_printed(tmp_path):
    s = config.load({"ENV_FILE": str(tmp_path / "none"), "POSTGRES_PASSWORD": "hunter2-secret"})
    shown = s.redacted()
    assert shown["POSTGRES_PASSWORD"] == "****"
    assert "hunter2-secret" not in repr(shown)
    assert shown["POSTGRES_USER"] == "gold_loader"


def test_outside_local_mode_built_in_passwords_are_refused(tmp_path):
    with pytest.raises(config.ConfigError, match="POSTGRES_PASSWORD"):
        config.load({"ENV_FILE": str(tmp_path / "none"), "PLATFORM_MODE": "docker"})


def test_malformed_values_fail_clearly(tmp_path):
    bad = tmp_path / "bad.env"
    bad.write_text("NOT A PAIR\n")
    with pytest.raises(config.ConfigError, match="bad.env:1"):
        config.load({"ENV_FILE": str(bad)})
    with pytest.raises(config.ConfigError, match="POSTGRES_PORT"):
        config.load({"ENV_FILE": str(tmp_path / "none"), "POSTGRES_PORT": "five"})


def test_every_setting_is_documented_in_env_example():
    documented = config.read_env_file(config.REPO_ROOT / ".env.example")
    assert set(config.DEFAULTS) <= set(documented), set(config.DEFAULTS) - set(documented)
    # Each variable sits in a block (lines up to the previous blank line) that opens with a comment.
    lines = (config.REPO_ROOT / ".env.example").read_text().splitlines()
    for index, line in enumerate(lines):
        if line and not line.startswith("#"):
            block_start = index
            while block_start > 0 and lines[block_start - 1].strip():
                block_start -= 1
            assert lines[block_start].startswith("#"), f"{line.split('=')[0]} has no comment"


def _docker_env(tmp_path, **values):
    from infrastructure.docker.secrets import fill

    text, _ = fill((config.REPO_ROOT / ".env.docker.example").read_text())
    env_file = tmp_path / ".env"
    env_file.write_text(text)
    good = {"KAFKA_HOST": "kafka.internal", "KAFKA_BROKERS": "kafka.internal:9092", "POSTGRES_HOST": "gold.internal",
            "PUBLISH_ADDRESS": "10.0.2.10", "AWS_ACCESS_KEY_ID": "key-id", "AWS_SECRET_ACCESS_KEY": "key-secret"}
    return {"ENV_FILE": str(env_file), **good, **values}


def test_the_docker_template_with_generated_secrets_and_addresses_loads(tmp_path):
    settings = config.load(_docker_env(tmp_path))
    assert settings.platform_mode == "docker" and len(settings.postgres_password) >= 40


@pytest.mark.parametrize("name, value, reason", [
    ("POSTGRES_PASSWORD", "gold_loader_local", "POSTGRES_PASSWORD is the local-mode default"),
    ("AIRFLOW_ADMIN_PASSWORD", "", "AIRFLOW_ADMIN_PASSWORD is not set"),
    ("SUPERSET_DB_PASSWORD", "change-me-superset", "SUPERSET_DB_PASSWORD is a placeholder"),
    ("KAFKA_BROKERS", "127.0.0.1:9092,kafka:9093", "KAFKA_BROKERS=127.0.0.1:9092,kafka:9093 is a loopback"),
    ("KAFKA_HOST", "localhost", "KAFKA_HOST=localhost is a loopback"),
    ("POSTGRES_HOST", "127.0.0.1", "POSTGRES_HOST=127.0.0.1 is a loopback"),
    ("S3_ENDPOINT", "http://localhost:9000", "S3_ENDPOINT=http://localhost:9000 is a loopback"),
    ("LAKE_ROOT", "/srv/lake", "LAKE_ROOT=/srv/lake is not on S3"),
])
def test_docker_mode_refuses_each_unsafe_value_by_name(tmp_path, name, value, reason):
    with pytest.raises(config.ConfigError, match=re.escape(reason)):
        config.load(_docker_env(tmp_path, **{name: value}))


def test_env_example_is_refused_in_docker_mode():
    """The local-mode example must never run a deployment silently."""
    with pytest.raises(config.ConfigError) as refused:
        config.load({"ENV_FILE": str(config.REPO_ROOT / ".env.example"), "PLATFORM_MODE": "docker"})
    assert str(refused.value).count("\n") >= 10


def test_registry_prefix_must_end_with_a_slash():
    assert config.registry_prefix("") == "" and config.registry_prefix("reg.example/data/") == "reg.example/data/"
    with pytest.raises(config.ConfigError, match="must end with '/'"):
        config.registry_prefix("reg.example/data")


def test_generated_secrets_fill_only_empty_secrets():
    from infrastructure.docker.secrets import GENERATED, fill

    text, filled = fill("POSTGRES_PASSWORD=\nSUPERSET_SECRET_KEY=kept\nKAFKA_TOPIC=\nAIRFLOW_FERNET_KEY=\n")
    values = dict(line.split("=", 1) for line in text.splitlines())
    assert filled == ["POSTGRES_PASSWORD", "AIRFLOW_FERNET_KEY"] and set(filled) <= set(GENERATED)
    assert values["SUPERSET_SECRET_KEY"] == "kept" and values["KAFKA_TOPIC"] == ""
    assert len(values["POSTGRES_PASSWORD"]) >= 40 and len(base64.urlsafe_b64decode(values["AIRFLOW_FERNET_KEY"])) == 32


def test_generated_secrets_never_start_with_a_dash():
    """One token in 64 would: `airflow users create --password -x…` then stops airflow-init with a usage error."""
    from infrastructure.docker.secrets import GENERATED, new_value

    values = [new_value(name) for name in GENERATED for _ in range(300)]
    assert not [v for v in values if v.startswith("-")]
