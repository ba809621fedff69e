"""S3Proxy: a real S3 API server over a local folder, on S3_ENDPOINT, with bucket S3_BUCKET."""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

from infrastructure.local import processes
from infrastructure.settings import REPO_ROOT, Settings

JARS = REPO_ROOT / ".cache" / "jars" / "s3proxy"
HEAP = "256m"
# S3Proxy's built-in logback configuration logs every request at DEBUG.
LOGBACK = """<configuration>
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%d{ISO8601} %-5level [%thread] %logger{36} - %msg%n</pattern></encoder>
  </appender>
  <root level="WARN"><appender-ref ref="STDOUT"/></root>
</configuration>
"""


def home(settings: Settings) -> Path:
    return settings.run_dir / "s3"


def address(settings: Settings) -> tuple[str, int]:
    url = urlparse(settings.s3_endpoint)
    return url.hostname or "127.0.0.1", url.port or 80


def location(uri: str) -> tuple[str, str]:
    """s3a://bucket/a/b or s3://bucket/a/b -> (bucket, "a/b")."""
    url = urlparse(uri)
    return url.netloc, url.path.lstrip("/")


def client(settings: Settings):
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=settings.s3_endpoint or None, region_name="us-east-1",
                        aws_access_key_id=settings.aws_access_key_id,
                        aws_secret_access_key=settings.aws_secret_access_key,
                        # boto3 >= 1.36 adds CRC checksum headers by default, which older S3-compatible
                        # servers answer with NotImplemented: send checksums only where the API requires one.
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2},
                                      connect_timeout=2, read_timeout=10,
                                      request_checksum_calculation="when_required",
                                      response_checksum_validation="when_required"))


def _prepare(settings: Settings) -> None:
    if not any(JARS.glob("s3proxy-*.jar")):
        raise processes.StartError(f"S3Proxy jars missing in {JARS}: run `make setup`")
    root = home(settings)
    (root / "data").mkdir(parents=True, exist_ok=True)
    host, port = address(settings)
    # Holds the credential: owner-only, inside the git-ignored run folder.
    fd = os.open(root / "s3proxy.properties", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(f"s3proxy.endpoint=http://{host}:{port}\n"
                  "s3proxy.authorization=aws-v2-or-v4\n"
                  f"s3proxy.identity={settings.aws_access_key_id}\n"
                  f"s3proxy.credential={settings.aws_secret_access_key}\n"
                  "jclouds.provider=filesystem-nio2\n"
                  # The folder backend ignores these, but S3Proxy insists on them.
                  f"jclouds.identity={settings.aws_access_key_id}\n"
                  f"jclouds.credential={settings.aws_secret_access_key}\n"
                  f"jclouds.filesystem.basedir={root / 'data'}\n")
    (root / "logback.xml").write_text(LOGBACK)


def service(settings: Settings) -> processes.Service:
    root = home(settings)
    return processes.Service("s3proxy", root, ["java", f"-Xmx{HEAP}", "-XX:+UseSerialGC",
                                               f"-Dlogback.configurationFile={root / 'logback.xml'}",
                                               "-cp", f"{JARS}/*", "org.gaul.s3proxy.Main",
                                               "--properties", str(root / "s3proxy.properties")],
                             probe=lambda: healthy(settings), expect="org.gaul.s3proxy", address=address(settings),
                             prepare=lambda: _prepare(settings))


def healthy(settings: Settings) -> bool:
    try:
        client(settings).list_buckets()
    except Exception:
        return False
    return True


def ensure_bucket(settings: Settings) -> None:
    s3 = client(settings)
    if settings.s3_bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(Bucket=settings.s3_bucket)
