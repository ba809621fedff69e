"""The Spark drivers' class archive: named after its Java and jars, and really mapped by a Spark JVM."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from processing.spark import class_archive
from processing.spark.session import java_options
from infrastructure.settings import load


def fake_install(tmp_path, jar_bytes: bytes):
    java, jars = tmp_path / "java", tmp_path / "jars"
    jars.mkdir(exist_ok=True)
    java.write_bytes(b"java")
    (jars / "spark-core.jar").write_bytes(jar_bytes)
    return java, jars


@pytest.mark.unit
def test_the_archive_name_changes_with_the_jars_and_the_java(tmp_path):
    java, jars = fake_install(tmp_path, b"v1")
    first = class_archive.archive_path(java, jars)
    assert class_archive.archive_path(java, jars) == first
    (jars / "spark-core.jar").write_bytes(b"v2 longer")
    assert class_archive.archive_path(java, jars) != first
    other_java = tmp_path / "other-java"
    other_java.write_bytes(b"java")
    assert class_archive.archive_path(other_java, jars) != class_archive.archive_path(java, jars)
    copied = shutil.copytree(jars, tmp_path / "another-checkout-jars")  # same jars, another classpath
    assert class_archive.archive_path(java, copied) != class_archive.archive_path(java, jars)
    assert first.parent == class_archive.ARCHIVE_DIR and first.suffix == ".jsa"


@pytest.mark.integration
def test_a_spark_driver_maps_the_archive_that_setup_built():
    """-Xshare:on makes the JVM refuse to start unless it maps the archive (classpath and Java must match)."""
    path = class_archive.archive_path()
    assert path is not None and path.exists(), "no class archive for this Java and these jars: run `make setup`"
    assert f"-XX:SharedArchiveFile={path}" in java_options(load({"SPARK_JAVA_OPTIONS": ""}))
    script = ("from infrastructure.settings import load; from processing.spark.session import build_session; "
              "s = build_session(load({'SPARK_MASTER': 'local[1]', 'LAKE_ROOT': '/tmp/unused', "
              "'SPARK_JAVA_OPTIONS': '-Xshare:on'}), 'archive-check'); print('rows', s.range(5).count())")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.split()[-1] == "5", run.stderr[-3000:]
