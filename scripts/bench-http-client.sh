#!/usr/bin/env bash
# What a call through the HTTP client (services/common/http_client.h) adds
# to a request. Run it through bench.sh:
#
#   scripts/bench.sh http-client
#   ROUNDS=5 DURATION=20 scripts/bench.sh http-client
#
# It needs nothing running. It starts PostgreSQL and Redis with
# scripts/stack.sh on private ports (state in build/bench-http-client/),
# the inventory service (release build) as the peer, and
# build/release/bench/http_proxy, whose GET /proxy calls the peer's
# GET /api/inventory/products/ELEC-HDPH-001 (a cached product) through the
# HTTP client and answers with what it got. wrk then measures, alternating
# the two targets for ROUNDS rounds, at CONNECTIONS connections:
#   saturated   as fast as the machine goes (closed loop): throughput, and
#               a p50 that is mostly queueing behind the other connections;
#   paced       each connection waits PACE_MS between requests
#               (scripts/bench/paced.lua), well below saturation: the p50
#               difference is the client's own cost per call.
# Both services, wrk, PostgreSQL and Redis share this machine's cores.
# Everything is on 127.0.0.1, bounded, and removed when it ends.
#
# Environment (defaults in brackets):
#   ROUNDS [3]  DURATION [10]  CONNECTIONS [64]  PACE_MS [10]  SERVICE_THREADS [1]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
PACE_MS=${PACE_MS:-10}
SERVICE_THREADS=${SERVICE_THREADS:-1}
PG_PORT=15633
REDIS_PORT=16580
AMQP_PORT=15634 # not started: the peer runs without RabbitMQ (it is optional)
WITH_RABBITMQ=0
PEER_PORT=18202
PROXY_PORT=18290
PRODUCT=/api/inventory/products/ELEC-HDPH-001
. "$ROOT/scripts/lib/bench-stack.sh"
bench_stack_init bench-http-client

command -v wrk >/dev/null || die "wrk is missing (make bench installs it)"
say "make build bench-build (log: $LOG_DIR/build.log)"
make -j"$(nproc)" build bench-build >"$LOG_DIR/build.log" 2>&1 || die "the build failed"
stack start || die "the stack did not start"

common_env=(LISTEN_ADDRESS=127.0.0.1 LOG_LEVEL=warn THREADS="$SERVICE_THREADS" GNUTLS_NO_IMPLICIT_INIT=1
  REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" AMQP_URL="amqp://guest:guest@127.0.0.1:$AMQP_PORT/")
env "${common_env[@]}" PORT=$PEER_PORT \
  DATABASE_URL="postgresql://inventory:inventory-lab-password@127.0.0.1:$PG_PORT/oms?gssencmode=disable" \
  build/release/bin/inventory >>"$LOG_DIR/inventory.log" 2>&1 &
BENCH_PIDS+=($!)
env "${common_env[@]}" PORT=$PROXY_PORT BENCH_PEER_URL="http://127.0.0.1:$PEER_PORT$PRODUCT" \
  build/release/bench/http_proxy >>"$LOG_DIR/proxy.log" 2>&1 &
BENCH_PIDS+=($!)
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$PEER_PORT$PRODUCT" >/dev/null && curl -sf "http://127.0.0.1:$PROXY_PORT/proxy" >/dev/null && break
  sleep 0.1
done
[ "$(curl -s "http://127.0.0.1:$PROXY_PORT/proxy")" = "$(curl -s "http://127.0.0.1:$PEER_PORT$PRODUCT")" ] ||
  die "the proxy does not answer what the peer does"

ms() { # wrk latency (850.00us, 1.23ms, 2.00s) in ms
  awk -v v="$1" 'BEGIN{n=v+0; if (v ~ /us$/) n/=1000; else if (v ~ /ms$/) n*=1; else if (v ~ /s$/) n*=1000; printf "%.3f", n}'
}
measure() { # target-name url mode -> "rps p50ms"
  local args=(-t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$2")
  [ "$3" = paced ] && args+=(-s scripts/bench/paced.lua -- "$PACE_MS")
  local out; out=$(wrk "${args[@]}")
  grep -q "Non-2xx\|Socket errors" <<<"$out" && die "$1 ($3): errors: $(grep 'Non-2xx\|Socket errors' <<<"$out")"
  echo "$(awk '/Requests\/sec/{printf "%.0f", $2}' <<<"$out") $(ms "$(awk '$1=="50%"{print $2}' <<<"$out")") $(ms "$(awk '$1=="99%"{print $2}' <<<"$out")")"
}

say "peer: inventory :$PEER_PORT; proxy :$PROXY_PORT; $ROUNDS rounds x ${DURATION}s x 2 modes x 2 targets, -c$CONNECTIONS"
printf '%-10s %-6s %-8s %10s %9s %9s\n' mode round target "req/s" "p50 ms" "p99 ms"
declare -A P50
for mode in saturated paced; do
  for round in $(seq "$ROUNDS"); do
    order=(direct proxy); [ $((round % 2)) -eq 0 ] && order=(proxy direct)
    for target in "${order[@]}"; do
      url=http://127.0.0.1:$PEER_PORT$PRODUCT; [ "$target" = proxy ] && url=http://127.0.0.1:$PROXY_PORT/proxy
      read -r rps p50 p99 < <(measure "$target" "$url" "$mode")
      printf '%-10s %-6s %-8s %10s %9s %9s\n' "$mode" "$round" "$target" "$rps" "$p50" "$p99"
      P50[$mode,$target]="${P50[$mode,$target]:-} $p50"
    done
  done
done
median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -n | awk '{a[NR]=$1} END{print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
for mode in saturated paced; do
  d=$(median "${P50[$mode,direct]}"); p=$(median "${P50[$mode,proxy]}")
  say "$mode: median p50 direct $d ms, through the client $p ms: +$(awk -v a="$p" -v b="$d" 'BEGIN{printf "%.3f", a - b}') ms"
done
