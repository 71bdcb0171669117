#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL server: initdb into a temp folder, start
# it as the postgres user (PostgreSQL refuses root) on a Unix socket and a free
# loopback port, export its URI as SESSIONCTX_TEST_PG_URI (and SESSIONCTX_TEST_PG_CTL
# for tests that restart it), run the command, stop the server. The server also speaks
# TLS, with a certificate for localhost and 127.0.0.1 from a CA made here with openssl
# (SESSIONCTX_TEST_PG_CA; SESSIONCTX_TEST_PG_OTHER_CA is a CA that did not sign it), for
# the tests of `sslmode=verify-full`; PGSSLMODE=disable keeps every other connection in
# plain TCP, as before.
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
# The TLS material: a CA, the server's certificate from it, and an unrelated CA.
( cd "$DIR"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=sessionctx-test-ca \
    -keyout ca.key -out ca.crt 2>/dev/null
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other-ca \
    -keyout other-ca.key -out other-ca.crt 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key \
    -out server.csr 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >server.ext
  openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
    -extfile server.ext -out server.crt 2>/dev/null
  chmod 600 server.key
  [ "$(id -u)" -eq 0 ] && chown postgres:postgres server.key server.crt
  chmod 644 ca.crt other-ca.crt )
cat >> "$DIR/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$DIR'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
ssl = on
ssl_cert_file = '$DIR/server.crt'
ssl_key_file = '$DIR/server.key'
CONF
"${RUN_AS[@]}" "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w start >/dev/null

export SESSIONCTX_TEST_PG_URI="postgresql://postgres@127.0.0.1:$PORT/postgres"
export SESSIONCTX_TEST_PG_CA="$DIR/ca.crt"
export SESSIONCTX_TEST_PG_OTHER_CA="$DIR/other-ca.crt"
export PGSSLMODE=disable
export SESSIONCTX_TEST_PG_CTL="${RUN_AS[*]} $PGBIN/pg_ctl -D $DIR/data -l $DIR/server.log"
echo "with-postgres: PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT"
"$@"
