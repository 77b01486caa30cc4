#!/bin/sh
# Write PgBouncer's auth file from the environment (so no password sits in
# the image or in a config file), then run PgBouncer in the foreground.
#   PGBOUNCER_AUTH_USER, PGBOUNCER_AUTH_PASSWORD: the one role Landform uses;
#   PgBouncer logs in to PostgreSQL with the same (plain-text here, so it
#   can answer PostgreSQL's SCRAM challenge).
set -eu

: "${PGBOUNCER_AUTH_USER:?set PGBOUNCER_AUTH_USER}"
: "${PGBOUNCER_AUTH_PASSWORD:?set PGBOUNCER_AUTH_PASSWORD}"

umask 077
# Where pgbouncer.ini's auth_file points.
auth_file="${PGBOUNCER_AUTH_FILE:-/var/run/pgbouncer/userlist.txt}"
# userlist.txt quotes with "; a " inside a value is written twice.
quote() { printf '"%s"' "$(printf '%s' "$1" | sed 's/"/""/g')"; }
printf '%s %s\n' "$(quote "$PGBOUNCER_AUTH_USER")" "$(quote "$PGBOUNCER_AUTH_PASSWORD")" > "$auth_file"

exec pgbouncer "$@"
