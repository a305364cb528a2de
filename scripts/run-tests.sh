#!/usr/bin/env bash
# The test command behind `make test`:
#   1. unit tests (cmocka), built with AddressSanitizer and UBSan;
#   2. integration tests (pytest) against the sanitizer build of each service,
#      with PostgreSQL and Redis started by scripts/stack.sh on their own
#      ports and in their own folder (.test-run/), wiped before each run.
#
#   scripts/run-tests.sh [unit|integration|all] [pytest args...]
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
  echo "== unit tests (ASan + UBSan)"
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

export OMS_TEST_ROOT=$ROOT
export OMS_TEST_STACK_DIR=${OMS_TEST_STACK_DIR:-$ROOT/.test-run}
export OMS_TEST_PG_PORT=${OMS_TEST_PG_PORT:-55432}
export OMS_TEST_REDIS_PORT=${OMS_TEST_REDIS_PORT:-56379}
export OMS_TEST_BIN_DIR=$ROOT/build/asan/bin

stack() {
  STACK_DIR=$OMS_TEST_STACK_DIR PG_PORT=$OMS_TEST_PG_PORT REDIS_PORT=$OMS_TEST_REDIS_PORT \
    WITH_RABBITMQ=0 WITH_SERVICES=0 WITH_GATEWAY=0 scripts/stack.sh "$@"
}

integration_status=0
run_integration() {
  echo "== integration tests (PostgreSQL :$OMS_TEST_PG_PORT, Redis :$OMS_TEST_REDIS_PORT)"
  stack destroy >/dev/null 2>&1 || true
  trap 'stack stop >/dev/null 2>&1 || true' EXIT
  if ! stack start >/dev/null; then
    echo "could not start the test stack; logs:"
    tail -n 50 "$OMS_TEST_STACK_DIR"/logs/*.log 2>/dev/null
    integration_status=1
    return
  fi
  # Debian's interpreter, where python3-pytest and python3-psycopg2 live.
  /usr/bin/python3 -m pytest -p no:cacheprovider -q services/*/tests tests/e2e tests/deploy "$@"
  integration_status=$?
  stack stop >/dev/null 2>&1 || true
  trap - EXIT
}

case $what in
  unit) run_unit ;;
  integration) run_integration "$@" ;;
  all) run_unit; run_integration "$@" ;;
  *) echo "usage: $0 [unit|integration|all] [pytest args]" >&2; exit 2 ;;
esac

[ "$unit_failed" -eq 0 ] && [ "$integration_status" -eq 0 ]
