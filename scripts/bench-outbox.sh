#!/usr/bin/env bash
# How fast the outbox relay drains a backlog, with publisher confirms, and
# where its time goes. Run it through bench.sh:
#
#   scripts/bench.sh outbox
#   EVENTS=20000 BATCH_SIZES="100 500 1000" scripts/bench.sh outbox
#
# It needs nothing running. It starts its own PostgreSQL, Redis and
# RabbitMQ with scripts/stack.sh on private ports (state in
# build/bench-outbox/), binds a durable queue to oms.events (so every
# confirm means "written to a queue on disk", as with the notification
# service's queue), and then, per batch size:
#   1. holds the relay lease (users.outbox_relay) so that nothing publishes,
#      and writes EVENTS user.registered rows into users.outbox;
#   2. starts the user service (release build) and hands it the lease;
#   3. times from then until no row is pending, and reads from the
#      service's /metrics how long its claims and marks took in
#      PostgreSQL (db_client_operation_duration_seconds), and the CPU time
#      the service, PostgreSQL and RabbitMQ used meanwhile. The relay keeps
#      two batches in flight, so claims and marks overlap with publishing:
#      "publish s" (the drain time less claims and marks) is a lower bound
#      of the time spent publishing and waiting for confirms;
#   4. checks the queue holds every event, purges it, stops the service.
# Everything is on 127.0.0.1, bounded, and removed when it ends.
#
# Environment (defaults in brackets):
#   EVENTS [100000]  BATCH_SIZES [500]  TIMEOUT [300] seconds per drain
#   BENCH_PG_PORT [15533]  BENCH_REDIS_PORT [16480]  BENCH_AMQP_PORT [25682] (and the three after it)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

EVENTS=${EVENTS:-100000}
BATCH_SIZES=${BATCH_SIZES:-500}
TIMEOUT=${TIMEOUT:-300}
PG_PORT=${BENCH_PG_PORT:-15533}
REDIS_PORT=${BENCH_REDIS_PORT:-16480}
AMQP_PORT=${BENCH_AMQP_PORT:-25682}
WITH_RABBITMQ=1
SERVICE_PORT=18104
QUEUE=bench.outbox
. "$ROOT/scripts/lib/bench-stack.sh"
bench_stack_init bench-outbox
DB_URL="postgresql://postgres:$POSTGRES_PASSWORD@127.0.0.1:$PG_PORT/oms?gssencmode=disable"

psql_() { psql -X -q -At -v ON_ERROR_STOP=1 "$DB_URL" "$@"; }
amqp() { # python3 -c with pika: declare/bind, count, purge the bench queue
  /usr/bin/python3 - "$AMQP_PORT" "$QUEUE" "$1" <<'PY'
import sys, pika
port, queue, what = int(sys.argv[1]), sys.argv[2], sys.argv[3]
conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", port, credentials=pika.PlainCredentials("guest", "guest")))
ch = conn.channel()
ch.exchange_declare("oms.events", exchange_type="topic", durable=True)
q = ch.queue_declare(queue, durable=True)
ch.queue_bind(queue, "oms.events", "user.registered")
if what == "count":
    print(q.method.message_count)
elif what == "purge":
    ch.queue_purge(queue)
elif what == "delete":
    ch.queue_delete(queue)
conn.close()
PY
}

say "make build (log: $LOG_DIR/build.log)"
make -j"$(nproc)" build >"$LOG_DIR/build.log" 2>&1 || die "make build failed"
say "starting PostgreSQL :$PG_PORT, Redis :$REDIS_PORT, RabbitMQ :$AMQP_PORT"
stack start || die "the stack did not start"
amqp declare >/dev/null

metric_sum() { # operation: seconds spent in that statement so far
  curl -s "http://127.0.0.1:$SERVICE_PORT/metrics" |
    awk -v op="$1" -F'[ ]' 'index($1, "db_client_operation_duration_seconds_sum{") == 1 && index($1, "operation=\"" op "\"") {print $2}'
}
now() { date +%s.%N; }
# cpu_seconds, pg_pids and beam_pid: scripts/lib/bench-stack.sh

printf '%-6s %8s %8s %9s %8s %8s %10s   %-28s\n' batch events seconds "events/s" "claim s" "mark s" "publish s" \
  "CPU s: service/postgres/rabbitmq"
for batch in $BATCH_SIZES; do
  psql_ -c "TRUNCATE users.outbox" \
    -c "INSERT INTO users.outbox_relay (holder, lease_until) VALUES ('bench:hold:0', now() + interval '1 hour')
        ON CONFLICT (singleton) DO UPDATE SET holder = excluded.holder, lease_until = excluded.lease_until" \
    -c "SELECT users.outbox_emit('user.registered', jsonb_build_object('user_id', gen_random_uuid(),
          'email', 'bench-' || n || '@example.com', 'name', 'Bench user ' || n),
          '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01')
        FROM generate_series(1, $EVENTS) n" >/dev/null
  psql_ -c "VACUUM ANALYZE users.outbox" >/dev/null

  PORT=$SERVICE_PORT LISTEN_ADDRESS=127.0.0.1 LOG_LEVEL=info OUTBOX_BATCH_SIZE=$batch GNUTLS_NO_IMPLICIT_INIT=1 \
    DATABASE_URL="postgresql://users:users-lab-password@127.0.0.1:$PG_PORT/oms?gssencmode=disable" \
    REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" AMQP_URL="amqp://guest:guest@127.0.0.1:$AMQP_PORT/" \
    build/release/bin/user >>"$LOG_DIR/user.log" 2>&1 &
  SERVICE_PID=$!
  BENCH_PIDS=("$SERVICE_PID")
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$SERVICE_PORT/health/ready" >/dev/null && break; sleep 0.1; done
  curl -sf "http://127.0.0.1:$SERVICE_PORT/health/ready" | grep -q '"rabbitmq":{"status":"up"}' ||
    die "the user service is not connected to RabbitMQ"
  holder=$(grep -o '"holder":"[^"]*"' "$LOG_DIR/user.log" | tail -n 1 | cut -d'"' -f4)
  claim0=$(metric_sum outbox_claim); mark0=$(metric_sum outbox_mark)

  pgp=$(pg_pids); bp=$(beam_pid)
  svc0=$(cpu_seconds "$SERVICE_PID"); pg0=$(cpu_seconds $pgp); mq0=$(cpu_seconds "$bp")
  start=$(now)
  psql_ -c "UPDATE users.outbox_relay SET holder = '$holder', lease_until = now() + interval '1 hour'" >/dev/null
  deadline=$(( $(date +%s) + TIMEOUT ))
  # polling the backlog (an index-only count) every 50 ms; its own cost is
  # a few ms per poll on the database
  while [ "$(psql_ -c "SELECT count(*) FROM users.outbox WHERE published_at IS NULL")" != 0 ]; do
    [ "$(date +%s)" -lt "$deadline" ] || die "the backlog did not drain within ${TIMEOUT}s"
    sleep 0.05
  done
  end=$(now)
  svc=$(awk -v a="$(cpu_seconds "$SERVICE_PID")" -v b="$svc0" 'BEGIN{printf "%.1f", a - b}')
  pgc=$(awk -v a="$(cpu_seconds $pgp)" -v b="$pg0" 'BEGIN{printf "%.1f", a - b}')
  mqc=$(awk -v a="$(cpu_seconds "$bp")" -v b="$mq0" 'BEGIN{printf "%.1f", a - b}')
  claim=$(awk -v a="$(metric_sum outbox_claim)" -v b="${claim0:-0}" 'BEGIN{printf "%.2f", a - b}')
  mark=$(awk -v a="$(metric_sum outbox_mark)" -v b="${mark0:-0}" 'BEGIN{printf "%.2f", a - b}')
  seconds=$(awk -v a="$end" -v b="$start" 'BEGIN{printf "%.2f", a - b}')
  rate=$(awk -v n="$EVENTS" -v s="$seconds" 'BEGIN{printf "%.0f", n / s}')
  publish=$(awk -v s="$seconds" -v c="$claim" -v m="$mark" 'BEGIN{printf "%.2f", s - c - m}')
  printf '%-6s %8s %8s %9s %8s %8s %10s   %s/%s/%s\n' "$batch" "$EVENTS" "$seconds" "$rate" "$claim" "$mark" \
    "$publish" "$svc" "$pgc" "$mqc"

  queued=$(amqp count)
  [ "$queued" -ge "$EVENTS" ] || die "the queue holds $queued messages, expected at least $EVENTS"
  amqp purge >/dev/null
  kill -TERM "$SERVICE_PID"; wait "$SERVICE_PID" || true; BENCH_PIDS=()
done
say "claim/mark: time in PostgreSQL per the service's own db_client_operation_duration_seconds;"
say "publish: the drain time less claims and marks (they overlap: a lower bound of publishing and confirms)"
amqp delete >/dev/null
