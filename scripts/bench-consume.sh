#!/usr/bin/env bash
# How fast the broker link's consumer drains a backlog, every delivery
# acked (services/common/bench/consume.c). Run it through bench.sh:
#
#   scripts/bench.sh consume
#   EVENTS=20000 PREFETCHES="50 200 1000" scripts/bench.sh consume
#
# It needs nothing running: it starts its own RabbitMQ with scripts/stack.sh
# on a private port (state in build/bench-consume/), and per prefetch limit
# runs the benchmark, which publishes EVENTS messages to a durable queue
# (confirmed) and then drains it with a fresh link, and reports both rates,
# the CPU seconds the benchmark used in each phase and RabbitMQ's in both.
# Everything is on 127.0.0.1, bounded, and removed when it ends.
#
# Environment (defaults in brackets):
#   EVENTS [100000]  PREFETCHES [200]  BODY_BYTES [300]  TIMEOUT [300] seconds per run
#   BENCH_AMQP_PORT [25692] (and the three after it)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

EVENTS=${EVENTS:-100000}
PREFETCHES=${PREFETCHES:-200}
BODY_BYTES=${BODY_BYTES:-300}
TIMEOUT=${TIMEOUT:-300}
PG_PORT=15543
REDIS_PORT=16490
AMQP_PORT=${BENCH_AMQP_PORT:-25692}
WITH_RABBITMQ=1
. "$ROOT/scripts/lib/bench-stack.sh"
bench_stack_init bench-consume

say "make bench-build (log: $LOG_DIR/build.log)"
make -j"$(nproc)" bench-build >"$LOG_DIR/build.log" 2>&1 || die "make bench-build failed"
say "starting RabbitMQ :$AMQP_PORT"
stack start-rabbitmq || die "RabbitMQ did not start"


for prefetch in $PREFETCHES; do
  mq0=$(cpu_seconds "$(beam_pid)")
  BENCH_AMQP_URL="amqp://guest:guest@127.0.0.1:$AMQP_PORT/" EVENTS=$EVENTS PREFETCH=$prefetch BODY_BYTES=$BODY_BYTES \
    timeout "$TIMEOUT" build/release/bench/consume >"$LOG_DIR/consume.out" 2>>"$LOG_DIR/consume.log" &
  pid=$!
  BENCH_PIDS=("$pid")
  wait "$pid" || die "the benchmark failed (prefetch $prefetch)"
  BENCH_PIDS=()
  cat "$LOG_DIR/consume.out"
  echo "RabbitMQ CPU, both phases: $(awk -v a="$mq0" -v b="$(cpu_seconds "$(beam_pid)")" 'BEGIN{printf "%.2f", b - a}') s"
  echo
done
