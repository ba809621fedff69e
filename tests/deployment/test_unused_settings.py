"""UNUSED_SETTINGS: an image names the secrets, addresses and lake its processes never read (least privilege)."""
from __future__ import annotations

import pytest

from infrastructure.settings import LOCAL_ONLY_DEFAULTS, ConfigError, load

pytestmark = pytest.mark.unit
KAFKA_ONLY = " ".join([*LOCAL_ONLY_DEFAULTS, "LAKE_ROOT", "POSTGRES_HOST", "S3_ENDPOINT"])
KAFKA = {"KAFKA_BROKERS": "kafka.internal:9092"}


def test_named_secrets_need_no_value_and_are_never_the_local_default(tmp_path):
    s = load({"ENV_FILE": str(tmp_path / "none"), "PLATFORM_MODE": "docker", "UNUSED_SETTINGS": KAFKA_ONLY, **KAFKA})
    assert s.postgres_password == "" and s.aws_secret_access_key == "" and s.superset_secret_key == ""


def test_a_secret_not_named_is_still_required(tmp_path):
    unused = KAFKA_ONLY.replace("POSTGRES_PASSWORD ", "")
    with pytest.raises(ConfigError, match="POSTGRES_PASSWORD"):
        load({"ENV_FILE": str(tmp_path / "none"), "PLATFORM_MODE": "docker", "UNUSED_SETTINGS": unused})


def test_a_given_value_wins_over_the_unused_list(tmp_path):
    s = load({"ENV_FILE": str(tmp_path / "none"), "PLATFORM_MODE": "docker", "UNUSED_SETTINGS": KAFKA_ONLY,
              "POSTGRES_PASSWORD": "given", **KAFKA})
    assert s.postgres_password == "given"


def test_only_secrets_addresses_and_the_lake_can_be_named(tmp_path):
    with pytest.raises(ConfigError, match="UNUSED_SETTINGS names TIME_SCALE"):
        load({"ENV_FILE": str(tmp_path / "none"), "PLATFORM_MODE": "docker", "UNUSED_SETTINGS": "TIME_SCALE"})


def test_local_mode_ignores_the_list(tmp_path):
    s = load({"ENV_FILE": str(tmp_path / "none"), "UNUSED_SETTINGS": KAFKA_ONLY})
    assert s.postgres_password == LOCAL_ONLY_DEFAULTS["POSTGRES_PASSWORD"]
