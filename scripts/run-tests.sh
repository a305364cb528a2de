#!/usr/bin/env bash
# The test command behind `make test`:
#   1. unit tests (cmocka), built with AddressSanitizer and UBSan; those of
#      pg.c and redis.c run against the test stack's PostgreSQL and Redis;
#   2. fuzz targets (libFuzzer, clang): each runs its regression inputs, then
#      fuzzes for FUZZ_SECONDS (default 16) from its seed corpus;
#   3. integration tests (pytest) against the sanitizer build of each service.
#
# The test stack is PostgreSQL, Redis and RabbitMQ started by scripts/stack.sh
# on their own ports and in their own folder (.test-run/), wiped before it
# starts. The unit phase starts it; `all` keeps it running through the
# integration phase, which starts it itself when run alone. Where it is goes
# to the tests in OMS_TEST_PG_PORT, OMS_TEST_REDIS_PORT, OMS_TEST_AMQP_PORT
# (and the RabbitMQ ports after it), OMS_TEST_DATABASE_URL (the superuser's
# URL of the oms database) and OMS_TEST_AMQP_URL.
#
#   scripts/run-tests.sh [unit|fuzz|integration|all] [pytest args...]
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
what=${1:-all}
[ $# -gt 0 ] && shift

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:halt_on_error=1:detect_leaks=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$ROOT/tests/support/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

unit_passed=0
unit_failed=0
run_unit() {
  echo "== unit tests (ASan + UBSan; PostgreSQL :$OMS_TEST_PG_PORT, Redis :$OMS_TEST_REDIS_PORT, RabbitMQ :$OMS_TEST_AMQP_PORT)"
  if ! start_stack; then
    unit_failed=$((unit_failed + 1))
    echo "FAILED: the test stack (the pg and redis tests fail without it)"
  fi
  for test in build/asan/tests/test_*; do
    if "$test"; then
      unit_passed=$((unit_passed + 1))
    else
      unit_failed=$((unit_failed + 1))
      echo "FAILED: $test"
    fi
  done
  echo "unit: $unit_passed passed, $unit_failed failed (test programs)"
}

# Fuzzing: targets live in services/*/fuzz/fuzz_<name>.c with, beside them,
# corpus/<name>/ (seeds, committed), regressions/<name>/ (every input that
# once failed; run as plain inputs) and an optional <name>.dict. New corpus
# entries go to build/fuzz/work/<name>/corpus, never into the committed seeds;
# the libFuzzer log and any reproducer are in build/fuzz/work/<name>/.
fuzz_passed=0
fuzz_failed=0
fuzz_fail() { # $1: target, $2: what failed, $3: log
  fuzz_failed=$((fuzz_failed + 1))
  echo "FAILED: $1: $2"
  echo "  --- from $3 (stack frames left out)"
  grep -v -e '^#[0-9]' -e '^ *#[0-9][0-9]* 0x' -e '^INFO:' -e '^NOTE:' -e 'Combine libFuzzer' -e '^ *$' \
    -e '^Running: ' -e '^Executed ' -e 'Running [0-9]* inputs' -e '^MS: ' -e '^base unit' -e '^0x' "$3" |
    tail -n 12 | sed 's/^/  /'
}
run_fuzz_target() { # $1: the target's binary
  local bin=$1 name src dir work seeds regressions dict execs artifact
  name=$(basename "$bin")
  src=$(ls services/*/fuzz/"$name".c 2>/dev/null | head -n 1)
  [ -n "$src" ] || { echo "FAILED: $name: no services/*/fuzz/$name.c"; fuzz_failed=$((fuzz_failed + 1)); return; }
  dir=$(dirname "$src")
  work=build/fuzz/work/$name
  seeds=$dir/corpus/$name
  regressions=$dir/regressions/$name
  dict=$dir/$name.dict
  mkdir -p "$work/corpus"
  rm -f "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* "$work"/slow-unit-*

  local inputs=()
  if [ -d "$regressions" ]; then
    while IFS= read -r -d '' f; do inputs+=("$f"); done < <(find "$regressions" -type f ! -name '.*' -print0 | sort -z)
  fi
  if [ ${#inputs[@]} -gt 0 ] && ! "$bin" "${inputs[@]}" >"$work/regressions.log" 2>&1; then
    local failing
    failing=$(grep '^Running: ' "$work/regressions.log" | tail -n 1 | sed 's/^Running: //')
    fuzz_fail "$name" "regression input $failing fails (re-run: $bin $failing)" "$work/regressions.log"
    return
  fi

  local args=(-max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
    -artifact_prefix="$work/")
  [ -f "$dict" ] && args+=(-dict="$dict")
  local corpora=("$work/corpus") # new inputs go to the first
  [ -d "$seeds" ] && corpora+=("$seeds")
  if ! "$bin" "${args[@]}" "${corpora[@]}" >"$work/fuzz.log" 2>&1; then
    artifact=$(ls -t "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* 2>/dev/null | head -n 1)
    fuzz_fail "$name" "found a fault; reproducer: ${artifact:-none written} (re-run: $bin $artifact; keep it: copy it into $regressions/)" "$work/fuzz.log"
    return
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/fuzz.log" | tail -n 1)
  printf '  %-22s %10s executions in %ss, %s regression inputs, corpus %s\n' "$name" "${execs:-?}" \
    "$FUZZ_SECONDS" "${#inputs[@]}" "$(find "$work/corpus" -type f | wc -l)"
  fuzz_passed=$((fuzz_passed + 1))
}
run_fuzz() {
  FUZZ_SECONDS=${FUZZ_SECONDS:-20}
  echo "== fuzz targets (libFuzzer + ASan + UBSan, ${FUZZ_SECONDS}s each)"
  mkdir -p build/fuzz
  if ! make --no-print-directory fuzz-build >build/fuzz/build.log 2>&1; then
    echo "FAILED: building the fuzz targets (needs clang and libclang-rt-14-dev); build/fuzz/build.log:"
    tail -n 30 build/fuzz/build.log
    fuzz_failed=$((fuzz_failed + 1))
    return
  fi
  for bin in build/fuzz/bin/fuzz_*; do
    [ -x "$bin" ] && run_fuzz_target "$bin"
  done
  echo "fuzz: $fuzz_passed passed, $fuzz_failed failed (targets)"
}

export OMS_TEST_ROOT=$ROOT
export OMS_TEST_STACK_DIR=${OMS_TEST_STACK_DIR:-$ROOT/.test-run}
export OMS_TEST_PG_PORT=${OMS_TEST_PG_PORT:-55432}
export OMS_TEST_REDIS_PORT=${OMS_TEST_REDIS_PORT:-56379}
export OMS_TEST_AMQP_PORT=${OMS_TEST_AMQP_PORT:-55672}
# RabbitMQ's management, metrics and distribution ports, next to AMQP's
export OMS_TEST_RABBITMQ_MGMT_PORT=${OMS_TEST_RABBITMQ_MGMT_PORT:-$((OMS_TEST_AMQP_PORT + 1))}
export OMS_TEST_RABBITMQ_PROMETHEUS_PORT=${OMS_TEST_RABBITMQ_PROMETHEUS_PORT:-$((OMS_TEST_AMQP_PORT + 2))}
export OMS_TEST_RABBITMQ_DIST_PORT=${OMS_TEST_RABBITMQ_DIST_PORT:-$((OMS_TEST_AMQP_PORT + 3))}
export OMS_TEST_AMQP_URL="amqp://guest:guest@127.0.0.1:$OMS_TEST_AMQP_PORT/"
export OMS_TEST_BIN_DIR=$ROOT/build/asan/bin
# The test stack's superuser password: the environment's or the lab default, not
# .env's (stack.sh reads .env only for what the environment lacks).
export POSTGRES_PASSWORD=${POSTGRES_PASSWORD:-postgres-lab-password}
export OMS_TEST_DATABASE_URL="postgresql://postgres:$POSTGRES_PASSWORD@127.0.0.1:$OMS_TEST_PG_PORT/oms?gssencmode=disable"

stack() {
  STACK_DIR=$OMS_TEST_STACK_DIR PG_PORT=$OMS_TEST_PG_PORT REDIS_PORT=$OMS_TEST_REDIS_PORT \
    AMQP_PORT=$OMS_TEST_AMQP_PORT RABBITMQ_MGMT_PORT=$OMS_TEST_RABBITMQ_MGMT_PORT \
    RABBITMQ_PROMETHEUS_PORT=$OMS_TEST_RABBITMQ_PROMETHEUS_PORT RABBITMQ_DIST_PORT=$OMS_TEST_RABBITMQ_DIST_PORT \
    WITH_RABBITMQ=1 WITH_SERVICES=0 WITH_GATEWAY=0 scripts/stack.sh "$@"
}

# Starts the test stack from empty folders, once per run; it is stopped
# when the script exits.
stack_started=0
start_stack() {
  [ "$stack_started" -eq 1 ] && return 0
  stack destroy >/dev/null 2>&1 || true
  trap 'stack stop >/dev/null 2>&1 || true' EXIT
  if ! stack start >/dev/null; then
    echo "could not start the test stack; logs:"
    tail -n 50 "$OMS_TEST_STACK_DIR"/logs/*.log 2>/dev/null
    return 1
  fi
  stack_started=1
}

stop_stack() {
  stack stop >/dev/null 2>&1 || true
  trap - EXIT
  stack_started=0
}

integration_status=0
run_integration() {
  echo "== integration tests (PostgreSQL :$OMS_TEST_PG_PORT, Redis :$OMS_TEST_REDIS_PORT, RabbitMQ :$OMS_TEST_AMQP_PORT)"
  if ! start_stack; then
    integration_status=1
    return
  fi
  # Debian's interpreter, where python3-pytest and python3-psycopg2 live.
  /usr/bin/python3 -m pytest -p no:cacheprovider -q services/*/tests tests/e2e tests/deploy "$@"
  integration_status=$?
  stop_stack
}

case $what in
  unit) run_unit; stop_stack ;;
  fuzz) run_fuzz ;;
  integration) run_integration "$@" ;;
  all)
    run_unit
    run_fuzz
    run_integration "$@"
    echo "== summary: unit $unit_passed passed, $unit_failed failed; fuzz $fuzz_passed passed, $fuzz_failed failed;" \
      "integration $([ "$integration_status" -eq 0 ] && echo passed || echo failed)"
    ;;
  *) echo "usage: $0 [unit|fuzz|integration|all] [pytest args]" >&2; exit 2 ;;
esac

[ "$unit_failed" -eq 0 ] && [ "$fuzz_failed" -eq 0 ] && [ "$integration_status" -eq 0 ]
