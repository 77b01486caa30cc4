#!/bin/bash
# Runs once, when the primary's data directory is first created (the
# official image runs /docker-entrypoint-initdb.d/*.sh as postgres, with a
# server listening on its Unix socket only).
#   - the application role, owner of the landform database, with the
#     statement timeout PgBouncer cannot pass on (see pgbouncer.ini);
#   - the replication role and a physical slot for the replica, so the
#     primary keeps the WAL the replica has not streamed yet;
#   - max_connections for PgBouncer's pools (100 + 10 in reserve per
#     database and role) with room for migrations and operators, through
#     ALTER SYSTEM so that pg_basebackup carries it to the replica (a hot
#     standby refuses to start with fewer connections than its primary);
#   - pg_hba: replication connections with a password ("all" in pg_hba
#     does not cover replication).
set -euo pipefail

: "${APP_DB_PASSWORD:?set APP_DB_PASSWORD}"
: "${REPLICATION_PASSWORD:?set REPLICATION_PASSWORD}"

psql --set=ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  --set=app_password="$APP_DB_PASSWORD" \
  --set=replication_password="$REPLICATION_PASSWORD" <<'SQL'
CREATE ROLE landform LOGIN PASSWORD :'app_password';
ALTER DATABASE landform OWNER TO landform;
-- LANDFORM_DATABASE_STATEMENT_TIMEOUT's default (5 s).
ALTER ROLE landform SET statement_timeout = '5s';
CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD :'replication_password';
SELECT pg_create_physical_replication_slot('replica1');
ALTER SYSTEM SET max_connections = 250;
SQL

echo "host replication replicator all scram-sha-256" >> "$PGDATA/pg_hba.conf"
