#!/usr/bin/env bash
# Benchmarks the running services with wrk on loopback (start the system
# with `make run` first). Prints req/s, p50/p99 latency and each service's
# resident memory. Bounded: each run lasts DURATION seconds.
#
#   scripts/bench.sh [inventory] [user] [orders]
#                                          the scenarios of those services (default:
#                                          inventory and user); `orders` places orders
#                                          through the gateway (the whole saga), then
#                                          runs scripts/reconcile.sh
#   DURATION=5 CONNECTIONS=32 scripts/bench.sh
#   TARGET=http://127.0.0.1:8080 scripts/bench.sh inventory   through the gateway
#
#   scripts/bench.sh compare [<git-rev>]   A/B: inventory built from <git-rev>
#                                          (default HEAD~1) against this tree,
#                                          cached and with inventory.cache_failure;
#                                          needs nothing running (see
#                                          scripts/bench-compare.sh for the
#                                          details and its ROUNDS, DURATION, ...)
#   scripts/bench.sh http-client           what a call through the HTTP client adds
#                                          to a request (scripts/bench-http-client.sh)
#   scripts/bench.sh consume               the broker link's consumer draining a
#                                          backlog, acked (scripts/bench-consume.sh)
#   scripts/bench.sh notification          the notification service with email on
#                                          the local mail sink: drain, burst, soak and
#                                          the leak fault (scripts/bench-notification.sh)
#   scripts/bench.sh outbox                the outbox relay draining a backlog of
#                                          100,000 events with confirms; needs
#                                          nothing running (scripts/bench-outbox.sh)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

# `compare` is its own program: it starts everything it measures.
if [ "${1:-}" = compare ]; then
  shift
  exec "$ROOT/scripts/bench-compare.sh" "$@"
fi
if [ "${1:-}" = http-client ]; then
  shift
  exec "$ROOT/scripts/bench-http-client.sh" "$@"
fi
if [ "${1:-}" = outbox ]; then
  shift
  exec "$ROOT/scripts/bench-outbox.sh" "$@"
fi
if [ "${1:-}" = notification ]; then
  shift
  exec "$ROOT/scripts/bench-notification.sh" "$@"
fi
if [ "${1:-}" = consume ]; then
  shift
  exec "$ROOT/scripts/bench-consume.sh" "$@"
fi

TARGET=${TARGET:-http://127.0.0.1:${INVENTORY_PORT:-8002}}
DIRECT=http://127.0.0.1:${INVENTORY_PORT:-8002}
USER_URL=http://127.0.0.1:${USER_PORT:-8004}
GATEWAY_URL=http://127.0.0.1:${GATEWAY_PORT:-8080}
ORDER_URL=http://127.0.0.1:${ORDER_PORT:-8001}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${WRK_THREADS:-1}
ADMIN_TOKEN=${ADMIN_TOKEN:-lab-admin-token-change-me}
JWT_SECRET=${JWT_SECRET:-lab-jwt-secret-change-me-0123456789abcdef}
PID_DIR=${STACK_DIR:-$ROOT/.run}/pids
BENCH_SKUS=50
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(inventory user)

case $TARGET in http://127.0.0.1:*|http://localhost:*) ;; *) echo "bench: loopback targets only" >&2; exit 2 ;; esac
command -v wrk >/dev/null || { echo "bench: wrk is missing (make bench installs it)" >&2; exit 1; }

rss() { # service
  local pidfile=$PID_DIR/$1.pid
  [ -f "$pidfile" ] && awk '/VmRSS/{printf "%.1f MB", $2/1024}' "/proc/$(cat "$pidfile")/status" || echo "n/a"
}
ready() { # url
  curl -sf "$1/health/ready" >/dev/null || { echo "bench: $1 is not ready; run 'make run' first" >&2; exit 1; }
}
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
  awk '/^(cycles|orders):/' <<<"$out"
}

bench_inventory() {
  ready "$DIRECT"
  echo "inventory at $TARGET, wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s; idle RSS $(rss inventory)"

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
  # Reservations are internal endpoints: the cycles call them as the order
  # service does, with a service token (signature and Redis deny-list
  # checked on every request), valid for the whole run.
  local service_auth
  service_auth="Authorization: Bearer $(JWT_SECRET=$JWT_SECRET scripts/service-token.py order $((DURATION + 300)))"
  run_wrk "reserve+release, $BENCH_SKUS SKUs" "$TARGET" -s scripts/bench/reserve_release.lua -H "$service_auth" \
    -- "$BENCH_SKUS"
  run_wrk "reserve+release, 1 SKU" "$TARGET" -s scripts/bench/reserve_release.lua -H "$service_auth" -- 1

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

  echo "inventory RSS after the runs: $(rss inventory)"
}

# GET /api/users/me with a valid token (signature, expiry, Redis deny-list
# check, cached user document), then logins: each one is an argon2id hash
# on the background pool, so their rate is the hashing rate.
bench_user() {
  ready "$USER_URL"
  echo "user at $USER_URL, wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s; idle RSS $(rss user)"
  local token
  token=$(curl -sf -H 'Content-Type: application/json' -H 'X-Forwarded-For: 198.19.0.1' \
    -d '{"email":"customer001@oms.example.com","password":"LabCustomer-001"}' "$USER_URL/api/users/login" |
    sed -n 's/.*"token": *"\([^"]*\)".*/\1/p')
  [ -n "$token" ] || { echo "bench: cannot log in as customer001" >&2; exit 1; }
  run_wrk "GET /api/users/me" "$USER_URL/api/users/me" -H "Authorization: Bearer $token"
  local jobs_before; jobs_before=$(curl -s "$USER_URL/metrics" | awk '/^work_pool_job_duration_seconds_(sum|count)/{print $2}' | tr '\n' ' ')
  CONNECTIONS=8 run_wrk "POST /api/users/login (c=8)" "$USER_URL" -s scripts/bench/login.lua
  curl -s "$USER_URL/metrics" | awk -v before="$jobs_before" '
    /^work_pool_job_duration_seconds_sum/ {sum=$2} /^work_pool_job_duration_seconds_count/ {count=$2}
    END {split(before, b, " "); if (count > b[2]) printf "  argon2id: %.1f ms per hash on the pool\n", 1000 * (sum - b[1]) / (count - b[2])}'
  sleep 2 # logins still queued when wrk stopped finish hashing
  echo "user RSS after the runs: $(rss user)"
}

# Orders through the gateway: each is a login-free customer request that
# the order service turns into a product lookup, a reservation, a charge
# and a commit (four peer calls, eight transactions across three
# services, three events). First flat out (closed loop: CONNECTIONS
# clients, each sending its next order when the last one is answered),
# then paced (ORDER_PACE_MS between a client's orders) to show what an
# order costs below saturation. Then every order is reconciled.
bench_orders() {
  ready "$ORDER_URL"
  local stock_url=$DIRECT tokens=() i
  for i in $(seq 1 "$BENCH_SKUS"); do
    admin -o /dev/null -X POST "$stock_url/api/inventory/products" -d "$(printf \
      '{"sku":"BENCH-%04d","name":"Benchmark widget %d","category":"bench","price_cents":100,"stock":1000000}' "$i" "$i")" \
      || true
  done
  for i in $(seq -w 1 20); do
    tokens+=("$(curl -sf -H 'Content-Type: application/json' -H "X-Forwarded-For: 198.19.1.$((10#$i))" \
      -d "{\"email\":\"customer0$i@oms.example.com\",\"password\":\"LabCustomer-0$i\"}" "$USER_URL/api/users/login" |
      sed -n 's/.*"token": *"\([^"]*\)".*/\1/p')")
  done
  [ -n "${tokens[0]}" ] || { echo "bench: cannot log in the lab customers" >&2; exit 1; }
  local target=${ORDER_TARGET:-$GATEWAY_URL}
  echo "orders at $target, wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s; idle RSS order $(rss order), payment $(rss payment)"
  run_wrk "POST /api/orders" "$target" -s scripts/bench/place_order.lua -- "$BENCH_SKUS" 0 "${tokens[@]}"
  run_wrk "POST /api/orders, paced ${ORDER_PACE_MS:-100} ms" "$target" -s scripts/bench/place_order.lua -- \
    "$BENCH_SKUS" "${ORDER_PACE_MS:-100}" "${tokens[@]}"
  echo "RSS after the runs: order $(rss order), payment $(rss payment), inventory $(rss inventory)"
  local deadline=$((SECONDS + 60))
  until [ "$(curl -s "$ORDER_URL/metrics" | awk '/^oms_orders_in_flight /{print $2}')" = 0 ] || [ $SECONDS -ge $deadline ]; do
    sleep 0.5
  done
  PGPORT=${PG_PORT:-5432} scripts/reconcile.sh --since "10 minutes" | head -8
}

for scenario in "${scenarios[@]}"; do
  case $scenario in
    inventory) bench_inventory ;;
    user) bench_user ;;
    orders) bench_orders ;;
    *) echo "bench: unknown scenario '$scenario' (inventory, user, orders)" >&2; exit 2 ;;
  esac
done
