#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL server: initdb into a temp folder, start
# it as the postgres user (PostgreSQL refuses root) on a Unix socket and a free
# loopback port, export its URI as SESSIONCTX_TEST_PG_URI (and SESSIONCTX_TEST_PG_CTL
# for tests that restart it), run the command, stop the server.
#
#   scripts/with-postgres.sh ctest --test-dir build
set -euo pipefail

PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$PGBIN" ]; then
  echo "with-postgres: no PostgreSQL server installed (scripts/install-deps.sh)" >&2
  exit 1
fi
RUN_AS=()
if [ "$(id -u)" -eq 0 ]; then RUN_AS=(runuser -u postgres --); fi

DIR=$(mktemp -d /tmp/sessionctx-pg.XXXXXX)
chmod 755 "$DIR"
[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$DIR"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')

cleanup() {
  "${RUN_AS[@]}" "$PGBIN/pg_ctl" -D "$DIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT

"${RUN_AS[@]}" "$PGBIN/initdb" -D "$DIR/data" -U postgres --auth=trust >/dev/null
cat >> "$DIR/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$DIR'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
CONF
"${RUN_AS[@]}" "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w start >/dev/null

export SESSIONCTX_TEST_PG_URI="postgresql://postgres@127.0.0.1:$PORT/postgres"
export SESSIONCTX_TEST_PG_CTL="${RUN_AS[*]} $PGBIN/pg_ctl -D $DIR/data -l $DIR/server.log"
echo "with-postgres: PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT"
"$@"
