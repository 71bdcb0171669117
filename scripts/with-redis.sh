#!/usr/bin/env bash
# Runs a command with a throwaway Redis server: redis-server on a free loopback port,
# its data in a temp folder, every write appended and fsynced before it is
# acknowledged (appendfsync always). Exports its URI as SESSIONCTX_TEST_REDIS_URI and,
# for tests that stop, kill and restart it, SESSIONCTX_TEST_REDIS_CTL: a script taking
# stop, kill (SIGKILL), start or config (prints the redis-cli command line).
#
#   scripts/with-redis.sh ctest --test-dir build
set -euo pipefail

if ! command -v redis-server >/dev/null; then
  echo "with-redis: no redis-server installed (scripts/install-deps.sh)" >&2
  exit 1
fi
DIR=$(mktemp -d /tmp/sessionctx-redis.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')

cat > "$DIR/ctl" <<CTL
#!/usr/bin/env bash
# Controls the test Redis on port $PORT: stop | kill | start | cli ARGS…
set -euo pipefail
case "\${1:-}" in
  start)
    redis-server --bind 127.0.0.1 --port $PORT --dir "$DIR" --daemonize yes \\
      --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log" --save '' \\
      --appendonly yes --appendfsync always >/dev/null
    for _ in \$(seq 1 100); do
      redis-cli -p $PORT ping 2>/dev/null | grep -q PONG && exit 0
      sleep 0.1
    done
    echo "redis did not start" >&2; cat "$DIR/redis.log" >&2; exit 1 ;;
  stop)
    redis-cli -p $PORT shutdown >/dev/null 2>&1 || true
    for _ in \$(seq 1 100); do
      [ -e "$DIR/redis.pid" ] && kill -0 "\$(cat "$DIR/redis.pid")" 2>/dev/null || exit 0
      sleep 0.1
    done ;;
  kill)
    kill -9 "\$(cat "$DIR/redis.pid")" 2>/dev/null || true
    for _ in \$(seq 1 100); do
      kill -0 "\$(cat "$DIR/redis.pid")" 2>/dev/null || { rm -f "$DIR/redis.pid"; exit 0; }
      sleep 0.1
    done ;;
  cli)
    shift
    exec redis-cli -p $PORT "\$@" ;;
  *) echo "usage: ctl stop|kill|start|cli ARGS…" >&2; exit 2 ;;
esac
CTL
chmod +x "$DIR/ctl"

cleanup() {
  "$DIR/ctl" kill >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT

"$DIR/ctl" start
export SESSIONCTX_TEST_REDIS_URI="redis://127.0.0.1:$PORT"
export SESSIONCTX_TEST_REDIS_CTL="$DIR/ctl"
echo "with-redis: Redis $(redis-server --version | awk '{print $3}' | sed 's/v=//') on 127.0.0.1:$PORT"
"$@"
