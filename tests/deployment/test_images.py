"""Dockerfiles: hadolint, pinned bases, the same locks as local mode, and the jars of the same pom."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from infrastructure.settings import REPO_ROOT
from infrastructure.docker import images
from infrastructure.docker.images import PYTHON_BASE
from tests.deployment.artifacts import DOCKERFILES, dockerfile_instructions

HADOLINT = Path(sys.executable).parent / "hadolint"
SETUP_SH = REPO_ROOT / "infrastructure" / "local" / "setup.sh"
LOCAL_SPARK_JARS = REPO_ROOT / ".cache" / "jars" / "spark"
_MVN = re.compile(r"\bmvn\b[^\n;&|>]*\bpackage\b")


def _mvn_command(text: str) -> list[str]:
    """The `mvn ... package` words, minus what cannot change the result: the (host-specific) local
    repository and the log verbosity."""
    match = _MVN.search(text.replace("\\\n", " "))
    assert match, "no `mvn ... package` command"
    return [w for w in match.group(0).split() if w != "-q" and not w.startswith("-Dmaven.repo.local=")]


@pytest.mark.unit
@pytest.mark.parametrize("path", DOCKERFILES)
def test_dockerfile_passes_hadolint(path):
    result = subprocess.run([str(HADOLINT), "--no-color", path], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _arg_defaults(path: str) -> dict[str, str]:
    return dict(arguments.split("=", 1) for keyword, arguments in dockerfile_instructions(path)
                if keyword == "ARG" and "=" in arguments)


@pytest.mark.unit
@pytest.mark.parametrize("path", DOCKERFILES)
def test_dockerfile_pins_every_base_image_and_runs_unprivileged(path):
    """FROM is a build argument whose default is pinned (make images passes the real one)."""
    instructions = dockerfile_instructions(path)
    defaults = _arg_defaults(path)
    stages = set()
    for keyword, arguments in instructions:
        if keyword == "FROM":
            words = arguments.split()
            image = words[0]
            if image not in stages:
                assert image.startswith("${") and image.endswith("}"), f"{path}: base {image} is not a build argument"
                name, _, tag = defaults[image[2:-1]].rpartition(":")
                assert name and tag and tag != "latest", f"{path}: unpinned default base {defaults[image[2:-1]]}"
            if len(words) == 3 and words[1].upper() == "AS":
                stages.add(words[2])
    users = [arguments for keyword, arguments in instructions if keyword == "USER"]
    assert path == PYTHON_BASE.dockerfile or users, f"{path} sets no USER"
    assert not users or users[-1].split(":")[0] not in ("0", "root"), f"{path} runs as root"


@pytest.mark.unit
def test_every_image_builds_from_python_base_with_the_setup_uv_version():
    setup_uv = re.search(r"^UV_VERSION=(\S+)", SETUP_SH.read_text(), re.M).group(1)
    assert images.UV_VERSION == setup_uv
    assert f"ARG UV_VERSION={setup_uv}" in (REPO_ROOT / PYTHON_BASE.dockerfile).read_text()
    for image in images.IMAGES:
        if image.parent:
            assert _arg_defaults(image.dockerfile)["PYTHON_BASE"].startswith(f"{image.parent}:"), image.name
            text = (REPO_ROOT / image.dockerfile).read_text()
            locks = re.findall(r"uv pip sync [^\n]*?(requirements/\w+\.lock)", text)
            wanted = 0 if image.name == "tripclick-pipeline/monitoring" else 1  # it runs Go binaries only
            assert len(locks) == wanted and all((REPO_ROOT / lock).is_file() for lock in locks), \
                f"{image.dockerfile}: {locks}"


@pytest.mark.unit
def test_the_monitoring_image_has_the_versions_local_mode_runs():
    """The Debian packages and the statsd_exporter module version of `setup.sh monitoring`."""
    setup = SETUP_SH.read_text()
    words = (REPO_ROOT / "monitoring" / "Dockerfile").read_text().replace("\\\n", " ").split()
    packages = re.search(r'local packages="([^"]+)"', setup).group(1).split()
    statsd_exporter = re.search(r'^STATSD_EXPORTER="statsd_exporter (\S+)"', setup, re.M).group(1)
    assert set(packages) <= set(words) and statsd_exporter in words


@pytest.mark.unit
def test_the_producer_lock_has_no_pyspark_and_the_pipeline_versions():
    producer = (REPO_ROOT / "requirements" / "producer.lock").read_text()
    pipeline = (REPO_ROOT / "requirements" / "pipeline.lock").read_text()
    pins = re.findall(r"^([a-z0-9_-]+)==(\S+)", producer, re.M)
    assert pins and "pyspark" not in dict(pins)
    assert all(f"{name}=={version}" in pipeline for name, version in pins)


@pytest.mark.unit
def test_images_hash_what_their_copy_lines_take():
    assert images.copy_sources("COPY a b\nCOPY --from=jars /x /y\nCOPY c d e/\n") == ["a", "c", "d"]
    spark = images.BY_NAME["tripclick-pipeline/spark-job"]
    base = images.content_hash(spark, {"PYTHON_BASE": "x"}, "parent1")
    assert images.content_hash(spark, {"PYTHON_BASE": "x"}, "parent1") == base
    assert images.content_hash(spark, {"PYTHON_BASE": "x"}, "parent2") != base


@pytest.mark.unit
def test_no_doc_reaches_a_build_context():
    """A doc-only commit rebuilds nothing: no Markdown file is among what any image's COPY lines take."""
    taken = [f for image in images.BY_NAME.values()
             for source in images.copy_sources((REPO_ROOT / image.dockerfile).read_text())
             for f in images._files(REPO_ROOT / source)]
    assert taken and not [f for f in taken if f.suffix == ".md"]


@pytest.mark.unit
def test_spark_image_resolves_jars_with_the_setup_maven_command_and_bakes_the_spark_module():
    text = (REPO_ROOT / "processing" / "Dockerfile").read_text()
    command = _mvn_command(text)
    assert " ".join(command).count("-pl spark -am") == 1  # only the spark module (and its parent)
    assert [w for w in command if w not in ("-pl", "spark", "-am")] == _mvn_command(SETUP_SH.read_text())
    assert "COPY infrastructure/jars infrastructure/jars" in text
    copies = re.findall(r"COPY --from=jars (\S+) (\S+)", text)
    assert copies == [("/opt/tripclick/.cache/jars/spark/", "${SPARK_HOME}/jars/")]
    assert not re.search(r"\.jar\b.*https?://|https?://\S+\.jar|--packages", text), "jars fetched outside the pom"


@pytest.mark.integration
def test_the_image_maven_stage_produces_exactly_the_local_jar_list(tmp_path):
    """Run the Dockerfile's Maven command (offline, against the repository setup filled) on a copy of
    the pom tree laid out as in the build stage; its spark/ output must equal `make setup`'s."""
    local = sorted(p.name for p in LOCAL_SPARK_JARS.glob("*.jar"))
    assert local, "run `make setup` first"
    shutil.copytree(REPO_ROOT / "infrastructure" / "jars", tmp_path / "infrastructure" / "jars")
    command = [*_mvn_command((REPO_ROOT / "processing" / "Dockerfile").read_text()), "-o",
               f"-Dmaven.repo.local={REPO_ROOT / '.cache' / 'm2'}"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    baked = sorted(p.name for p in (tmp_path / ".cache" / "jars" / "spark").glob("*.jar"))
    assert baked == local
    for artifact in ("spark-sql-kafka-0-10_2.12-3.4.1", "hadoop-aws-3.3.4", "aws-java-sdk-bundle-1.12.262",
                     "spark-hadoop-cloud_2.12-3.4.3", "postgresql-42.7.4"):
        assert f"{artifact}.jar" in baked
