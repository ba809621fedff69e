# tripclick-pipeline/python-base: what every project image shares, built by `make images` first.
#   BASE_IMAGE  any Debian 12 image with Python 3.11 as `python3.11` on PATH and python3-venv:
#               python:3.11.11-slim-bookworm (default, for hosts that can pull it) or the local
#               Debian base of `make base-image` (hosts without a registry).
# Adds the build's extra CA certificates (a corporate TLS proxy's; *.crt files put into
# infrastructure/docker/extra-ca-certificates/ — see its README), the pinned uv, and the `tripclick`
# user (uid 10001) that the producer, Airflow and Superset images run as.
ARG BASE_IMAGE=python:3.11.11-slim-bookworm
FROM ${BASE_IMAGE}

ARG UV_VERSION=0.13.9
COPY infrastructure/docker/extra-ca-certificates/ /usr/local/share/ca-certificates/tripclick-extra/
# pip and uv both verify against the system store, which then holds the extra certificates too.
ENV LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_NATIVE_TLS=1 \
    UV_NO_CACHE=1 \
    UV_LINK_MODE=copy
RUN update-ca-certificates \
 && python3.11 -m venv /opt/uv \
 && /opt/uv/bin/pip install --no-cache-dir "uv==${UV_VERSION}" \
 && ln -s /opt/uv/bin/uv /usr/local/bin/uv \
 && groupadd --system --gid 10001 tripclick \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/tripclick --create-home tripclick
WORKDIR /opt/tripclick
