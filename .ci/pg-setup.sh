#!/usr/bin/env bash
# Prepare a local PostgreSQL server for ticketbridge's PostgreSQL tests.
#
# For a fresh Debian 12 machine, run as root. Idempotent: every step checks before it acts, so
# running it again (e.g. after a reboot stopped the cluster) only starts what is not running.
# The last line of output is the `export TICKETBRIDGE_TEST_POSTGRES_URL=...` to eval or copy.
#
# Override with env: TB_PG_ROLE, TB_PG_PASSWORD, TB_PG_DATABASE, TB_PG_CLUSTER (default "main").
set -euo pipefail

ROLE="${TB_PG_ROLE:-ticketbridge}"
PASSWORD="${TB_PG_PASSWORD:-ticketbridge}"
DATABASE="${TB_PG_DATABASE:-ticketbridge_test}"
CLUSTER="${TB_PG_CLUSTER:-main}"

log() { echo "pg-setup: $*" >&2; }

if [[ "$(id -u)" -ne 0 ]]; then
  log "must run as root (it installs packages and manages the cluster)"
  exit 1
fi

installed_versions() {
  # Server binaries, not just the client: /usr/lib/postgresql/<v>/bin/postgres.
  local d
  for d in /usr/lib/postgresql/*/bin/postgres; do
    [[ -x "$d" ]] && basename "$(dirname "$(dirname "$d")")"
  done | sort -V
}

if [[ -z "$(installed_versions)" ]] || ! command -v pg_ctlcluster >/dev/null; then
  log "installing postgresql"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends postgresql
else
  log "postgresql already installed: $(installed_versions | tr '\n' ' ')"
fi

VERSION="$(installed_versions | tail -n 1)"
if [[ -z "$VERSION" ]]; then
  log "no PostgreSQL server binaries found after install"
  exit 1
fi

# pg_lsclusters -h columns: version cluster port status owner datadir logfile
cluster_field() {
  pg_lsclusters -h | awk -v v="$VERSION" -v c="$CLUSTER" -v f="$1" '$1 == v && $2 == c { print $f }'
}

if [[ -z "$(cluster_field 2)" ]]; then
  log "creating cluster $VERSION/$CLUSTER"
  pg_createcluster "$VERSION" "$CLUSTER"
fi

# "online" or "online,recovery" when running; "down" otherwise.
if [[ "$(cluster_field 4)" != online* ]]; then
  log "starting cluster $VERSION/$CLUSTER"
  pg_ctlcluster "$VERSION" "$CLUSTER" start
fi

PORT="$(cluster_field 3)"
for _ in $(seq 1 120); do
  if pg_isready -q -h 127.0.0.1 -p "$PORT"; then
    break
  fi
  sleep 0.5
done
if ! pg_isready -q -h 127.0.0.1 -p "$PORT"; then
  log "server on port $PORT did not become ready; see $(cluster_field 7)"
  exit 1
fi

psql_admin() {
  # Peer authentication over the local socket: the postgres OS user is the superuser.
  runuser -u postgres -- psql -X -q -p "$PORT" -v ON_ERROR_STOP=1 "$@"
}

# The role and database names are fixed identifiers from this script's environment; psql's
# :'var' / :"var" interpolation quotes them so odd values cannot break the SQL.
psql_admin -v role="$ROLE" -v password="$PASSWORD" <<'SQL'
SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') AS create_role \gset
\if :create_role
  CREATE ROLE :"role" LOGIN PASSWORD :'password';
\else
  ALTER ROLE :"role" LOGIN PASSWORD :'password';
\endif
SQL

psql_admin -v role="$ROLE" -v db="$DATABASE" <<'SQL'
SELECT NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') AS create_db \gset
\if :create_db
  CREATE DATABASE :"db" OWNER :"role";
\else
  ALTER DATABASE :"db" OWNER TO :"role";
\endif
SQL

log "PostgreSQL $VERSION ready on 127.0.0.1:$PORT, database $DATABASE owned by $ROLE"
echo "export TICKETBRIDGE_TEST_POSTGRES_URL=postgresql+psycopg://${ROLE}:${PASSWORD}@127.0.0.1:${PORT}/${DATABASE}"
