"""infrastructure/terraform against the rest of the project, read as HCL (python-hcl2), no cloud needed:
ports against the compose files and env templates, the guide's port table and hosts, names against the
settings, the lake's lifecycle and IAM. Each check also fails on a deliberately broken copy."""
from __future__ import annotations

import ast
import re
import shutil

import pytest

from infrastructure.settings import DEFAULTS
from tests.deployment.artifacts import COMPOSE_FILES, documented_variables
from tests.infrastructure import terraform_model as tf

pytestmark = pytest.mark.unit


@pytest.fixture
def broken_copy(tmp_path):
    """A copy of infrastructure/terraform to break; edit(path, old, new) replaces exactly one text."""
    root = tmp_path / "terraform"
    shutil.copytree(tf.TERRAFORM, root, ignore=shutil.ignore_patterns(".terraform"))

    def edit(relative: str, old: str, new: str):
        path = root / relative
        text = path.read_text()
        assert text.count(old) == 1, f"{old!r} is not exactly once in {relative}"
        path.write_text(text.replace(old, new))
        return root

    return edit


def test_every_ingress_rule_is_readable():
    _, problems = tf.security_rules()
    assert problems == []


def test_security_group_ports_equal_the_compose_files_and_env_templates():
    assert tf.port_mismatches() == []


def test_security_groups_are_the_guides_port_table():
    assert tf.terraform_port_table() == tf.guide_port_table()


def test_no_rule_opens_the_docker_api_or_postgres_to_an_address_range():
    assert tf.public_exposures() == []


def test_rule_descriptions_use_only_what_ec2_accepts():
    """EC2 refuses a security group rule description with other characters (an apostrophe, say) at apply
    time, which no offline check would otherwise see."""
    allowed = re.compile(r"^[a-zA-Z0-9 ._\-:/()#,@\[\]+=&;{}!$*]{0,255}$")
    module = tf.modules()["modules/security_groups"]
    rows = {**module.locals["group_rules"], **module.locals["cidr_rules"]}
    descriptions = [row["why"] for row in rows.values()]
    descriptions += [body["description"] for kind, _, body in module.resources
                     if kind.startswith("aws_vpc_security_group_") and not body["description"].startswith("${")]
    assert [d for d in descriptions if not allowed.match(d)] == []


def test_port_variables_default_to_the_docker_env_template():
    env = tf.deployment_env()
    wanted = {"postgres_port": "POSTGRES_PORT", "superset_port": "SUPERSET_PORT", "airflow_port": "AIRFLOW_PORT",
              "spark_master_ui_port": "SPARK_MASTER_UI_PORT"}
    for folder in ("modules/security_groups", tf.EXAMPLE):
        variables = tf.modules()[folder].variables
        assert {name: str(variables[name]["default"]) for name in wanted} == \
            {name: env[setting] for name, setting in wanted.items()}, folder


def test_a_broken_port_is_found(broken_copy):
    root = broken_copy("modules/security_groups/main.tf", "kafka_broker_ports   = [9092, 9094]",
                       "kafka_broker_ports   = [9092, 9095]")
    assert any("9095" in problem for problem in tf.port_mismatches(root))


def test_a_changed_port_default_is_found(broken_copy):
    root = broken_copy("modules/security_groups/variables.tf", "default     = 5432", "default     = 5433")
    problems = tf.port_mismatches(root)
    assert any("5433" in p for p in problems) and any("5432" in p for p in problems)


def test_a_public_docker_api_rule_is_found(broken_copy):
    rule = """
resource "aws_vpc_security_group_ingress_rule" "debug" {
  security_group_id = aws_security_group.role["spark"].id
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 2376
  to_port           = 2376
}
"""
    root = broken_copy("modules/security_groups/outputs.tf", "output \"ids\" {", rule + "\noutput \"ids\" {")
    problems = tf.public_exposures(root)
    assert any("2376" in p and "0.0.0.0/0" in p for p in problems), problems


def test_an_inline_public_postgres_rule_is_found(broken_copy):
    root = broken_copy("modules/security_groups/main.tf", """  tags        = { Name = "${var.name}-${each.key}" }
}""", """  tags        = { Name = "${var.name}-${each.key}" }
  ingress {
    from_port   = 5432
    to_port     = 5432
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}""")
    assert any("5432" in p and "0.0.0.0/0" in p for p in tf.public_exposures(root))


def test_the_ui_ranges_cannot_be_the_internet():
    variables = tf.modules()["modules/security_groups"].variables
    for name in ("admin_cidrs", "analyst_cidrs"):
        condition = variables[name]["validation"][0]["condition"]
        assert "0.0.0.0/0" in condition and "::/0" in condition, name


def test_bucket_topic_and_image_names_equal_the_settings():
    variables = tf.example().variables
    assert variables["lake_bucket"]["default"] == DEFAULTS["S3_BUCKET"]
    assert variables["kafka_topic"]["default"] == DEFAULTS["KAFKA_TOPIC"]
    assert variables["kafka_dlq_topic"]["default"] == DEFAULTS["KAFKA_DLQ_TOPIC"]
    assert variables["kafka_manifest_topic"]["default"] == DEFAULTS["KAFKA_MANIFEST_TOPIC"]
    assert variables["image_tag"]["default"] == DEFAULTS["IMAGE_TAG"]
    assert variables["parameter_prefix"]["default"] == "/tripclick"


def test_every_value_terraform_writes_into_env_is_a_documented_setting():
    host_env = tf.modules()["modules/host_env"]
    written = set(host_env.locals["common"]) | {"PUBLISH_ADDRESS", "KAFKA_HOST"}
    documented = documented_variables()
    assert written <= documented.keys(), sorted(written - documented.keys())


def test_the_lake_root_is_the_bucket_as_settings_expect():
    assert tf.modules()["modules/lake"].resources_of("aws_s3_bucket")[0][1]["bucket"] == "${var.bucket_name}"
    text = (tf.TERRAFORM / "modules/lake/outputs.tf").read_text()
    assert 'value       = "s3a://${aws_s3_bucket.lake.id}/"' in text  # LAKE_ROOT's form in settings.py


def test_every_host_of_the_guide_exists():
    layout = tf.layout()
    roles = {name: host["role"] for name, host in layout.items()}
    for name in tf.guide_hosts():
        if name == "kafka":  # the guide's one Kafka host is three here, one per zone
            assert sorted(n for n, role in roles.items() if role == "kafka") == ["kafka1", "kafka2", "kafka3"]
        else:
            assert name in roles, f"{name} of infrastructure/README.md has no host"
    assert set(roles.values()) == set(COMPOSE_FILES.values())


def test_each_role_runs_the_compose_file_the_deployment_tests_know():
    compose_files = tf.modules()["modules/host_env"].locals["compose_files"]
    assert {path: role for role, path in compose_files.items()} == COMPOSE_FILES


def test_kafka_hosts_are_spread_over_three_zones_and_get_their_rack():
    zones = {host["zone"] for host in tf.layout().values() if host["role"] == "kafka"}
    assert zones == {0, 1, 2}
    text = (tf.TERRAFORM / "modules/host_env/main.tf").read_text()
    assert "KAFKA_BROKER_RACK = var.hosts[name].zone" in text


def test_the_docker_api_hosts_are_the_dags():
    from orchestration import steps

    example = (tf.TERRAFORM / tf.EXAMPLE / "main.tf").read_text()
    hosts = re.search(r'docker_api_hosts = (\[.*\])', example).group(1)
    assert sorted(ast.literal_eval(hosts)) == sorted(steps.HOSTS)


def test_checkpoints_never_expire():
    assert tf.lifecycle_problems() == []


def test_a_rule_expiring_every_prefix_is_found(broken_copy):
    root = broken_copy("modules/lake/main.tf", """    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }""", """    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
    expiration {
      days = 90
    }
  }""")
    assert tf.lifecycle_problems(root)


def test_the_lake_has_encryption_versioning_and_no_public_access():
    lake = tf.modules()["modules/lake"]
    kinds = {kind for kind, _, _ in lake.resources}
    assert {"aws_s3_bucket_server_side_encryption_configuration", "aws_s3_bucket_versioning",
            "aws_s3_bucket_public_access_block", "aws_s3_bucket_policy"} <= kinds
    (_, block), = lake.resources_of("aws_s3_bucket_public_access_block")
    assert all(block[key] is True for key in ("block_public_acls", "block_public_policy", "ignore_public_acls",
                                              "restrict_public_buckets"))
    (_, versioning), = lake.resources_of("aws_s3_bucket_versioning")
    assert versioning["versioning_configuration"][0]["status"] == "Enabled"


def test_the_spark_jobs_get_exactly_the_guides_lake_policy_and_the_key():
    granted = tf.policy_statements(tf.modules()["modules/lake_access"], "lake")
    key = granted.pop("UseTheLakeKey")
    assert granted == tf.guide_lake_policy()
    assert key == {"kms:Decrypt", "kms:GenerateDataKey"}


def test_hosts_read_only_their_own_parameters_and_no_s3():
    host = tf.modules()["modules/host"]
    assert tf.policy_statements(host, "own_parameters") == {"ReadOwnParameters": {"ssm:GetParameter"}}
    assert "${var.parameter_prefix}/${var.host}" in host.locals["parameters_arn"]
    text = "".join(p.read_text() for p in (tf.TERRAFORM / "modules/host").glob("*.tf"))
    assert '"s3:' not in text  # producers (and every host) reach no bucket with their instance role
    # AmazonSSMManagedInstanceCore would add ssm:GetParameter on every parameter: no managed policy at all.
    assert host.resources_of("aws_iam_role_policy_attachment") == []
    agent = tf.policy_statements(host, "session_manager")["SessionManagerAndRunCommand"]
    assert not any(action.startswith(("ssm:GetParameter", "kms:", "s3:")) for action in agent)


def test_instances_require_imdsv2_and_encrypt_their_disks():
    (_, instance), = tf.modules()["modules/host"].resources_of("aws_instance")
    assert instance["metadata_options"][0]["http_tokens"] == "required"
    assert instance["root_block_device"][0]["encrypted"] is True
    assert instance["associate_public_ip_address"] is False
