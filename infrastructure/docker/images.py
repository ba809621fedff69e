"""Build (and push) every project image, content-addressed: an unchanged tree is not rebuilt.

    python -m infrastructure.docker.images build [--only NAME ...]
    python -m infrastructure.docker.images push
    python -m infrastructure.docker.images list

Images are `<IMAGE_REGISTRY><name>:<IMAGE_TAG>`. python-base is built first from BASE_IMAGE, the five
others from python-base. Each image carries the label CONTENT_LABEL: a hash of its Dockerfile, of every
file its COPY lines take from the repository, of its build arguments and of its parent's hash; when the
image at the tag already has that label the build is skipped. Talks to the engine of DOCKER_HOST.
"""
from __future__ import annotations

import argparse
import fnmatch
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from infrastructure.settings import REPO_ROOT, Settings, load

CONTENT_LABEL = "org.tripclick.content-hash"
EXTRA_CA_DIR = REPO_ROOT / "infrastructure" / "docker" / "extra-ca-certificates"
UV_VERSION = "0.13.9"  # the version infrastructure/local/setup.sh installs
DOCKERIGNORE = REPO_ROOT / ".dockerignore"


@dataclass(frozen=True)
class Image:
    name: str  # without registry and tag
    dockerfile: str  # relative to the repository root (the build context)
    parent: str | None  # name of the project image it is built FROM (build argument PYTHON_BASE)


PYTHON_BASE = Image("tripclick-pipeline/python-base", "infrastructure/docker/python-base.Dockerfile", None)
IMAGES: tuple[Image, ...] = (
    PYTHON_BASE,
    Image("tripclick-pipeline/producer", "ingestion/Dockerfile", PYTHON_BASE.name),
    Image("tripclick-pipeline/spark-job", "processing/Dockerfile", PYTHON_BASE.name),
    Image("tripclick-pipeline/airflow", "orchestration/Dockerfile", PYTHON_BASE.name),
    Image("tripclick-pipeline/superset", "gold/Dockerfile", PYTHON_BASE.name),
    Image("tripclick-pipeline/monitoring", "monitoring/Dockerfile", PYTHON_BASE.name),
)
BY_NAME = {image.name: image for image in IMAGES}


def image_ref(name: str, settings: Settings) -> str:
    return f"{settings.image_registry}{name}:{settings.image_tag}"


def copy_sources(dockerfile_text: str) -> list[str]:
    """Repository paths taken by the COPY lines of a Dockerfile (COPY --from=<stage> lines excluded)."""
    sources = []
    for line in dockerfile_text.splitlines():
        words = line.split()
        if len(words) < 3 or words[0].upper() != "COPY" or any(w.startswith("--from") for w in words):
            continue
        sources += [w for w in words[1:-1] if not w.startswith("--")]
    return sources


def _ignored(relative: str, patterns: tuple[str, ...]) -> bool:
    """Whether .dockerignore keeps `relative` (or a folder above it) out of the build context."""
    parts = relative.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    return any(fnmatch.fnmatch(c, p.removeprefix("**/")) or fnmatch.fnmatch(c, p) or
               (p.startswith("**/") and fnmatch.fnmatch(c.rpartition("/")[2], p[3:]))
               for p in patterns for c in candidates)


@functools.lru_cache(maxsize=1)
def _dockerignore_patterns() -> tuple[str, ...]:
    return tuple(line.strip() for line in DOCKERIGNORE.read_text().splitlines()
                 if line.strip() and not line.startswith("#"))


def _files(path: Path) -> list[Path]:
    """The files of `path` that reach the build context (as .dockerignore filters it)."""
    patterns = _dockerignore_patterns()
    found = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return [p for p in found if not _ignored(str(p.relative_to(REPO_ROOT)), patterns)]


def content_hash(image: Image, build_args: dict[str, str], parent_hash: str = "") -> str:
    dockerfile = REPO_ROOT / image.dockerfile
    text = dockerfile.read_text(encoding="utf-8")
    digest = hashlib.sha256(text.encode())
    digest.update(json.dumps(build_args, sort_keys=True).encode())
    digest.update(parent_hash.encode())
    for source in copy_sources(text):
        for path in _files(REPO_ROOT / source):
            digest.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _docker(*args: str, capture: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=capture, text=True)


def image_label(ref: str) -> str | None:
    """The content label of the local image `ref`, or None when there is no such image."""
    result = _docker("image", "inspect", "--format", f'{{{{ index .Config.Labels "{CONTENT_LABEL}" }}}}', ref)
    return result.stdout.strip() if result.returncode == 0 else None


def base_image_id(base: str) -> str:
    """The local ID of BASE_IMAGE, pulling it first when it is not present (a registry host)."""
    result = _docker("image", "inspect", "--format", "{{.Id}}", base)
    if result.returncode != 0:
        print(f"images: pulling base image {base}", flush=True)
        if _docker("pull", base, capture=False).returncode != 0:
            raise SystemExit(f"images: FAILED: base image {base} is neither local nor pullable "
                             "(hosts without a registry: `make base-image` and BASE_IMAGE="
                             "tripclick-pipeline/debian-python:bookworm)")
        result = _docker("image", "inspect", "--format", "{{.Id}}", base)
    return result.stdout.strip()


def stage_extra_ca_certificates(source: str) -> int:
    """Copy EXTRA_CA_CERTS (*.crt of a folder, or one file) into the build context; returns the count."""
    for old in EXTRA_CA_DIR.glob("*.crt"):
        old.unlink()
    if not source:
        return 0
    path = Path(source)
    files = [path] if path.is_file() else sorted(path.glob("*.crt"))
    if not files:
        raise SystemExit(f"images: FAILED: EXTRA_CA_CERTS={source} holds no *.crt certificate")
    for number, cert in enumerate(files):
        shutil.copyfile(cert, EXTRA_CA_DIR / f"extra-{number:02d}-{cert.stem}.crt")
    return len(files)


def build(settings: Settings, only: list[str] | None = None) -> dict[str, str]:
    """Build what changed; returns name -> 'built' | 'unchanged'."""
    cas = stage_extra_ca_certificates(settings.extra_ca_certs)
    hashes: dict[str, str] = {}
    outcome: dict[str, str] = {}
    began = time.monotonic()
    for image in IMAGES:
        ref = image_ref(image.name, settings)
        if image.parent:
            args = {"PYTHON_BASE": image_ref(image.parent, settings)}
            hashes[image.name] = content_hash(image, args, hashes[image.parent])
        else:
            args = {"BASE_IMAGE": settings.base_image, "UV_VERSION": UV_VERSION}
            hashes[image.name] = content_hash(image, {**args, "id": base_image_id(settings.base_image)})
        wanted = only is None or image.name in only or image.name.split("/")[-1] in only
        if not wanted:
            continue
        if image_label(ref) == hashes[image.name]:
            print(f"images: {ref} unchanged ({hashes[image.name]})", flush=True)
            outcome[image.name] = "unchanged"
            continue
        print(f"images: building {ref} from {image.dockerfile} ({cas} extra CA certificates)", flush=True)
        started = time.monotonic()
        command = ["build", "-f", image.dockerfile, "--label", f"{CONTENT_LABEL}={hashes[image.name]}", "-t", ref]
        for key, value in args.items():
            command += ["--build-arg", f"{key}={value}"]
        result = subprocess.run(["docker", *command, "."], cwd=REPO_ROOT, env=_build_env())
        if result.returncode != 0:
            raise SystemExit(f"images: FAILED: docker build of {ref} exited {result.returncode}")
        print(f"images: built {ref} in {time.monotonic() - started:.0f}s, {image_size_mb(ref)} MB", flush=True)
        outcome[image.name] = "built"
    built = sum(v == "built" for v in outcome.values())
    print(f"images: built={built} unchanged={len(outcome) - built} seconds={time.monotonic() - began:.0f}")
    return outcome


def _build_env() -> dict[str, str]:
    # The classic builder: BuildKit needs the buildx plugin, which Debian's docker.io does not ship.
    return {**os.environ, "DOCKER_BUILDKIT": "0"}


def image_size_mb(ref: str) -> int:
    result = _docker("image", "inspect", "--format", "{{.Size}}", ref)
    return int(result.stdout.strip() or 0) // 1_000_000


def push(settings: Settings) -> int:
    if not settings.image_registry:
        raise SystemExit("images: FAILED: IMAGE_REGISTRY is empty; nothing to push to")
    for image in IMAGES:
        ref = image_ref(image.name, settings)
        print(f"images: pushing {ref}", flush=True)
        if _docker("push", ref, capture=False).returncode != 0:
            raise SystemExit(f"images: FAILED: docker push {ref}")
    print(f"images: pushed={len(IMAGES)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infrastructure.docker.images", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["build", "push", "list"])
    parser.add_argument("--only", nargs="+",
                        help="image names (e.g. producer spark-job); parents are hashed, not built")
    args = parser.parse_args(argv)
    settings = load()
    if args.command == "build":
        build(settings, args.only)
    elif args.command == "push":
        push(settings)
    else:
        for image in IMAGES:
            ref = image_ref(image.name, settings)
            print(f"{ref:<60} {image_label(ref) or '(not built)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
