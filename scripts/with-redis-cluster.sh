#!/usr/bin/env bash
# Runs a command with two throwaway Redis Clusters of real redis-server processes on
# loopback ports (each below 55535: a node's cluster bus is its port + 10000):
#
#   main   three masters, no replicas: what most tests use;
#   spare  three masters, the first with one replica: for the tests that move slots
#          and kill a master (cluster-node-timeout 1000 ms, so a replica takes over
#          within a few seconds).
#
# SESSIONCTX_CLUSTER_SPARE=0 starts the main cluster alone (bench/compare).
#
# Exports SESSIONCTX_TEST_REDIS_CLUSTER_URI and SESSIONCTX_TEST_REDIS_SPARE_URI
# (redis+cluster://, naming two of the masters as seeds) and, for tests that
# reshard, kill and restart nodes, SESSIONCTX_TEST_REDIS_CLUSTER_CTL: a script taking
#   ports main|spare     the cluster's node ports
#   cli PORT ARGS…       redis-cli on a node
#   kill PORT            SIGKILL the node
#   start PORT           start it again (it rejoins with its nodes.conf)
#   wait main|spare      until every running node says cluster_state:ok
#   settled main|spare   until redis-cli --cluster check finds nothing wrong (all
#                        nodes agree on the slots, no slot half moved)
#
#   scripts/with-redis-cluster.sh ctest --test-dir build
set -euo pipefail

if ! command -v redis-server >/dev/null; then
  echo "with-redis-cluster: no redis-server installed (scripts/install-deps.sh)" >&2
  exit 1
fi
DIR=$(mktemp -d /tmp/sessionctx-cluster.XXXXXX)
SPARE_WANTED=${SESSIONCTX_CLUSTER_SPARE:-1}
# Seven free ports whose bus ports (+10000) are free too, none of them another's
# bus port.
read -r -a PORTS <<<"$(python3 - <<'PY'
import random, socket
def free(p):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); return True
    except OSError:
        return False
    finally:
        s.close()
out = []
while len(out) < 7:
    p = random.randint(20000, 45000)
    taken = set(out) | {q + 10000 for q in out}  # the chosen nodes' ports and bus ports
    if p not in taken and p + 10000 not in taken and free(p) and free(p + 10000):
        out.append(p)
print(" ".join(map(str, out)))
PY
)"
MAIN="${PORTS[*]:0:3}"
SPARE="${PORTS[*]:3:4}"

cat > "$DIR/ctl" <<CTL
#!/usr/bin/env bash
# Controls the test Redis Clusters (main: $MAIN; spare: $SPARE).
set -euo pipefail
cluster_ports() { case "\$1" in main) echo $MAIN ;; spare) echo $SPARE ;; *) exit 2 ;; esac; }
case "\${1:-}" in
  ports) cluster_ports "\$2" ;;
  cli) shift; port=\$1; shift; exec redis-cli -p "\$port" "\$@" ;;
  start)
    port=\$2
    mkdir -p "$DIR/\$port"
    redis-server --bind 127.0.0.1 --port "\$port" --dir "$DIR/\$port" --daemonize yes \\
      --pidfile "$DIR/\$port/redis.pid" --logfile "$DIR/\$port/redis.log" --save '' \\
      --appendonly no --cluster-enabled yes --cluster-config-file nodes.conf \\
      --cluster-node-timeout 1000 >/dev/null
    for _ in \$(seq 1 100); do
      redis-cli -p "\$port" ping 2>/dev/null | grep -q PONG && exit 0
      sleep 0.1
    done
    echo "redis \$port did not start" >&2; cat "$DIR/\$port/redis.log" >&2; exit 1 ;;
  kill)
    pidfile="$DIR/\$2/redis.pid"
    [ -e "\$pidfile" ] || exit 0
    kill -9 "\$(cat "\$pidfile")" 2>/dev/null || true
    for _ in \$(seq 1 100); do
      kill -0 "\$(cat "\$pidfile")" 2>/dev/null || { rm -f "\$pidfile"; exit 0; }
      sleep 0.1
    done ;;
  wait)
    for _ in \$(seq 1 300); do
      ok=1
      for port in \$(cluster_ports "\$2"); do
        [ -e "$DIR/\$port/redis.pid" ] || continue  # a node killed on purpose
        redis-cli -p "\$port" cluster info 2>/dev/null | grep -q 'cluster_state:ok' || ok=0
      done
      [ \$ok = 1 ] && exit 0
      sleep 0.1
    done
    echo "cluster \$2 not ok" >&2; exit 1 ;;
  settled)  # every node up and ok, agreeing on the slots, none half moved
    for _ in \$(seq 1 300); do
      port=\$(cluster_ports "\$2" | cut -d' ' -f1)
      out=\$(redis-cli --cluster check "127.0.0.1:\$port" 2>&1 || true)
      if echo "\$out" | grep -q 'All nodes agree' && ! echo "\$out" | grep -q 'ERR'; then
        exit 0
      fi
      sleep 0.1
    done
    echo "cluster \$2 not settled: \$out" >&2; exit 1 ;;
  *) echo "usage: ctl ports|cli|start|kill|wait|settled …" >&2; exit 2 ;;
esac
CTL
chmod +x "$DIR/ctl"

cleanup() {
  for port in "${PORTS[@]}"; do "$DIR/ctl" kill "$port" >/dev/null 2>&1 || true; done
  rm -rf "$DIR"
}
trap cleanup EXIT

if [ "$SPARE_WANTED" = 0 ]; then
  PORTS=("${PORTS[@]:0:3}")
  SPARE=""
fi
for port in "${PORTS[@]}"; do "$DIR/ctl" start "$port"; done
addresses() { for port in "$@"; do printf '127.0.0.1:%s ' "$port"; done; }
# shellcheck disable=SC2046
redis-cli --cluster create $(addresses $MAIN) --cluster-replicas 0 --cluster-yes >"$DIR/create.log"
"$DIR/ctl" wait main
export SESSIONCTX_TEST_REDIS_CLUSTER_URI="redis+cluster://127.0.0.1:${PORTS[0]},127.0.0.1:${PORTS[1]}"
export SESSIONCTX_TEST_REDIS_CLUSTER_CTL="$DIR/ctl"
if [ "$SPARE_WANTED" = 0 ]; then
  echo "with-redis-cluster: main on $MAIN"
  "$@"
  exit $?
fi
# shellcheck disable=SC2046
redis-cli --cluster create $(addresses ${PORTS[3]} ${PORTS[4]} ${PORTS[5]}) \
  --cluster-replicas 0 --cluster-yes >>"$DIR/create.log"
FIRST_ID=$(redis-cli -p "${PORTS[3]}" cluster myid)
redis-cli --cluster add-node "127.0.0.1:${PORTS[6]}" "127.0.0.1:${PORTS[3]}" \
  --cluster-slave --cluster-master-id "$FIRST_ID" >>"$DIR/create.log"
"$DIR/ctl" wait spare
for _ in $(seq 1 300); do  # the replica has its master's data
  redis-cli -p "${PORTS[6]}" info replication | grep -q 'master_link_status:up' && break
  sleep 0.1
done

export SESSIONCTX_TEST_REDIS_SPARE_URI="redis+cluster://127.0.0.1:${PORTS[3]},127.0.0.1:${PORTS[4]}"
echo "with-redis-cluster: main on $MAIN, spare on $SPARE (replica ${PORTS[6]})"
"$@"
