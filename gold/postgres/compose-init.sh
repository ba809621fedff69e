#!/usr/bin/env bash
# Compose deployment only (gold/docker-compose.yaml): applies the SAME init SQL as local mode
# (gold/postgres/init/*.sql, mounted at /tripclick/init) with the same psql variables, then creates
# Superset's metadata database. The postgres image runs it once, on an empty data directory; it is
# re-runnable after an upgrade:  docker-compose ... exec postgres /docker-entrypoint-initdb.d/10-tripclick.sh
set -euo pipefail

INIT_DIR=${TRIPCLICK_INIT_DIR:-/tripclick/init}
psql_vars=(
  -v ON_ERROR_STOP=1
  -v loader="${GOLD_LOADER:?GOLD_LOADER is required}"
  -v loader_password="${GOLD_LOADER_PASSWORD:?GOLD_LOADER_PASSWORD is required}"
  -v reader="${GOLD_READER:?GOLD_READER is required}"
  -v reader_password="${GOLD_READER_PASSWORD:?GOLD_READER_PASSWORD is required}"
  -v reader_statement_timeout="${GOLD_READER_STATEMENT_TIMEOUT_SECONDS:?GOLD_READER_STATEMENT_TIMEOUT_SECONDS is required}s"
  -v gold_db="${GOLD_DB:?GOLD_DB is required}"
  -v airflow_user="${AIRFLOW_USER:?AIRFLOW_USER is required}"
  -v airflow_password="${AIRFLOW_PASSWORD:?AIRFLOW_PASSWORD is required}"
  -v airflow_db="${AIRFLOW_DB:?AIRFLOW_DB is required}"
  -v superset_user="${SUPERSET_USER:?SUPERSET_USER is required}"
  -v superset_password="${SUPERSET_PASSWORD:?SUPERSET_PASSWORD is required}"
  -v superset_db="${SUPERSET_DB:?SUPERSET_DB is required}"
)
as_superuser() { psql --no-psqlrc --quiet --username "${POSTGRES_USER:-postgres}" "${psql_vars[@]}" "$@"; }

applied=0
for sql in "$INIT_DIR"/*.sql; do
  # Same rule as local mode: 00_* in the `postgres` database, everything else in the Gold database.
  case "$(basename "$sql")" in 00_*) db=postgres ;; *) db=$GOLD_DB ;; esac
  echo "[tripclick-init] $(basename "$sql") -> $db"
  as_superuser --dbname "$db" --file "$sql"
  applied=$((applied + 1))
done
[ "$applied" -gt 0 ] || { echo "[tripclick-init] ERROR: no *.sql in $INIT_DIR" >&2; exit 1; }

# Superset keeps its metadata here in a compose deployment (local mode uses SQLite under RUN_DIR).
as_superuser --dbname postgres <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'superset_user')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'superset_user') \gexec
ALTER ROLE :"superset_user" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'superset_password';
SELECT format('CREATE DATABASE %I OWNER %I', :'superset_db', :'superset_user')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'superset_db') \gexec
-- As 00_roles_and_databases.sql does for Airflow's: open to its owner only, not to PUBLIC.
REVOKE ALL ON DATABASE :"superset_db" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"superset_db" TO :"superset_user";
SQL
echo "[tripclick-init] applied $applied init files + Superset metadata database"
