#!/usr/bin/env bash
# HTTP benchmark: sessionctx-server (memory: and rocksdb:) beside nginx serving the
# exact bytes of the same answers, on this machine, over loopback, with wrk keep-alive.
# Targets are measured alternately, ROUNDS times each, and the medians compared, so a
# noisy neighbour hits every target alike. Prints requests/s, the ratio to nginx, and
# p99 latency at 256 connections.
#
#   bench/http.sh                       # defaults below
#   DURATION=10 ROUNDS=5 bench/http.sh
#
# PATCH /me/context is measured too: wrk with one connection per thread (CONNECTIONS
# threads), each thread patching its own session with the version it holds (+1 on 204,
# the current one from a 409's message), so nothing conflicts by construction; nginx
# has no write to compare with, so PATCH gets no ratio.
#
# POSTGRES_URI=postgresql://… adds a postgresql: server (schema http_bench).
# REDIS_URI=redis://host:port adds a redis: server (keys under http_bench_PID:).
# REDIS_CLUSTER_URI=redis+cluster://host:port,… adds one on a Redis Cluster (the same).
# ADAPTERS="build/consumer/poco_server …" adds framework adapters from examples/ (built
# there by scripts/test.sh release, against the installed package)
# (each started as `ADAPTER PORT SECRET_FILE`, a memory store inside), named by file,
# and prints each one's GET rate beside sessionctx-server's on memory:.
# RESULTS_FILE=FILE also writes the results as tab-separated lines:
#   target, request, requests/s, ratio to nginx (or -), p99 at 256 connections (or -).
#
# The cost of one request, which does not depend on the CPU the way a rate does: the
# system calls, futex calls (cross-thread wake-ups) and context switches of the
# server's (or nginx's) threads per request, counted by `perf stat` on its threads over
# the middle of one run (GET at CONNECTIONS connections, and PATCH). Without perf
# (linux-perf) they read "-".
#
# Installs wrk, nginx-light and linux-perf from Debian when missing. Access logs are off on both
# sides (nginx: access_log off; ours: --access-log off) unless LOG=text.
set -euo pipefail
cd "$(dirname "$0")/.."

THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
LOG=${LOG:-off}
BUILD=${BUILD:-build/release}

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v perf >/dev/null || need+=(linux-perf)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

if [ ! -x "$BUILD/bin/sessionctx-server" ]; then
  scripts/install-deps.sh
  cmake --preset release >/dev/null
  cmake --build --preset release --target sessionctx-server sessionctl
fi
BIN=$BUILD/bin

WORK=$(mktemp -d)
chmod 755 "$WORK"  # nginx workers started by root run as nobody
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

echo "bench-secret" >"$WORK/secret"
MANAGE=$("$BIN/sessionctl" token --secret-file "$WORK/secret" --tenant acme --scope session_context.context_manage --ttl 86400)
SHOPPER=$("$BIN/sessionctl" token --secret-file "$WORK/secret" --tenant acme --session s1 --ttl 86400)
CONTEXT=/session-context/acme/me/context

# serving NAME PORT: waits until the target just started answers /healthz, then
# creates session s1 on it; its port is left in $PORT.
serving() {
  local name=$1 port=$2
  until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; do
    kill -0 "${PID_OF[$name]}" 2>/dev/null || { cat "$WORK/$name.log" >&2; exit 1; }
    sleep 0.1
  done
  curl -sf -X PUT "http://127.0.0.1:$port/session-context/acme/context/s1?upsert=true" \
    -H "Authorization: Bearer $MANAGE" -H 'Content-Type: application/json' \
    -d '{"siteCode":"main","currency":"EUR","targetLocation":"DE","language":"de-DE","cartId":"c-1001","context":{"giftWrap":true,"segment":"returning","recentlyViewed":["p-1","p-2","p-3"]}}'
  PORT=$port
}

# start_server NAME STORE: starts sessionctx-server (serving, above).
start_server() {
  local name=$1 store=$2 port
  port=$(free_port)
  "$BIN/sessionctx-server" --listen "127.0.0.1:$port" --store "$store" \
    --jwt-secret-file "$WORK/secret" --access-log "$LOG" --purge-interval 0 \
    >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  PID_OF[$name]=$!
  serving "$name" "$port"
}

# start_adapter NAME BINARY: starts a framework adapter (examples/*_server) the same
# way.
declare -A PORT_OF
start_adapter() {
  local name=$1 bin=$2 port
  port=$(free_port)
  "$bin" "$port" "$WORK/secret" >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  PID_OF[$name]=$!
  serving "$name" "$port"
}

declare -A PID_OF
start_server memory memory:
MEM_PORT=$PORT
start_server rocksdb "rocksdb:$WORK/db"
ROCKS_PORT=$PORT
TARGETS=(nginx memory rocksdb)
if [ -n "${POSTGRES_URI:-}" ]; then
  sep='?'
  case $POSTGRES_URI in *\?*) sep='&' ;; esac
  start_server postgres "$POSTGRES_URI${sep}schema=http_bench_$$"
  PG_PORT=$PORT
  TARGETS+=(postgres)
fi
if [ -n "${REDIS_URI:-}" ]; then
  sep='?'
  case $REDIS_URI in *\?*) sep='&' ;; esac
  start_server redis "$REDIS_URI${sep}prefix=http_bench_$$:"
  REDIS_HTTP_PORT=$PORT
  TARGETS+=(redis)
fi
if [ -n "${REDIS_CLUSTER_URI:-}" ]; then
  sep='?'
  case $REDIS_CLUSTER_URI in *\?*) sep='&' ;; esac
  start_server rcluster "$REDIS_CLUSTER_URI${sep}prefix=http_bench_$$:"
  RCLUSTER_HTTP_PORT=$PORT
  TARGETS+=(rcluster)
fi

ADAPTER_NAMES=()
for bin in ${ADAPTERS:-}; do
  name=$(basename "$bin")
  start_adapter "$name" "$bin"
  PORT_OF[$name]=$PORT
  TARGETS+=("$name")
  ADAPTER_NAMES+=("$name")
done

# nginx serves the same bytes: the server's own answers, saved to files.
mkdir -p "$WORK/www/session-context/acme/me"
curl -sf "http://127.0.0.1:$MEM_PORT$CONTEXT" -H "Authorization: Bearer $SHOPPER" \
  >"$WORK/www/session-context/acme/me/context"
curl -sf "http://127.0.0.1:$MEM_PORT/healthz" >"$WORK/www/healthz"
NGINX_PORT=$(free_port)
cat >"$WORK/nginx.conf" <<EOF
worker_processes $(nproc);
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000000;  # no reconnects during a run, as with our server
  open_file_cache max=64 inactive=600s;  # the file's descriptor kept: no open/close
  open_file_cache_valid 600s;            # per request
  default_type application/json;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $WORK/www;
  }
}
EOF
"$NGINX" -c "$WORK/nginx.conf" -p "$WORK" &
PIDS+=($!)
PID_OF[nginx]=$!
until curl -sf "http://127.0.0.1:$NGINX_PORT/healthz" >/dev/null; do
  kill -0 "${PID_OF[nginx]}" 2>/dev/null || { cat "$WORK/nginx-error.log" >&2; exit 1; }
  sleep 0.1
done

# rps URL [wrk args…]: requests/s of one wrk run.
rps() {
  local url=$1
  shift
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" "$@" "$url" |
    awk '/^Requests\/sec:/ {print $2}'
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# pids_of TARGET: the target's processes, comma-separated (nginx: master and workers).
pids_of() {
  local pid=${PID_OF[$1]} kids
  kids=$(pgrep -P "$pid" | paste -sd, - || true)
  echo "$pid${kids:+,$kids}"
}

# cost TARGET URL [wrk args…]: "SYSCALLS FUTEX SWITCHES" per request of the target's
# threads during one wrk run, counted by perf over its middle (a quarter of the run
# left out at each end, whole seconds; the whole run when it is shorter than 4 s), the
# requests of that window being wrk's rate times its length; "- - -" without perf.
cost() {
  local t=$1 url=$2 lead=$((DURATION / 4)) out rate
  local window=$((DURATION - 2 * lead))
  shift 2
  if ! command -v perf >/dev/null; then
    echo "- - -"
    return
  fi
  ( sleep "$lead"; perf stat -x, -o "$WORK/perf.csv" -p "$(pids_of "$t")"       -e raw_syscalls:sys_enter,syscalls:sys_enter_futex,context-switches -- sleep "$window"       >/dev/null 2>&1 || : >"$WORK/perf.csv" ) &
  local perf=$!
  out=$(wrk "$@" -d"${DURATION}s" "$url")
  wait "$perf"
  rate=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
  awk -F, -v n="$(echo "$rate * $window" | bc -l)" '
    $3 == "raw_syscalls:sys_enter" {s = $1} $3 == "syscalls:sys_enter_futex" {f = $1}
    $3 == "context-switches" {c = $1}
    END { if (s == "" || n == 0) print "- - -"; else printf "%.2f %.3f %.3f\n", s / n, f / n, c / n }' \
    "$WORK/perf.csv"
}

declare -A RESULTS
port_of() {
  case $1 in
    nginx) echo "$NGINX_PORT" ;; memory) echo "$MEM_PORT" ;; rocksdb) echo "$ROCKS_PORT" ;;
    postgres) echo "$PG_PORT" ;; redis) echo "$REDIS_HTTP_PORT" ;;
    rcluster) echo "$RCLUSTER_HTTP_PORT" ;;
    *) echo "${PORT_OF[$1]}" ;;
  esac
}
: >"$WORK/results.tsv"

echo "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, $ROUNDS rounds alternating, medians; access logs: $LOG" >&2
for path in /healthz "$CONTEXT"; do
  for round in $(seq "$ROUNDS"); do
    for t in "${TARGETS[@]}"; do
      r=$(rps "http://127.0.0.1:$(port_of "$t")$path" -H "Authorization: Bearer $SHOPPER")
      RESULTS["$t $path"]+="$r "
      echo "  round $round $t GET $path: $r req/s" >&2
    done
  done
done

printf '\n%-8s %-40s %12s %8s\n' target request req/s ratio
for path in /healthz "$CONTEXT"; do
  base=$(echo "${RESULTS["nginx $path"]}" | tr ' ' '\n' | grep . | median)
  for t in "${TARGETS[@]}"; do
    m=$(echo "${RESULTS["$t $path"]}" | tr ' ' '\n' | grep . | median)
    ratio=$(echo "$m / $base" | bc -l)
    printf '%-8s %-40s %12.0f %8.2f\n' "$t" "GET $path" "$m" "$ratio"
    printf '%s\tGET %s\t%.0f\t%.2f\t-\n' "$t" "$path" "$m" "$ratio" >>"$WORK/results.tsv"
  done
done

if [ ${#ADAPTER_NAMES[@]} -gt 0 ]; then
  printf '\n%-16s %-32s %12s %14s\n' adapter request req/s "vs server"
  server=$(echo "${RESULTS["memory $CONTEXT"]}" | tr ' ' '\n' | grep . | median)
  for t in "${ADAPTER_NAMES[@]}"; do
    m=$(echo "${RESULTS["$t $CONTEXT"]}" | tr ' ' '\n' | grep . | median)
    printf '%-16s %-32s %12.0f %14.2f\n' "$t" "GET $CONTEXT" "$m" "$(echo "$m / $server" | bc -l)"
  done
fi

# PATCH: sessions p1…pN, one per wrk thread, each with its own shopper token.
cat >"$WORK/patch.lua" <<'LUA'
local tokens = {}
for line in io.lines(os.getenv("PATCH_TOKENS")) do tokens[#tokens + 1] = line end
local next_thread = 0
function setup(thread)
  next_thread = next_thread + 1
  thread:set("token", tokens[next_thread])
end
local version = 1
local flip = 0
function request()
  flip = 1 - flip
  local currency = flip == 1 and "CHF" or "EUR"
  return wrk.format("PATCH", nil, {["Authorization"] = "Bearer " .. token,
                                   ["Content-Type"] = "application/json"},
                    '{"currency":"' .. currency .. '","metadata":{"version":' .. version .. '}}')
end
function response(status, headers, body)
  if status == 204 then
    version = version + 1
  elseif status == 409 then
    version = tonumber(string.match(body, "current version is (%d+)")) or version
  end
end
LUA
# Each round patches fresh sessions (r<round>p<n>), so every thread's first version is
# 1 and every answer must be 204.
for round in $(seq "$ROUNDS"); do
  : >"$WORK/patch-tokens-$round"
  for i in $(seq "$CONNECTIONS"); do
    "$BIN/sessionctl" token --secret-file "$WORK/secret" --tenant acme --session "r${round}p$i" \
      --ttl 86400 >>"$WORK/patch-tokens-$round"
  done
done
for t in "${TARGETS[@]}"; do
  [ "$t" = nginx ] && continue
  for round in $(seq "$ROUNDS"); do
    for i in $(seq "$CONNECTIONS"); do
      curl -sf -X PUT "http://127.0.0.1:$(port_of "$t")/session-context/acme/context/r${round}p$i?upsert=true" \
        -H "Authorization: Bearer $MANAGE" -H 'Content-Type: application/json' \
        -d '{"siteCode":"main","currency":"EUR","context":{"giftWrap":true}}'
    done
  done
done
for round in $(seq "$ROUNDS"); do
  for t in "${TARGETS[@]}"; do
    [ "$t" = nginx ] && continue
    out=$(PATCH_TOKENS=$WORK/patch-tokens-$round wrk -t"$CONNECTIONS" -c"$CONNECTIONS" \
            -d"${DURATION}s" -s "$WORK/patch.lua" "http://127.0.0.1:$(port_of "$t")$CONTEXT")
    r=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
    if echo "$out" | grep -q 'Non-2xx'; then
      echo "$out" >&2
      echo "PATCH on $t: some answers were not 204" >&2
      exit 1
    fi
    RESULTS["$t PATCH"]+="$r "
    echo "  round $round $t PATCH $CONTEXT: $r req/s" >&2
  done
done
for t in "${TARGETS[@]}"; do
  [ "$t" = nginx ] && continue
  m=$(echo "${RESULTS["$t PATCH"]}" | tr ' ' '\n' | grep . | median)
  printf '%-8s %-40s %12.0f %8s\n' "$t" "PATCH $CONTEXT" "$m" -
  printf '%s\tPATCH %s\t%.0f\t-\t-\n' "$t" "$CONTEXT" "$m" >>"$WORK/results.tsv"
done

# What one request costs the server: system calls, futex calls, context switches.
printf '\n%-8s %-40s %10s %10s %10s\n' target "request (per request)" syscalls futex switches
for t in "${TARGETS[@]}"; do
  read -r sc fx cs < <(cost "$t" "http://127.0.0.1:$(port_of "$t")$CONTEXT" -t"$THREADS" \
                         -c"$CONNECTIONS" -H "Authorization: Bearer $SHOPPER")
  printf '%-8s %-40s %10s %10s %10s\n' "$t" "GET $CONTEXT" "$sc" "$fx" "$cs"
  printf '%s\tGET %s (cost)\t-\t-\t-\t%s\t%s\t%s\n' "$t" "$CONTEXT" "$sc" "$fx" "$cs" >>"$WORK/results.tsv"
done
for t in "${TARGETS[@]}"; do
  [ "$t" = nginx ] && continue
  read -r sc fx cs < <(PATCH_TOKENS=$WORK/patch-tokens-1 cost "$t" \
                         "http://127.0.0.1:$(port_of "$t")$CONTEXT" -t"$CONNECTIONS" \
                         -c"$CONNECTIONS" -s "$WORK/patch.lua")
  printf '%-8s %-40s %10s %10s %10s\n' "$t" "PATCH $CONTEXT" "$sc" "$fx" "$cs"
  printf '%s\tPATCH %s (cost)\t-\t-\t-\t%s\t%s\t%s\n' "$t" "$CONTEXT" "$sc" "$fx" "$cs" >>"$WORK/results.tsv"
done

# Latency under 256 keep-alive connections.
printf '\n%-8s %-40s %12s\n' target "request (256 connections)" "p99"
for t in "${TARGETS[@]}"; do
  p99=$(wrk -t"$THREADS" -c256 -d"${DURATION}s" --latency -H "Authorization: Bearer $SHOPPER" \
          "http://127.0.0.1:$(port_of "$t")$CONTEXT" | awk '$1 == "99%" {print $2}')
  printf '%-8s %-40s %12s\n' "$t" "GET $CONTEXT" "$p99"
  printf '%s\tGET %s (256 connections)\t-\t-\t%s\n' "$t" "$CONTEXT" "$p99" >>"$WORK/results.tsv"
done
if [ -n "${RESULTS_FILE:-}" ]; then cp "$WORK/results.tsv" "$RESULTS_FILE"; fi
