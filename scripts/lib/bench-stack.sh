# What the self-contained benchmarks (bench-outbox.sh, bench-http-client.sh)
# share: a private stack in build/<name>/, started with scripts/stack.sh on
# the caller's ports, and a cleanup that stops every process they started
# (BENCH_PIDS), shows the end of each log when the run failed, and deletes
# the folder, on every exit (Ctrl-C and kill included).
#
# The caller sets PG_PORT, REDIS_PORT, AMQP_PORT and WITH_RABBITMQ (0 or 1),
# then calls bench_stack_init <name>. Sourced, not run.

bench_stack_init() { # name
  BENCH_NAME=$1
  BENCH_DIR=$ROOT/build/$1
  STACK_DIR=$BENCH_DIR/stack
  LOG_DIR=$BENCH_DIR/logs
  BENCH_PIDS=()
  export POSTGRES_PASSWORD=${POSTGRES_PASSWORD:-postgres-lab-password}
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  rm -rf "$BENCH_DIR"
  mkdir -p "$LOG_DIR"
}

say() { echo "$BENCH_NAME: $*"; }
die() { echo "$BENCH_NAME: $*" >&2; exit 1; }

# scripts/stack.sh on the private ports and folder; RabbitMQ's other
# ports follow AMQP_PORT (AMQP_PORT is passed even without RabbitMQ:
# `stop` asks a broker on that port whether it is ours).
stack() {
  STACK_DIR=$STACK_DIR PG_PORT=$PG_PORT REDIS_PORT=$REDIS_PORT AMQP_PORT=$AMQP_PORT \
    RABBITMQ_MGMT_PORT=$((AMQP_PORT + 1)) RABBITMQ_PROMETHEUS_PORT=$((AMQP_PORT + 2)) \
    RABBITMQ_DIST_PORT=$((AMQP_PORT + 3)) WITH_SERVICES=0 WITH_GATEWAY=0 WITH_RABBITMQ=$WITH_RABBITMQ \
    scripts/stack.sh "$@" >>"$LOG_DIR/stack.log" 2>&1
}

bench_cleanup() {
  local status=$?
  trap - EXIT INT TERM
  set +e
  local pid
  for pid in "${BENCH_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  if [ "$status" -ne 0 ] && [ "$status" -ne 130 ] && [ "$status" -ne 143 ] && [ -d "$LOG_DIR" ]; then
    local f
    for f in "$LOG_DIR"/*.log; do [ -s "$f" ] && { echo "--- last lines of $(basename "$f")"; tail -n 8 "$f"; }; done >&2
  fi
  [ -d "$STACK_DIR" ] && stack destroy
  rm -rf "$BENCH_DIR"
  exit "$status"
}
