"""A class-data-sharing archive of the Spark driver's classes, so a Spark JVM starts in half the time.

A Spark JVM spends most of a short job's start loading and verifying some ten thousand classes; JDK 17
can map them from an archive dumped by an earlier run of the same Java on the same classpath
(-XX:ArchiveClassesAtExit, then -XX:SharedArchiveFile). Measured on a 2-core host (BENCHMARKS.md, "class
archive"): a trivial local job 10.4 -> 5.2 s and 12 -> 7 CPU-seconds. The archive is built by `make setup`
(and by the spark-job image) from a probe that runs the pipeline's own transformations on a few synthetic
clicks; its file name is a digest of the Java binary and of the Spark jars, so an archive never meets
another classpath: after an upgrade the old one is simply not found and `make setup` dumps a new one.
Java itself checks the archive again and runs without it when it does not fit.

`python -m processing.spark.class_archive` builds it when missing; prints the path either way.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from infrastructure.settings import REPO_ROOT

ARCHIVE_DIR = REPO_ROOT / ".cache" / "spark-cds"
PROBE_CLICKS = 400
PROBE_TZ = "Asia/Seoul"


def java_binary() -> Path | None:
    """The java spark-submit starts: JAVA_HOME's, else the first on PATH (as bin/spark-class chooses)."""
    home = os.environ.get("JAVA_HOME")
    found = Path(home) / "bin" / "java" if home else shutil.which("java")
    return Path(found).resolve() if found and Path(found).exists() else None


def spark_jars_dir() -> Path:
    import pyspark

    return Path(os.environ.get("SPARK_HOME") or Path(pyspark.__file__).parent) / "jars"


def archive_path(java: Path | None = None, jars_dir: Path | None = None) -> Path | None:
    """Where the archive of this Java and these jars lives (None without a Java)."""
    java = java or java_binary()
    if java is None:
        return None
    jars_dir = jars_dir or spark_jars_dir()
    # The jars' folder too: the archive records the classpath, so a moved checkout needs its own.
    digest = hashlib.sha256(f"{java} {java.stat().st_size} {java.stat().st_mtime_ns} {jars_dir}".encode())
    for jar in sorted(jars_dir.glob("*.jar")):
        digest.update(f"\n{jar.name} {jar.stat().st_size}".encode())
    return ARCHIVE_DIR / f"driver-{digest.hexdigest()[:16]}.jsa"


def java_option() -> str:
    """The JVM option that maps the archive, or "" when none was built for this Java and these jars."""
    path = archive_path()
    return f"-XX:SharedArchiveFile={path}" if path and path.exists() else ""


def probe() -> None:
    """The pipeline's transformations on synthetic clicks: stream parse/dedup/live aggregates (the warm-up),
    the exact Silver and every mart, through Parquet, so their classes are loaded once and dumped."""
    from infrastructure.settings import load
    from processing import transforms
    from processing.spark.session import build_session
    from processing.warm_up import SYNTHETIC_DAY, SYNTHETIC_DOCUMENT, synthetic_clicks, warm_up

    settings = load({**os.environ, "SPARK_MASTER": "local[2]", "LAKE_ROOT": "/tmp/unused"})
    spark = build_session(settings, "class-archive-probe")
    warm_up(spark, PROBE_TZ, "10 minutes", PROBE_CLICKS)
    values = synthetic_clicks(SYNTHETIC_DAY, SYNTHETIC_DOCUMENT, "Probe", PROBE_CLICKS, PROBE_CLICKS, 0)
    kafka = spark.createDataFrame([(None, v, "probe", 0, n, None) for n, v in enumerate(values)],
                                  "key binary, value binary, topic string, partition int, offset long, "
                                  "timestamp timestamp")
    with tempfile.TemporaryDirectory(prefix="class-archive-probe-") as scratch:
        transforms.bronze_rows(kafka, PROBE_TZ).write.parquet(f"{scratch}/bronze")
        parsed = transforms.parse_events(spark.read.parquet(f"{scratch}/bronze"), pipeline_tz=PROBE_TZ)
        transforms.exact_silver(parsed).write.partitionBy("event_date").parquet(f"{scratch}/silver")
        silver = spark.read.parquet(f"{scratch}/silver")
        for mart in transforms.MART_BUILDERS:
            transforms.mart_rows(mart, silver).write.parquet(f"{scratch}/{mart}")
    spark.stop()


def build(path: Path) -> float:
    """Dump the archive of a probe run to `path` (written beside it, then renamed); returns its seconds."""
    started = time.monotonic()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.partial")
    env = {**os.environ, "SPARK_JAVA_OPTIONS": f"-XX:ArchiveClassesAtExit={partial}"}
    run = subprocess.run([sys.executable, "-m", "processing.spark.class_archive", "--probe"], env=env,
                         capture_output=True, text=True)
    if run.returncode != 0 or not partial.exists():
        partial.unlink(missing_ok=True)
        raise SystemExit(f"class archive: the probe failed (exit {run.returncode}):\n{run.stderr[-3000:]}")
    partial.replace(path)
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probe", action="store_true", help="run the probe only (the JVM that dumps the archive)")
    args = parser.parse_args(argv)
    if args.probe:
        probe()
        return 0
    path = archive_path()
    if path is None:
        print("class archive: no java found (JAVA_HOME or PATH); Spark starts without an archive")
        return 1
    if path.exists():
        print(f"class archive: up to date path={path}")
        return 0
    for stale in path.parent.glob("driver-*.jsa"):  # another Java's or other jars': never mapped again
        stale.unlink()
    seconds = build(path)
    print(f"class archive: built path={path} bytes={path.stat().st_size} seconds={seconds:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
