#!/bin/bash
# The streaming replica: on first start, clone the primary with
# pg_basebackup (-R writes primary_conninfo and standby.signal, -S streams
# through the slot primary-init.sh made), then run PostgreSQL as a hot
# standby. Later starts find the data directory and just run.
set -euo pipefail

: "${PRIMARY_HOST:?set PRIMARY_HOST}"
: "${REPLICATION_PASSWORD:?set REPLICATION_PASSWORD}"
PRIMARY_PORT="${PRIMARY_PORT:-5432}"
PGDATA="${PGDATA:-/var/lib/postgresql/data}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  until pg_isready --quiet --host="$PRIMARY_HOST" --port="$PRIMARY_PORT"; do
    echo "waiting for $PRIMARY_HOST"
    sleep 1
  done
  PGPASSWORD="$REPLICATION_PASSWORD" pg_basebackup \
    --host="$PRIMARY_HOST" --port="$PRIMARY_PORT" --username=replicator \
    --pgdata="$PGDATA" --slot=replica1 --wal-method=stream \
    --write-recovery-conf --checkpoint=fast --no-password
  chmod 0700 "$PGDATA"
fi

# Arguments, if any, go to postgres (e.g. -c settings).
exec postgres -c hot_standby=on -c hot_standby_feedback=on "$@"
