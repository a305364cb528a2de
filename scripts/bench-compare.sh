#!/usr/bin/env bash
# Compares the throughput of two builds of the inventory service, to back a
# claim like "this refactor costs nothing measurable". Run it through
# bench.sh:
#
#   scripts/bench.sh compare [<git-rev>]       default: HEAD~1
#   ROUNDS=5 DURATION=20 scripts/bench.sh compare main
#   ROUNDS=1 DURATION=3 scripts/bench.sh compare HEAD~1     a quick try
#
# The two sides:
#   A  <git-rev>, built with `make build` in a temporary git worktree
#      (build/compare/<commit>/, removed once its binary is copied out);
#   B  this tree as it is, uncommitted changes included (`make build` here,
#      which does nothing when build/release is up to date).
# Comparing a commit with itself (an A/A run) shows how much two identical
# builds differ on this machine: the noise floor any claim must clear.
#
# It needs nothing running. It starts its own PostgreSQL and Redis with
# scripts/stack.sh on private ports (state in build/compare/stack), runs
# both binaries at once on two more ports, each with its own Redis database
# (so neither reads the other's cache or fault flags), seeds 50 products
# and measures GET /api/inventory/products/BENCH-0001..0050 (the SKUs in
# turn, scripts/bench/get_product.lua) in two modes:
#   cached          the normal path: product documents come from Redis;
#   cache_failure   the fault flag inventory.cache_failure=1: every read
#                   goes to PostgreSQL.
# Each mode alternates the builds, A B, B A, A B ..., for ROUNDS rounds, so
# that a slow moment of the machine hits both and neither always runs on
# the machine the other has just warmed; it prints every round, then per
# build the median req/s, the spread between rounds, the median p50/p99
# and the share of reads that took the expected cache path, and B's
# difference from A in %. Last, each build's resident memory (VmRSS) when
# idle after start-up and after the load, and its peak (VmHWM).
#
# Everything is on 127.0.0.1 and bounded in time; everything it started
# is stopped and build/compare/ deleted when it ends, Ctrl-C included.
#
# Environment (defaults in brackets):
#   ROUNDS [3]  DURATION [10] seconds per run  CONNECTIONS [64]
#   WRK_THREADS [1]  WARMUP [2] seconds per build and mode, not counted
#   SERVICE_THREADS [number of cores]  the services' THREADS
#   COMPARE_PG_PORT [15433]  COMPARE_REDIS_PORT [16380]
#   COMPARE_PORT_A [18002]  COMPARE_PORT_B [18003]  BUILD_TIMEOUT [1200] s
#   COMPARE_LOG_LEVEL [warn]  the services' LOG_LEVEL. At info every request
#                   writes a log line: the cost is then measured too, but at
#                   tens of thousands of requests a second the logs grow by
#                   about 1 GB per default run.
# Both builds also get whatever .env sets for the services (as `make run`
# does), except the addresses, ports, threads and log level above.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

# Passwords and service settings from .env, as scripts/stack.sh reads them
# (the stack it starts must accept the passwords we connect with).
. "$ROOT/scripts/lib/dotenv.sh"
dotenv_load "$ROOT/.env"

# --- settings -----------------------------------------------------------------

case ${1:-} in -h|--help) sed -n '2,48p' "$0"; exit 0 ;; esac
[ $# -le 1 ] || { echo "usage: scripts/bench.sh compare [<git-rev>]" >&2; exit 2; }
REV=${1:-HEAD~1}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
WRK_THREADS=${WRK_THREADS:-1}
WARMUP=${WARMUP:-2}
SERVICE_THREADS=${SERVICE_THREADS:-$(nproc)}
PG_PORT=${COMPARE_PG_PORT:-15433}
REDIS_PORT=${COMPARE_REDIS_PORT:-16380}
BUILD_TIMEOUT=${BUILD_TIMEOUT:-1200}
ADMIN_TOKEN=${ADMIN_TOKEN:-lab-admin-token-change-me}
LOG_LEVEL=${COMPARE_LOG_LEVEL:-warn}
BENCH_SKUS=50
FAULT=inventory.cache_failure

COMPARE_DIR=$ROOT/build/compare
STACK_DIR=$COMPARE_DIR/stack
LOG_DIR=$COMPARE_DIR/logs
RESULTS=$COMPARE_DIR/results   # one line per measured run, read by the summary at the end

# A and B side by side: associative arrays indexed by the build's letter.
declare -A PORT=([A]=${COMPARE_PORT_A:-18002} [B]=${COMPARE_PORT_B:-18003})
declare -A REDIS_DB=([A]=1 [B]=2)
declare -A URL=([A]=http://127.0.0.1:${PORT[A]} [B]=http://127.0.0.1:${PORT[B]})
declare -A BIN=([A]=$COMPARE_DIR/bin-A/inventory [B]=$COMPARE_DIR/bin-B/inventory)
declare -A NAME PID IDLE_RSS
BUILDS=(A B)

say() { printf '%s\n' "compare: $*"; }
die() { printf '%s\n' "compare: $*" >&2; exit 1; }

# Small whole numbers only: these end up in loops and in wrk's arguments.
number_in() { # name value min max
  [[ $2 =~ ^[0-9]+$ ]] && [ "$2" -ge "$3" ] && [ "$2" -le "$4" ] || die "$1 must be a number from $3 to $4 (got '$2')"
}
number_in ROUNDS "$ROUNDS" 1 20
number_in DURATION "$DURATION" 1 300
number_in CONNECTIONS "$CONNECTIONS" 1 1000
number_in WRK_THREADS "$WRK_THREADS" 1 64
number_in WARMUP "$WARMUP" 0 60
number_in SERVICE_THREADS "$SERVICE_THREADS" 1 64
for p in "$PG_PORT" "$REDIS_PORT" "${PORT[A]}" "${PORT[B]}"; do number_in port "$p" 1024 65535; done

for tool in git make curl wrk redis-server psql timeout; do
  command -v "$tool" >/dev/null || die "$tool is missing (make deps; wrk: scripts/install-deps.sh bench)"
done

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# A port already open means another program (or another compare) uses it:
# refuse rather than measure, or stop, something that is not ours.
for p in "$PG_PORT" "$REDIS_PORT" "${PORT[A]}" "${PORT[B]}"; do
  ! port_open "$p" || die "port $p is in use (another compare running? set COMPARE_*_PORT)"
done

SHA=$(git rev-parse --verify --quiet "$REV^{commit}") || die "'$REV' is not a commit"
SHORT=$(git rev-parse --short "$SHA")
HEAD_SHORT=$(git rev-parse --short HEAD)
NAME[A]="$SHORT ($REV)"
if [ -n "$(git status --porcelain -- services Makefile)" ]; then
  NAME[B]="$HEAD_SHORT+changes (this tree)"
else
  NAME[B]="$HEAD_SHORT (this tree)"
fi

# scripts/stack.sh, limited to PostgreSQL and Redis on our private ports and
# folder. AMQP_PORT too: `stop` asks a broker on that port whether it is ours.
stack() {
  STACK_DIR=$STACK_DIR PG_PORT=$PG_PORT REDIS_PORT=$REDIS_PORT AMQP_PORT=$((PG_PORT + 1)) \
    WITH_SERVICES=0 WITH_GATEWAY=0 WITH_RABBITMQ=0 scripts/stack.sh "$@" >>"$LOG_DIR/stack.log" 2>&1
}

# --- cleanup: runs on every exit, Ctrl-C and kill included ----------------------

WORKTREE=""   # the temporary worktree while it exists
WRK_PID=""    # the load generator while it runs

stop_process() { # pid: SIGTERM, up to 15 s to finish, then SIGKILL
  kill -TERM "$1" 2>/dev/null || return 0
  for _ in $(seq 150); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  set +e
  [ -z "$WRK_PID" ] || stop_process "$WRK_PID"
  for b in "${BUILDS[@]}"; do [ -z "${PID[$b]:-}" ] || stop_process "${PID[$b]}"; done
  # On failure, the end of each log says why (they are deleted below);
  # not after Ctrl-C (130) or kill (143).
  if [ "$status" -ne 0 ] && [ "$status" -ne 130 ] && [ "$status" -ne 143 ] && [ -d "$LOG_DIR" ]; then
    for f in "$LOG_DIR"/*.log; do
      [ -s "$f" ] && { echo "--- last lines of $(basename "$f")"; tail -n 8 "$f"; }
    done >&2
  fi
  [ -d "$STACK_DIR" ] && stack destroy    # stops PostgreSQL and Redis, deletes their data
  [ -z "$WORKTREE" ] || git worktree remove --force "$WORKTREE" >/dev/null 2>&1
  rm -rf "$COMPARE_DIR"
  git worktree prune
  exit "$status"
}
trap cleanup EXIT
# The EXIT trap runs on `exit`; these turn Ctrl-C and kill into one.
trap 'exit 130' INT
trap 'exit 143' TERM

# A folder left by a run that was killed outright (kill -9): its stack may
# still run on other ports. Stop it and start afresh.
if [ -d "$COMPARE_DIR" ]; then
  mkdir -p "$LOG_DIR"
  [ -d "$STACK_DIR" ] && stack destroy
  for wt in "$COMPARE_DIR"/*/.git; do [ -e "$wt" ] && git worktree remove --force "$(dirname "$wt")"; done
  rm -rf "$COMPARE_DIR"
  git worktree prune
fi
mkdir -p "$LOG_DIR" "$(dirname "${BIN[A]}")" "$(dirname "${BIN[B]}")"
: >"$RESULTS"

runs=$((2 * ROUNDS * 2))
say "A = ${NAME[A]}, B = ${NAME[B]}"
# Nothing the inventory binary is built from differs (fuzz targets and
# tests are not part of it): then any difference measured is noise.
git diff --quiet "$SHA" -- Makefile services/common services/inventory \
    ':(exclude,glob)services/*/fuzz/**' ':(exclude,glob)services/*/tests/**' &&
  say "A and B build inventory from the same sources: an A/A run, which shows this machine's noise"
say "$runs runs of ${DURATION}s (2 modes x $ROUNDS rounds x 2 builds) + warm-ups: about $((runs * (DURATION + 1) + 4 * WARMUP + 20)) s after the builds"

# --- 1. the two builds ------------------------------------------------------------

say "building B (this tree): make build (log: build/compare/logs/build-B.log)"
timeout --foreground "$BUILD_TIMEOUT" make -j"$(nproc)" build >"$LOG_DIR/build-B.log" 2>&1 || die "make build failed for B"
cp build/release/bin/inventory "${BIN[B]}"

# A: a detached worktree of the commit; its make uses its own build/ folder.
WORKTREE=$COMPARE_DIR/$SHORT
say "building A ($SHORT) in build/compare/$SHORT (log: build/compare/logs/build-A.log)"
git worktree add --detach "$WORKTREE" "$SHA" >"$LOG_DIR/build-A.log" 2>&1 || die "git worktree add failed"
timeout --foreground "$BUILD_TIMEOUT" make -C "$WORKTREE" -j"$(nproc)" build >>"$LOG_DIR/build-A.log" 2>&1 ||
  die "make build failed for A ($SHORT)"
cp "$WORKTREE/build/release/bin/inventory" "${BIN[A]}"
git worktree remove --force "$WORKTREE"
WORKTREE=""

# The database schema is this tree's: say so when A's migrations differ.
git diff --quiet "$SHA" -- services/inventory/migrations ||
  say "warning: services/inventory/migrations differ between A and this tree; both run on this tree's schema"

# --- 2. PostgreSQL, Redis and the two services ----------------------------------

say "starting PostgreSQL on 127.0.0.1:$PG_PORT and Redis on :$REDIS_PORT (build/compare/stack)"
stack start || die "the stack did not start"

# How scripts/stack.sh starts inventory, with our ports, threads and a Redis
# database per build. PG* variables would replace DATABASE_URL's defaults.
# setsid: in a session of its own, so that Ctrl-C in the terminal does not
# reach it (the service stops on SIGINT) before cleanup() stops it; with
# `&` it is not a group leader, so setsid does not fork and $! is its pid.
start_inventory() { # build letter
  local b=$1
  setsid env -u PGHOST -u PGUSER -u PGDATABASE \
    PORT="${PORT[$b]}" LISTEN_ADDRESS=127.0.0.1 THREADS="$SERVICE_THREADS" GNUTLS_NO_IMPLICIT_INIT=1 \
    ADMIN_TOKEN="$ADMIN_TOKEN" LOG_LEVEL="$LOG_LEVEL" \
    DATABASE_URL="postgresql://inventory:${INVENTORY_DB_PASSWORD:-inventory-lab-password}@127.0.0.1:$PG_PORT/oms?gssencmode=disable" \
    REDIS_URL="redis://127.0.0.1:$REDIS_PORT/${REDIS_DB[$b]}" \
    "${BIN[$b]}" >>"$LOG_DIR/inventory-$b.log" 2>&1 &
  PID[$b]=$!
}

wait_ready() { # build letter: /health/ready answers 200 (PostgreSQL and Redis reachable)
  local deadline=$((SECONDS + 20))
  until curl -sf --max-time 2 -o /dev/null "${URL[$1]}/health/ready"; do
    kill -0 "${PID[$1]}" 2>/dev/null || die "inventory $1 exited during start-up"
    [ $SECONDS -lt $deadline ] || die "inventory $1 was not ready within 20 s"
    sleep 0.2
  done
}

status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; } # pid field
mb() { awk -v kb="$1" 'BEGIN {printf "%.1f MB", kb / 1024}'; }

metrics() { curl -sf --max-time 5 "${URL[$1]}/metrics"; }

for b in "${BUILDS[@]}"; do start_inventory "$b"; done
for b in "${BUILDS[@]}"; do wait_ready "$b"; done
sleep 1   # let the first timer rounds (faults, stock metrics) run
for b in "${BUILDS[@]}"; do
  IDLE_RSS[$b]=$(status_kb "${PID[$b]}" VmRSS)
  revision=$(metrics "$b" | sed -n 's/^oms_build_info{.*revision="\([^"]*\)".*/\1/p') || true
  say "inventory $b on ${URL[$b]}, pid ${PID[$b]}, THREADS=$SERVICE_THREADS, LOG_LEVEL=$LOG_LEVEL, reports revision ${revision:-?}, idle RSS $(mb "${IDLE_RSS[$b]}")"
done

# Both builds share the database: products created through B exist for A.
say "seeding $BENCH_SKUS products (BENCH-0001..$(printf '%04d' $BENCH_SKUS))"
for i in $(seq 1 "$BENCH_SKUS"); do
  code=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' -X POST "${URL[B]}/api/inventory/products" \
    -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json' -d "$(printf \
    '{"sku":"BENCH-%04d","name":"Benchmark widget %d","category":"bench","price_cents":100,"stock":1000000}' "$i" "$i")")
  [ "$code" = 201 ] || die "creating BENCH-$(printf '%04d' "$i") answered HTTP $code"
done
for b in "${BUILDS[@]}"; do
  curl -sf --max-time 5 -o /dev/null "${URL[$b]}/api/inventory/products/BENCH-0001" || die "inventory $b cannot read BENCH-0001"
done

# --- 3. measuring ---------------------------------------------------------------

# The fault flag, set or cleared on one build, then waited for: every worker
# re-reads the flags about once a second and counts it in
# oms_fault_snapshots_total{worker}; once each worker's count has gone up
# twice since the write, every worker has applied it.
snapshots() { metrics "$1" | sed -n 's/^oms_fault_snapshots_total{worker="\([0-9]*\)"} \([0-9.]*\)$/\1 \2/p'; }
set_fault() { # build value (1 or null)
  local before now deadline=$((SECONDS + 10))
  before=$(snapshots "$1") || die "cannot read ${URL[$1]}/metrics"
  curl -sf --max-time 5 -o /dev/null -X PUT "${URL[$1]}/admin/faults" -H "Authorization: Bearer $ADMIN_TOKEN" \
    -H 'Content-Type: application/json' -d "{\"$FAULT\": $2}" || die "PUT /admin/faults failed on $1"
  if [ -z "$before" ]; then # a build older than that metric: wait out two refreshes
    sleep 2.5
    return
  fi
  while :; do
    now=$(snapshots "$1") || die "cannot read ${URL[$1]}/metrics"
    awk 'NR == FNR {before[$1] = $2; next} {now[$1] = $2}
         END {for (w in before) if (!(w in now) || now[w] < before[w] + 2) exit 1}' \
      <(echo "$before") <(echo "$now") && return
    [ $SECONDS -lt $deadline ] || die "inventory $1 did not apply $FAULT=$2 within 10 s"
    sleep 0.2
  done
}

# Product cache lookups so far: "hit miss error bypass".
cache_counts() {
  metrics "$1" | awk '/^oms_inventory_cache_requests_total\{/ {
      r = $1; sub(/.*result="/, "", r); sub(/".*/, "", r); n[r] = $NF }
    END {printf "%d %d %d %d\n", n["hit"], n["miss"], n["error"], n["bypass"]}'
}

# wrk runs in the background and the script waits for it with `wait`: on
# Ctrl-C, wrk stops and exits 0 as if it had finished, and bash then takes
# the Ctrl-C as handled by wrk and carries on; `wait`, by contrast, returns
# at once on a trapped signal and the trap runs. (timeout gives wrk a
# process group of its own, so Ctrl-C reaches only this script.)
WRK_OUT=$COMPARE_DIR/wrk.out
wrk_get() { # build seconds: wrk's full report in $WRK_OUT
  timeout $(($2 + 30)) wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$2s" --latency \
    -s scripts/bench/get_product.lua "${URL[$1]}" -- "$BENCH_SKUS" >"$WRK_OUT" 2>&1 &
  WRK_PID=$!
  local status=0
  wait "$WRK_PID" || status=$?
  WRK_PID=""
  return "$status"
}

# One measured run; appends to $RESULTS:
#   mode build round req/s p50_ms p99_ms errors hit miss error bypass
measure() { # mode build round
  local before after out line
  before=$(cache_counts "$2") || die "inventory $2 does not answer ${URL[$2]}/metrics"
  wrk_get "$2" "$DURATION" || die "wrk failed against $2: $(tail -n 3 "$WRK_OUT")"
  out=$(<"$WRK_OUT")
  after=$(cache_counts "$2") || die "inventory $2 stopped answering during the run"
  line=$(awk -v mode="$1" -v build="$2" -v round="$3" -v before="$before" -v after="$after" '
    # wrk prints latencies as 850.00us, 1.23ms, 1.05s or 1.00m
    function ms(v) {
      if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0
      if (v ~ /m$/) return v * 60000; if (v ~ /s$/) return v * 1000; return v + 0 }
    /Requests\/sec/ {rps = $2}
    $1 == "50%" {p50 = ms($2)}
    $1 == "99%" {p99 = ms($2)}
    /Non-2xx/ {errors += $NF}
    /Socket errors/ {gsub(/,/, ""); errors += $4 + $6 + $8 + $10}
    END {
      split(before, b, " "); split(after, a, " ")
      printf "%s %s %s %.2f %.3f %.3f %d %d %d %d %d\n", mode, build, round, rps, p50, p99, errors,
        a[1] - b[1], a[2] - b[2], a[3] - b[3], a[4] - b[4]
    }' <<<"$out")
  echo "$line" >>"$RESULTS"
  # shellcheck disable=SC2086
  set -- $line
  printf '  round %s  %s %-26s %10s req/s   p50 %7.2f ms   p99 %7.2f ms   %s\n' "$3" "$2" "${NAME[$2]}" "$4" "$5" "$6" \
    "$([ "$7" = 0 ] && echo "no errors" || echo "$7 ERRORS")"
}

for mode in cached cache_failure; do
  echo
  if [ "$mode" = cache_failure ]; then
    say "mode cache_failure: $FAULT=1 on both builds, every read from PostgreSQL"
    for b in "${BUILDS[@]}"; do set_fault "$b" 1; done
  else
    say "mode cached: product documents from Redis"
  fi
  # Fills the cache (or the connection pools and PostgreSQL's buffers);
  # not counted.
  for b in "${BUILDS[@]}"; do
    if [ "$WARMUP" -gt 0 ]; then wrk_get "$b" "$WARMUP" || die "wrk failed against $b: $(tail -n 3 "$WRK_OUT")"; fi
  done
  for round in $(seq 1 "$ROUNDS"); do
    # A B, then B A, ...: whichever build goes second in a round has the
    # machine warmer (caches, PostgreSQL's buffers), so the order alternates
    order=("${BUILDS[@]}")
    [ $((round % 2)) -eq 0 ] && order=("${BUILDS[1]}" "${BUILDS[0]}")
    for b in "${order[@]}"; do measure "$mode" "$b" "$round"; done
  done
  if [ "$mode" = cache_failure ]; then
    for b in "${BUILDS[@]}"; do set_fault "$b" null; done
    say "$FAULT cleared"
  fi
done

sleep 1   # let requests still in flight finish
declare -A LOAD_RSS PEAK_RSS
for b in "${BUILDS[@]}"; do
  LOAD_RSS[$b]=$(status_kb "${PID[$b]}" VmRSS)
  PEAK_RSS[$b]=$(status_kb "${PID[$b]}" VmHWM)
done

# --- 4. the summary ---------------------------------------------------------------

# "median min max" of one column of $RESULTS, for one mode and build.
column_stats() { # mode build column
  awk -v m="$1" -v b="$2" -v c="$3" '$1 == m && $2 == b {print $c}' "$RESULTS" | sort -g |
    awk '{v[NR] = $1} END {med = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; print med, v[1], v[NR]}'
}

# Share of the runs' cache lookups that took the mode's path (hit when
# cached, bypass under the fault): a check that the mode is what it says.
cache_share() { # mode build
  awk -v m="$1" -v b="$2" '$1 == m && $2 == b {hit += $8; all += $8 + $9 + $10 + $11; bypass += $11}
    END {if (all == 0) {print "n/a"; exit}
         if (m == "cached") printf "hit %.0f%%\n", 100 * hit / all; else printf "bypass %.0f%%\n", 100 * bypass / all}' "$RESULTS"
}

echo
echo "== inventory: GET /api/inventory/products/{sku}, $BENCH_SKUS SKUs in turn; wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s, $ROUNDS round(s) A B / B A; THREADS=$SERVICE_THREADS, $(nproc) cores"
echo "   A = ${NAME[A]}    B = ${NAME[B]}"
for mode in cached cache_failure; do
  echo
  printf '%-14s %-8s %12s %8s %11s %11s   %s\n' "$mode" build "req/s (med)" spread "p50 (med)" "p99 (med)" cache
  declare -A MED=()
  spread_max=0
  for b in "${BUILDS[@]}"; do
    read -r rps rps_min rps_max < <(column_stats "$mode" "$b" 4)
    read -r p50 _ _ < <(column_stats "$mode" "$b" 5)
    read -r p99 _ _ < <(column_stats "$mode" "$b" 6)
    errors=$(awk -v m="$mode" -v b="$b" '$1 == m && $2 == b {n += $7} END {print n + 0}' "$RESULTS")
    # spread: (slowest - fastest round) / median, how far rounds of one build disagree
    spread=$(awk -v med="$rps" -v lo="$rps_min" -v hi="$rps_max" 'BEGIN {printf "%.1f", (med > 0 ? 100 * (hi - lo) / med : 0)}')
    spread_max=$(awk -v a="$spread_max" -v b="$spread" 'BEGIN {print (b > a ? b : a)}')
    MED[$b]=$rps
    printf '%-14s %-8s %12.1f %7s%% %8.2f ms %8.2f ms   %s%s\n' "" "$b" "$rps" "$spread" "$p50" "$p99" \
      "$(cache_share "$mode" "$b")" "$([ "$errors" = 0 ] || echo ", $errors errors")"
  done
  awk -v a="${MED[A]}" -v b="${MED[B]}" -v spread="$spread_max" -v rounds="$ROUNDS" 'BEGIN {
    diff = a > 0 ? 100 * (b - a) / a : 0
    printf "%-14s B vs A: %+.1f%% req/s", "", diff
    if (rounds < 2) print " (one round: no spread to judge it against)"
    else if ((diff < 0 ? -diff : diff) <= spread) printf " (within the %.1f%% spread between rounds)\n", spread
    else printf " (larger than the %.1f%% spread between rounds)\n", spread }'
done
echo
echo "memory (VmRSS)   idle after start-up   after the load   peak (VmHWM)"
for b in "${BUILDS[@]}"; do
  printf '  %s %-12s %19s %16s %14s\n' "$b" "${NAME[$b]%% *}" "$(mb "${IDLE_RSS[$b]}")" "$(mb "${LOAD_RSS[$b]}")" "$(mb "${PEAK_RSS[$b]}")"
done
