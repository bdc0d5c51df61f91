#!/usr/bin/env bash
# The entrypoint of the local postgres image: the official image's docker-entrypoint.sh,
# cut to what this image serves. On an empty $PGDATA it runs initdb as $POSTGRES_USER with
# $POSTGRES_PASSWORD, lets host connections in with the server's password_encryption
# (scram-sha-256), creates $POSTGRES_DB when it is not `postgres`, runs the scripts in
# /docker-entrypoint-initdb.d, and then execs the server.
#
# Unlike the official image it never starts as root: the image's user is postgres (uid
# 999), as the operator's pods run it, so there is no step down (gosu) and no chown.
# Everything it writes is under $PGDATA and the socket directory /var/run/postgresql,
# so it runs on a read-only root filesystem.
set -Eeo pipefail

# file_env VAR [DEFAULT]: VAR, or the contents of the file named by VAR_FILE (how Docker
# and Kubernetes secrets are often mounted), or DEFAULT.
file_env() {
  local var=$1 file_var="${1}_FILE" default=${2:-}
  if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
    echo >&2 "error: both $var and $file_var are set (but are exclusive)"
    exit 1
  fi
  local value=$default
  if [ -n "${!var:-}" ]; then
    value=${!var}
  elif [ -n "${!file_var:-}" ]; then
    value=$(<"${!file_var}")
  fi
  export "$var"="$value"
  unset "$file_var"
}

# psql_run [psql option...]: runs SQL from stdin on the temporary server's socket.
psql_run() {
  local runner=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
  if [ -n "$POSTGRES_DB" ]; then runner+=(--dbname "$POSTGRES_DB"); fi
  PGHOST='' PGHOSTADDR='' "${runner[@]}" "$@"
}

# init_database <server args...>: makes a new cluster in the empty $PGDATA.
init_database() {
  if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
    cat >&2 <<-'EOM'
	error: the database is uninitialized and no superuser password is given.
	       Set POSTGRES_PASSWORD (or POSTGRES_HOST_AUTH_METHOD=trust to allow every
	       connection without a password, which is not recommended).
	EOM
    exit 1
  fi
  # initdb needs its user in /etc/passwd; the official image fakes one with nss_wrapper
  # for arbitrary uids, this one runs as the uid it was built for.
  if ! getent passwd "$(id -u)" >/dev/null; then
    echo >&2 "error: uid $(id -u) has no passwd entry; run this image as uid 999 (postgres)"
    exit 1
  fi
  if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
    mkdir -p "$POSTGRES_INITDB_WALDIR"
    chmod 700 "$POSTGRES_INITDB_WALDIR"
    set -- --waldir "$POSTGRES_INITDB_WALDIR"
  else
    set --
  fi
  # The password goes through a pipe, never a file or the command line. initdb's local
  # connections stay `trust` (the socket is the container's own); host connections get
  # the line below.
  eval 'initdb --username="$POSTGRES_USER" --pwfile=<(printf "%s\n" "$POSTGRES_PASSWORD") '"$POSTGRES_INITDB_ARGS"' "$@"'
  local auth
  auth=$(postgres -C password_encryption)
  : "${POSTGRES_HOST_AUTH_METHOD:=$auth}"
  printf '\nhost all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"
}

# setup_database <server args...>: on a temporary server listening on the socket only
# (so nothing outside sees it ready before the setup is done), creates $POSTGRES_DB and
# runs the init scripts.
setup_database() {
  export PGPASSWORD=${PGPASSWORD:-$POSTGRES_PASSWORD}
  PGUSER=${PGUSER:-$POSTGRES_USER} pg_ctl -D "$PGDATA" -w start \
    -o "$(printf '%q ' "$@" -c listen_addresses='' -p "${PGPORT:-5432}")"
  local exists
  # POSTGRES_DB='' drops psql_run's --dbname; the SQL names the database through :db.
  # shellcheck disable=SC2097,SC2098
  exists=$(POSTGRES_DB='' psql_run --dbname postgres --set db="$POSTGRES_DB" --tuples-only <<-'EOSQL'
	SELECT 1 FROM pg_database WHERE datname = :'db' ;
	EOSQL
  )
  if [ -z "$exists" ]; then
    # shellcheck disable=SC2097,SC2098
    POSTGRES_DB='' psql_run --dbname postgres --set db="$POSTGRES_DB" <<-'EOSQL'
	CREATE DATABASE :"db" ;
	EOSQL
  fi
  local f
  for f in /docker-entrypoint-initdb.d/*; do
    case $f in
      *.sh)
        # Executable scripts run, others are sourced (as in the official image).
        # shellcheck disable=SC1090
        if [ -x "$f" ]; then echo "$0: running $f"; "$f"; else echo "$0: sourcing $f"; . "$f"; fi ;;
      *.sql) echo "$0: running $f"; psql_run -f "$f" ;;
      *.sql.gz) echo "$0: running $f"; gunzip -c "$f" | psql_run ;;
      *) [ -e "$f" ] && echo "$0: ignoring $f" ;;
    esac
  done
  PGUSER=${PGUSER:-postgres} pg_ctl -D "$PGDATA" -m fast -w stop
  unset PGPASSWORD
}

# Flags alone are the server's flags.
if [ "${1:0:1}" = - ]; then set -- postgres "$@"; fi

# Set up only when starting the server itself (not `postgres --help` or `-C setting`).
if [ "$1" = postgres ] && ! printf '%s\n' "$@" | grep -qE '^(-C|--describe-config|-V|--version|--help|-\?)$'; then
  file_env POSTGRES_PASSWORD
  file_env POSTGRES_USER postgres
  file_env POSTGRES_DB "$POSTGRES_USER"
  file_env POSTGRES_INITDB_ARGS
  : "${POSTGRES_HOST_AUTH_METHOD:=}"
  : "${PGDATA:?PGDATA must name the data directory}"
  mkdir -p "$PGDATA"
  chmod 00700 "$PGDATA" || :
  if [ -s "$PGDATA/PG_VERSION" ]; then
    echo "PostgreSQL Database directory appears to contain a database; Skipping initialization"
  else
    shift
    init_database
    setup_database "$@"
    set -- postgres "$@"
    echo "PostgreSQL init process complete; ready for start up."
  fi
fi

exec "$@"
