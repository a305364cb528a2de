#!/usr/bin/env bash
# Benchmarks the running inventory service with wrk on loopback (start the
# system with `make run` first). Prints req/s, p50/p99 latency and the
# service's resident memory. Bounded: each run lasts DURATION seconds.
#
#   scripts/bench.sh                       all scenarios against :8002
#   DURATION=5 CONNECTIONS=32 scripts/bench.sh
#   TARGET=http://127.0.0.1:8080 scripts/bench.sh   through the gateway
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

TARGET=${TARGET:-http://127.0.0.1:${INVENTORY_PORT:-8002}}
DIRECT=http://127.0.0.1:${INVENTORY_PORT:-8002}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${WRK_THREADS:-1}
ADMIN_TOKEN=${ADMIN_TOKEN:-lab-admin-token-change-me}
PID_FILE=${STACK_DIR:-$ROOT/.run}/pids/inventory.pid
BENCH_SKUS=50

case $TARGET in http://127.0.0.1:*|http://localhost:*) ;; *) echo "bench: loopback targets only" >&2; exit 2 ;; esac
command -v wrk >/dev/null || { echo "bench: wrk is missing (make bench installs it)" >&2; exit 1; }
curl -sf "$DIRECT/health/ready" >/dev/null || { echo "bench: $DIRECT is not ready; run 'make run' first" >&2; exit 1; }

rss() { [ -f "$PID_FILE" ] && awk '/VmRSS/{printf "%.1f MB", $2/1024}' "/proc/$(cat "$PID_FILE")/status" || echo "n/a"; }
admin() { curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json' "$@"; }

# wrk's summary reduced to one line: req/s, p50, p99, errors
run_wrk() { # name url [wrk args...]
  local name=$1 url=$2; shift 2
  local out; out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$url" "$@")
  local rps p50 p99 errors
  rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
  p50=$(awk '$1=="50%"{print $2}' <<<"$out")
  p99=$(awk '$1=="99%"{print $2}' <<<"$out")
  errors=$(awk '/Non-2xx|Socket errors/{print}' <<<"$out" | tr '\n' ' ')
  printf '%-28s %10s req/s   p50 %-9s p99 %-9s %s\n' "$name" "$rps" "$p50" "$p99" "${errors:-no errors}"
  awk '/^cycles:/' <<<"$out"
}

echo "inventory at $TARGET, wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s; idle RSS $(rss)"

# Products with stock enough for any run, for the reservation cycle
# (a 409 means they exist from an earlier run).
for i in $(seq 1 "$BENCH_SKUS"); do
  admin -o /dev/null -X POST "$DIRECT/api/inventory/products" -d "$(printf \
    '{"sku":"BENCH-%04d","name":"Benchmark widget %d","category":"bench","price_cents":100,"stock":1000000}' "$i" "$i")" \
    || true
done
curl -s -o /dev/null "$TARGET/api/inventory/products/ELEC-HDPH-001"   # warm the cache

run_wrk "GET product (cached)" "$TARGET/api/inventory/products/ELEC-HDPH-001"
run_wrk "GET product list" "$TARGET/api/inventory/products?limit=20"
run_wrk "reserve+release, $BENCH_SKUS SKUs" "$TARGET" -s scripts/bench/reserve_release.lua -- "$BENCH_SKUS"
run_wrk "reserve+release, 1 SKU" "$TARGET" -s scripts/bench/reserve_release.lua -- 1

# The loop never blocks: hold one connection in a 2-second query (the slow
# database fault) and measure cached reads at the same time.
curl -s -o /dev/null "$TARGET/api/inventory/products/ELEC-HDPH-001"   # cached for the whole run
admin -o /dev/null -X PUT "$DIRECT/admin/faults" -d '{"inventory.slow_db_ms":2000}'
sleep 1.2
( for _ in $(seq "$DURATION"); do curl -s -o /dev/null "$DIRECT/api/inventory/products?limit=3&offset=7"; done ) &
slow=$!
run_wrk "GET product during 2s query" "$TARGET/api/inventory/products/ELEC-HDPH-001"
admin -o /dev/null -X PUT "$DIRECT/admin/faults" -d '{"inventory.slow_db_ms":null}'
kill "$slow" 2>/dev/null || true
wait "$slow" 2>/dev/null || true

echo "RSS after the runs: $(rss)"
