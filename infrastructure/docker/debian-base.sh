#!/usr/bin/env bash
# `make base-image`: a Debian 12 (bookworm) image with Python 3.11 made from Debian packages only, for
# engines that cannot pull python:3.11-slim (no registry). Same contract as that image for our
# Dockerfiles: python3.11 and python3-venv on PATH, ca-certificates, groupadd/useradd (passwd).
#   bash infrastructure/docker/debian-base.sh [IMAGE]   (default tripclick-pipeline/debian-python:bookworm)
# Skips the build when IMAGE exists with this script's hash as its label. Needs root and debootstrap.
set -euo pipefail
IMAGE=${1:-tripclick-pipeline/debian-python:bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
LABEL=org.tripclick.content-hash
want=$(sha256sum "$0" | cut -c1-16)
have=$(docker image inspect --format "{{ index .Config.Labels \"$LABEL\" }}" "$IMAGE" 2>/dev/null || true)
if [ "$have" = "$want" ]; then echo "[base-image] $IMAGE unchanged ($want)"; exit 0; fi
command -v debootstrap >/dev/null || { echo "[base-image] ERROR: debootstrap missing (apt-get install debootstrap)"; exit 1; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
start=$(date +%s)
echo "[base-image] debootstrap bookworm from $MIRROR into $root"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,passwd bookworm "$root" "$MIRROR" \
  > "$root.log" 2>&1 || { tail -20 "$root.log"; echo "[base-image] ERROR: debootstrap failed (log $root.log)"; exit 1; }
rm -f "$root.log"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import -c 'ENV LANG=C.UTF-8' -c "LABEL $LABEL=$want" -c 'CMD ["python3.11"]' - "$IMAGE" >/dev/null
echo "[base-image] $IMAGE in $(( $(date +%s) - start ))s, $(( $(docker image inspect --format '{{.Size}}' "$IMAGE") / 1000000 )) MB"
