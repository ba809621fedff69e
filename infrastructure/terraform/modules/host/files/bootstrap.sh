#!/usr/bin/env bash
# First boot of a TripClick host, run by cloud-init after it installed Docker, git and the AWS CLI;
# also the release step: `bootstrap.sh v1.2.0` checks out that tag, sets IMAGE_TAG=1.2.0 and
# restarts the role's compose file on the new images. Safe to re-run.
#
# Inputs written by Terraform into /opt/tripclick-bootstrap: bootstrap.json (who this host is),
# terraform.env (addresses, lake, topics, images), compose.override.yaml (Kafka hosts only).
# Secrets come from SSM Parameter Store under <prefix>/<host>/ (put there by put_secrets.py), which
# this host's role alone may read; the script waits for them, so `terraform apply` may come first.
set -euo pipefail
# The folders are variables for tests/infrastructure, which runs this script against fake commands.
BOOT=${TRIPCLICK_BOOT_DIR:-/opt/tripclick-bootstrap}
APP=${TRIPCLICK_APP_DIR:-/opt/tripclick}
ETC=${TRIPCLICK_ETC_DIR:-/etc}
PARAM_WAIT_SECONDS=${PARAM_WAIT_SECONDS:-3600}
log() { printf '[tripclick-bootstrap] %s\n' "$*"; }
die() { log "ERROR: $*"; exit 1; }

# bootstrap.json as CONF_<KEY> shell variables (lists space-separated, booleans true/false), read once.
eval "$(python3 - "$BOOT/bootstrap.json" <<'PY'
import json, shlex, sys
for key, value in json.load(open(sys.argv[1])).items():
    value = " ".join(value) if isinstance(value, list) else str(value).lower() if isinstance(value, bool) else value
    print(f"CONF_{key.upper()}={shlex.quote(str(value))}")
PY
)"
HOST=$CONF_HOST
ROLE=$CONF_ROLE
REGION=$CONF_REGION
PREFIX="$CONF_PARAMETER_PREFIX/$HOST"

param() {  # param NAME: print the parameter <prefix>/<host>/NAME, or fail
  aws ssm get-parameter --region "$REGION" --with-decryption --name "$PREFIX/$1" \
    --query Parameter.Value --output text 2>/dev/null
}

fetch() {  # fetch NAME FILE MODE: wait until the parameter exists, then write it
  local waited=0
  until (umask 077; param "$1" > "$2.tmp"); do
    [ "$waited" -lt "$PARAM_WAIT_SECONDS" ] || die "parameter $PREFIX/$1 not found (run put_secrets.py)"
    [ "$waited" -gt 0 ] || log "waiting for parameter $PREFIX/$1"
    sleep 30; waited=$((waited + 30))
  done
  chmod "$3" "$2.tmp" && mv "$2.tmp" "$2"
}

env_value() { grep -E "^$1=" "$APP/.env" | tail -n 1 | cut -d= -f2-; }

wait_for() {  # wait_for HOST:PORT: until it accepts TCP connections (at most an hour)
  local address=${1%:*} port=${1##*:} waited=0
  until timeout 3 bash -c "exec 3<>/dev/tcp/$address/$port" 2>/dev/null; do
    [ "$waited" -lt 3600 ] || die "$1 never accepted a connection"
    sleep 10; waited=$((waited + 10))
  done
}

install_session_manager() {
  [ "$CONF_SESSION_MANAGER" = true ] || return 0
  systemctl is-active --quiet amazon-ssm-agent && return 0
  # The agent is not a Debian package; AWS publishes it per region.
  curl -fsSL -o /tmp/amazon-ssm-agent.deb \
    "https://s3.$REGION.amazonaws.com/amazon-ssm-$REGION/latest/debian_amd64/amazon-ssm-agent.deb"
  dpkg -i /tmp/amazon-ssm-agent.deb && systemctl enable --now amazon-ssm-agent
}

checkout() {  # checkout REF: the release's compose files and the files they mount
    if [ ! -d "$APP/.git" ]; then
    git clone --quiet --depth 1 --branch "$1" "$CONF_SOURCE_REPOSITORY" "$APP"
  else  # .env is git-ignored: a forced checkout keeps it
    git -C "$APP" fetch --quiet --depth 1 origin "$1"
    git -C "$APP" checkout --quiet --force FETCH_HEAD
  fi
}

write_env() {  # template < secrets < Terraform's values < the release being rolled out
  fetch env "$BOOT/secrets.env" 600
  local release=()
  [ -f "$BOOT/release.env" ] && release=("$BOOT/release.env")
  (umask 077; python3 "$BOOT/merge_env.py" "$APP/.env.docker.example" "$BOOT/secrets.env" \
    "$BOOT/terraform.env" "${release[@]}" > "$APP/.env.new")
  mv "$APP/.env.new" "$APP/.env"
}

registry_login() {  # optional <prefix>/<host>/registry-auth = "user:token" for a private registry
  local auth registry; registry=$(env_value IMAGE_REGISTRY); registry=${registry%%/*}
  [ -n "$registry" ] || return 0
  auth=$(param registry-auth) || return 0
  printf '%s' "${auth#*:}" | docker login "$registry" --username "${auth%%:*}" --password-stdin >/dev/null
}

docker_api() {  # infrastructure/README.md, "Docker API over TLS", step 2
  [ "$CONF_DOCKER_API" = true ] || return 0
  install -d -m 700 "$ETC/docker/tls"
  fetch docker-tls/ca.pem "$ETC/docker/tls/ca.pem" 600
  fetch docker-tls/server-cert.pem "$ETC/docker/tls/server-cert.pem" 600
  fetch docker-tls/server-key.pem "$ETC/docker/tls/server-key.pem" 600
  if ! cmp -s "$APP/infrastructure/deploy/docker-daemon.json" "$ETC/docker/daemon.json"; then
    install -m 644 "$APP/infrastructure/deploy/docker-daemon.json" "$ETC/docker/daemon.json"
    # daemon.json sets "hosts"; the packaged unit passes -H too, which dockerd refuses.
    mkdir -p "$ETC/systemd/system/docker.service.d"
    printf '[Service]\nExecStart=\nExecStart=/usr/bin/dockerd --containerd=/run/containerd/containerd.sock\n' \
      > "$ETC/systemd/system/docker.service.d/tls.conf"
    systemctl daemon-reload && systemctl restart docker
  fi
}

docker_clients() {  # Airflow: client certificates per Docker API host, owned by the containers' uid
  local dir host file
  [ -n "$CONF_DOCKER_CLIENT_HOSTS" ] || return 0
  dir=$(env_value DOCKER_CERT_DIR)
  for host in $CONF_DOCKER_CLIENT_HOSTS; do
    install -d -m 700 "$dir/$host"
    for file in ca cert key; do fetch "docker-client/$host/$file.pem" "$dir/$host/$file.pem" 400; done
  done
  chown -R 10001:10001 "$dir"
}

compose_up() {
  local files=(--env-file .env -f "$CONF_COMPOSE_FILE") services once network
  [ "$CONF_COMPOSE_OVERRIDE" = true ] && files+=(-f "$BOOT/compose.override.yaml")
  read -r -a services <<< "$CONF_COMPOSE_SERVICES"
  read -r -a once <<< "$CONF_RUN_ONCE"
  cd "$APP"
  if [ "$ROLE" = webserver ] || [ "$ROLE" = spark ]; then  # the DAG's containers join it
    network=$(env_value DOCKER_NETWORK)
    docker network inspect "$network" >/dev/null 2>&1 || docker network create "$network" >/dev/null
  fi
  if [ "$ROLE" = webserver ]; then  # nothing runs here permanently: only make the image present
    install -d "$(env_value PRODUCER_DATA_DIR)"
    docker-compose "${files[@]}" --profile manual pull producer
    return
  fi
  for target in $CONF_WAIT_FOR; do log "waiting for $target"; wait_for "$target"; done
  if [ ${#services[@]} -gt 0 ]; then
    docker-compose "${files[@]}" pull "${services[@]}"
    docker-compose "${files[@]}" up -d --no-deps "${services[@]}"
  else
    docker-compose "${files[@]}" pull --ignore-pull-failures
    docker-compose "${files[@]}" up -d
  fi
  for target in $CONF_RUN_ONCE_WAITS_FOR; do log "waiting for $target"; wait_for "$target"; done
  for service in "${once[@]}"; do  # brokers that accept connections may still be joining the quorum
    local try
    for try in 1 2 3 4 5 6 7 8 9 10; do
      docker-compose "${files[@]}" run --rm --no-deps "$service" && break
      [ "$try" -lt 10 ] || die "$service failed 10 times"
      sleep 30
    done
  done
}

main() {
  local ref; ref=${1:-$(cat "$BOOT/ref" 2>/dev/null || echo "$CONF_SOURCE_REF")}
  if [ $# -gt 0 ]; then  # a release: its images are tagged with the version, without the v
    printf 'IMAGE_TAG=%s\n' "${ref#v}" > "$BOOT/release.env"
  fi
  install_session_manager
  checkout "$ref"
  echo "$ref" > "$BOOT/ref"
  write_env
  registry_login
  docker_api
  docker_clients
  compose_up
  log "$HOST ($ROLE) is at $ref"
}

main "$@"
