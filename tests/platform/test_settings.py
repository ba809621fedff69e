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
