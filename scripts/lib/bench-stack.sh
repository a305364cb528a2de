# What the self-contained benchmarks (bench-outbox.sh, bench-http-client.sh,
# bench-consume.sh, bench-notification.sh) share: a private stack in build/<name>/, started with scripts/stack.sh on
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

# CPU seconds (user + system) used so far by the processes given.
cpu_seconds() {
  local total=0 pid
  for pid in "$@"; do
    [ -r "/proc/$pid/stat" ] || continue
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  awk -v t="$total" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", t / hz}'
}

# Where a server of the private stack keeps its state: $STACK_DIR/<component>,
# or /var/tmp/oms-<id>/<component> when the checkout is closed to the
# server's user (stack.sh names that folder by the stack's id).
bench_server_dir() { # component
  if [ -d "$STACK_DIR/$1" ]; then
    echo "$STACK_DIR/$1"
  else
    echo "/var/tmp/oms-$(echo "$STACK_DIR" | md5sum | cut -c1-8)/$1"
  fi
}

# The private PostgreSQL's processes (postmaster and its children: backends,
# WAL writer, checkpointer) and RabbitMQ's (beam.smp).
pg_pids() { local pm; pm=$(head -n 1 "$(bench_server_dir postgres)/data/postmaster.pid"); echo "$pm" $(pgrep -P "$pm"); }
beam_pid() { cat "$(bench_server_dir rabbitmq)/rabbitmq.pid"; }
