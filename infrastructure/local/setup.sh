#!/usr/bin/env bash
# `make setup`: idempotent installation of everything local mode needs, from the registries only.
#   - uv (pinned) in .cache/tools, then three locked environments: .venv (pipeline + tests),
#     .venvs/airflow, .venvs/superset; the project itself is installed editable into each;
#   - JVM artifacts from infrastructure/jars/pom.xml into .cache/jars/<module>/;
#   - the Spark drivers' class archive in .cache/spark-cds/ (processing/spark/class_archive.py);
#   - PostgreSQL 15 server binaries from Debian packages when missing (as root).
# Several groups in one call share the wait for the class archive: it is built in the background while the
# other environments and the extras install (`make test` asks for all of them at once).
# Optional extras: `setup.sh browser` (Debian chromium + chromium-driver), `setup.sh compose`
# (Debian docker-compose, for static checks of the compose files), `setup.sh docker` (Debian's Docker
# engine, docker-compose and debootstrap: docker mode's images and end-to-end test), `setup.sh infra-tools`
# (the checkers of infrastructure/terraform and .github/workflows: Go tools into .cache/tools/bin, Debian's
# ShellCheck, and checkov and zizmor in .venvs/infra-tools), `setup.sh monitoring` (Debian's Prometheus,
# Alertmanager, Pushgateway, node and PostgreSQL exporters; statsd_exporter built with Go).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
UV_VERSION=0.13.9
PYTHON="${PYTHON:-python3.11}"
MAVEN_REPO_LOCAL="${MAVEN_REPO_LOCAL:-$ROOT/.cache/m2}"
log() { printf '[setup] %s\n' "$*"; }

need_root_for() {
  if [ "$(id -u)" != 0 ]; then
    log "ERROR: $1 is missing and needs root to install. Run as root, or: sudo apt-get install -y $2"
    exit 1
  fi
}

apt_install() {  # apt_install PACKAGE... (refreshes the index once per setup run)
  if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

setup_uv() {
  if [ ! -x .cache/tools/bin/uv ] || ! .cache/tools/bin/uv --version | grep -q " $UV_VERSION"; then
    log "installing uv $UV_VERSION into .cache/tools"
    "$PYTHON" -m venv .cache/tools
    .cache/tools/bin/pip install -q "uv==$UV_VERSION"
  fi
}

setup_env() {  # setup_env NAME DIR: sync DIR from requirements/NAME.lock when the lock changed
  local name=$1 dir=$2 stamp="$2/.lock.sha256"
  # The editable install maps the packages that exist when it runs: a new layer package must re-trigger it.
  local want; want=$( (cat "requirements/$name.lock" pyproject.toml; echo "$UV_VERSION bytecode"; ls -d -- */__init__.py) \
    | sha256sum | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return; fi
  log "environment $dir from requirements/$name.lock"
  [ -x "$dir/bin/python" ] || .cache/tools/bin/uv venv -q --python "$PYTHON" "$dir"
  # Bytecode compiled once here: with PYTHONDONTWRITEBYTECODE set (as on this project's machines) Python would
  # otherwise compile every imported module from source in every process (Great Expectations alone: 6 s -> 3 s).
  .cache/tools/bin/uv pip sync -q --compile-bytecode --python "$dir/bin/python" "requirements/$name.lock"
  .cache/tools/bin/uv pip install -q --python "$dir/bin/python" --no-deps -e .
  echo "$want" > "$stamp"
}

setup_jars() {
  local want; want=$(cat infrastructure/jars/pom.xml infrastructure/jars/*/pom.xml | sha256sum | cut -d' ' -f1)
  if [ -f .cache/jars/.pom.sha256 ] && [ "$(cat .cache/jars/.pom.sha256)" = "$want" ]; then return; fi
  log "resolving JVM artifacts with Maven into .cache/jars (repository $MAVEN_REPO_LOCAL)"
  rm -rf .cache/jars
  mkdir -p .cache
  if ! mvn -B -Dstyle.color=never -f infrastructure/jars/pom.xml -Dmaven.repo.local="$MAVEN_REPO_LOCAL" package \
      > .cache/maven.log 2>&1; then
    tail -30 .cache/maven.log; log "ERROR: Maven could not resolve the jars (full log: .cache/maven.log)"; exit 1
  fi
  echo "$want" > .cache/jars/.pom.sha256
}

ARCHIVE_PID=""
start_class_archive() {  # after the venv and the jars: the Spark drivers' class archive, in the background
  (.venv/bin/python -m processing.spark.class_archive | sed 's/^/[setup] /') &
  ARCHIVE_PID=$!
  trap 'pkill -P "$ARCHIVE_PID" 2>/dev/null || true' EXIT  # a failed step stops the probe too
}

finish_class_archive() {
  [ -n "$ARCHIVE_PID" ] || return 0
  if ! wait "$ARCHIVE_PID"; then log "ERROR: the Spark class archive could not be built (see above)"; exit 1; fi
  trap - EXIT
}

setup_postgres() {
  if [ -x /usr/lib/postgresql/15/bin/initdb ]; then return; fi
  need_root_for "PostgreSQL 15 server" postgresql-15
  log "installing postgresql-15 from Debian packages"
  apt_install postgresql-15
}

setup_browser() {
  if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then return; fi
  need_root_for "Chromium" "chromium chromium-driver"
  log "installing chromium + chromium-driver from Debian packages"
  apt_install chromium chromium-driver
}

setup_compose() {
  if command -v docker-compose >/dev/null; then return; fi
  need_root_for "docker-compose" docker-compose
  log "installing docker-compose from Debian packages"
  apt_install docker-compose
}

setup_docker() {  # the engine, the compose it can drive, and what `make base-image` needs
  if command -v dockerd >/dev/null && command -v docker-compose >/dev/null && command -v debootstrap >/dev/null \
      && command -v docker >/dev/null; then return; fi
  need_root_for "a Docker engine" "docker.io docker-compose debootstrap"
  log "installing docker.io, docker-compose and debootstrap from Debian packages"
  apt_install docker.io docker-compose debootstrap
}

# Pinned Go tools, built from the Go module proxy (no release binaries can be fetched here).
INFRA_GO_TOOLS=(
  "tflint github.com/terraform-linters/tflint@v0.64.0"
  "actionlint github.com/rhysd/actionlint/cmd/actionlint@v1.7.12"
  "hclfmt github.com/hashicorp/hcl/v2/cmd/hclfmt@v2.25.0"
)
STATSD_EXPORTER="statsd_exporter github.com/prometheus/statsd_exporter@v0.31.0"

go_tool() {  # go_tool NAME MODULE@VERSION: into .cache/tools/bin unless that version is there
  local name=$1 package=$2
  # The stamp names the module version: a bumped pin rebuilds, an unchanged one costs nothing.
  local stamp=".cache/tools/bin/.$name.version"
  if [ -x ".cache/tools/bin/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$package" ]; then return; fi
  command -v go >/dev/null || { log "ERROR: go (1.24 or newer) not found on PATH; it builds $name"; exit 1; }
  log "building $package into .cache/tools/bin"
  mkdir -p .cache/tools/bin
  GOBIN="$ROOT/.cache/tools/bin" go install "$package"
  echo "$package" > "$stamp"
}

setup_infra_tools() {
  local tool
  for tool in "${INFRA_GO_TOOLS[@]}"; do
    # shellcheck disable=SC2086  # "name module@version": two words on purpose
    go_tool $tool
  done
  if ! command -v shellcheck >/dev/null; then  # actionlint lints `run:` scripts with it when it is on PATH
    need_root_for "shellcheck" shellcheck
    log "installing shellcheck from Debian packages"
    apt_install shellcheck
  fi
  setup_uv
  setup_env infra-tools .venvs/infra-tools
}

command -v java >/dev/null || { log "ERROR: java (OpenJDK 17) not found on PATH"; exit 1; }
command -v mvn >/dev/null || { log "ERROR: mvn (Maven) not found on PATH"; exit 1; }
setup_monitoring() {  # Prometheus, Alertmanager, Pushgateway and exporters from Debian; statsd_exporter from Go
  if ! command -v prometheus >/dev/null || ! command -v prometheus-alertmanager >/dev/null \
      || ! command -v prometheus-pushgateway >/dev/null || ! command -v prometheus-node-exporter >/dev/null \
      || ! command -v prometheus-postgres-exporter >/dev/null; then
    local packages="prometheus prometheus-alertmanager prometheus-pushgateway prometheus-node-exporter prometheus-postgres-exporter"
    need_root_for "Prometheus and its exporters" "$packages"
    log "installing $packages from Debian packages"
    # shellcheck disable=SC2086
    apt_install $packages
  fi
  # shellcheck disable=SC2086
  go_tool $STATSD_EXPORTER
}

run_group() {
  case "$1" in
    core)
      setup_uv
      setup_jars & jars_pid=$!  # Maven and uv side by side; the archive needs both
      setup_env pipeline .venv
      wait "$jars_pid"
      start_class_archive
      setup_env airflow .venvs/airflow
      setup_env superset .venvs/superset
      setup_postgres
      ;;
    browser) setup_browser ;;
    compose) setup_compose ;;
    docker) setup_docker ;;
    infra-tools) setup_infra_tools ;;
    monitoring) setup_monitoring ;;
    *) log "usage: setup.sh [core|browser|compose|docker|infra-tools|monitoring]..."; exit 2 ;;
  esac
}

start=$(date +%s)
groups=("${@:-core}")
for group in "${groups[@]}"; do run_group "$group"; done
finish_class_archive
log "${groups[*]} ready in $(( $(date +%s) - start ))s"
