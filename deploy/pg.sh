#!/usr/bin/env bash
# A private PostgreSQL 15 for the demo. PostgreSQL refuses to run as root, so initdb and
# pg_ctl run as Debian's `postgres` user on a data directory under a mktemp -d in /tmp (a
# repository under /root is not reachable by that user), with a short private socket
# directory, a free port and trust authentication for local socket connections only.
#   deploy/pg.sh start STATE   start (or reuse) the cluster recorded in STATE; prints conninfo
#   deploy/pg.sh stop STATE    stop it and remove its directory
set -euo pipefail
PGBIN=/usr/lib/postgresql/15/bin
cmd=${1:-}
state=${2:-}
[ -n "$state" ] || { echo "usage: deploy/pg.sh start|stop STATEFILE" >&2; exit 2; }

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

conninfo() { echo "host=$SOCK port=$PORT dbname=reintegration user=postgres"; }

case "$cmd" in
start)
    if [ -f "$state" ]; then
        # shellcheck disable=SC1090
        . "$state"
        if [ -d "$BASE/data" ]; then
            as_pg "$PGBIN/pg_ctl" -D "$BASE/data" status >/dev/null 2>&1 ||
                as_pg "$PGBIN/pg_ctl" -D "$BASE/data" -l "$BASE/postgres.log" -w -t 60 start >/dev/null
            conninfo
            exit 0
        fi
    fi
    BASE=$(mktemp -d /tmp/reint-demo-pg-XXXXXX)
    SOCK=$(mktemp -d /tmp/pgsXXXXXX)
    PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$BASE" "$SOCK"; fi
    as_pg "$PGBIN/initdb" -D "$BASE/data" -U postgres -A trust -E UTF8 >/dev/null
    cat >>"$BASE/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$SOCK'
port = $PORT
CONF
    echo "local all all trust" >"$BASE/data/pg_hba.conf"
    as_pg "$PGBIN/pg_ctl" -D "$BASE/data" -l "$BASE/postgres.log" -w -t 60 start >/dev/null
    psql -X -q -h "$SOCK" -p "$PORT" -U postgres -d postgres -c "CREATE DATABASE reintegration"
    printf 'BASE=%s\nSOCK=%s\nPORT=%s\n' "$BASE" "$SOCK" "$PORT" >"$state"
    conninfo
    ;;
stop)
    [ -f "$state" ] || exit 0
    # shellcheck disable=SC1090
    . "$state"
    as_pg "$PGBIN/pg_ctl" -D "$BASE/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$BASE" "$SOCK" "$state"
    ;;
*)
    echo "usage: deploy/pg.sh start|stop STATEFILE" >&2
    exit 2
    ;;
esac
