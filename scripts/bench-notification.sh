#!/usr/bin/env bash
# The notification service under load, with email on the lab's own mail
# sink (scripts/mail-sink.py): run it through bench.sh.
#
#   scripts/bench.sh notification
#   EVENTS=10000 SOAK_S=60 scripts/bench.sh notification
#
# It needs nothing running: a private PostgreSQL, Redis and RabbitMQ
# (scripts/stack.sh, state in build/bench-notification/), the mail sink and
# the release build of the service, all on 127.0.0.1. Three phases, each
# bounded:
#   drain   EVENTS order.confirmed events (each one email, one inbox row)
#           wait in the queue; the service starts and takes them all:
#           events/s, and the CPU each process used; then EVENTS
#           order.created events (nothing to send: the consumer and
#           PostgreSQL alone);
#   burst   BURST_RATE events/s for BURST_S seconds while it consumes: the
#           backlog each second, and how long it takes to drain after;
#   soak    SOAK_RATE events/s for SOAK_S seconds, the service's resident
#           memory sampled every 10 s; then LEAK_S seconds more with the
#           fault notification.memory_leak on (LEAK_MIB a second), then off.
#
# Environment (defaults in brackets): EVENTS [30000] BURST_RATE [2000]
# BURST_S [30] SOAK_RATE [300] SOAK_S [300] LEAK_S [30] LEAK_MIB [2]
# CUSTOMERS [100]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

EVENTS=${EVENTS:-30000}
BURST_RATE=${BURST_RATE:-2000}
BURST_S=${BURST_S:-30}
SOAK_RATE=${SOAK_RATE:-300}
SOAK_S=${SOAK_S:-300}
LEAK_S=${LEAK_S:-30}
LEAK_MIB=${LEAK_MIB:-2}
export CUSTOMERS=${CUSTOMERS:-100}
PG_PORT=15544
REDIS_PORT=16491
AMQP_PORT=25696
NOTIFY_PORT=18005
SMTP_PORT=11025
WITH_RABBITMQ=1
ADMIN_TOKEN=bench-admin-token-0123456789
. "$ROOT/scripts/lib/bench-stack.sh"
bench_stack_init bench-notification
export AMQP_URL="amqp://guest:guest@127.0.0.1:$AMQP_PORT/"

say "make build/release/bin/notification (log: $LOG_DIR/build.log)"
make build/release/bin/notification >"$LOG_DIR/build.log" 2>&1 || die "the build failed"
say "starting PostgreSQL :$PG_PORT, Redis :$REDIS_PORT, RabbitMQ :$AMQP_PORT"
stack start-postgres && stack start-redis && stack start-rabbitmq && stack migrate || die "the stack did not start"
PGPASSWORD=$POSTGRES_PASSWORD /usr/bin/python3 scripts/bench/notification-events.py customers "$CUSTOMERS" |
  PGPASSWORD=$POSTGRES_PASSWORD psql -q -h 127.0.0.1 -p "$PG_PORT" -U postgres oms >/dev/null
/usr/bin/python3 scripts/mail-sink.py serve --dir "$BENCH_DIR/mail" --port "$SMTP_PORT" >"$LOG_DIR/mail.log" 2>&1 &
SINK_PID=$!
BENCH_PIDS+=("$SINK_PID")

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
until port_open "$SMTP_PORT"; do kill -0 "$SINK_PID" || die "the mail sink did not start"; sleep 0.1; done

metrics() { curl -s "http://127.0.0.1:$NOTIFY_PORT/metrics"; }
metric() { # name-and-labels: the value, 0 when absent
  metrics | awk -v k="$1" '$1 == k {print $2; found=1} END {if (!found) print 0}'
}
sent() { metric 'oms_notifications_total{channel="email",outcome="sent"}' | awk '{printf "%d", $1}'; }
ready() { metric 'messaging_queue_messages{destination="notification.events",state="ready"}' | awk '{printf "%d", $1}'; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$NOTIFY_PID/status"; }

start_notifier() {
  PORT=$NOTIFY_PORT LISTEN_ADDRESS=127.0.0.1 THREADS=2 LOG_LEVEL=warn ADMIN_TOKEN=$ADMIN_TOKEN \
    DATABASE_URL="postgresql://notifications:notifications-lab-password@127.0.0.1:$PG_PORT/oms?gssencmode=disable" \
    REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" SMTP_URL="smtp://127.0.0.1:$SMTP_PORT" GNUTLS_NO_IMPLICIT_INIT=1 \
    build/release/bin/notification >>"$LOG_DIR/notification.log" 2>&1 &
  NOTIFY_PID=$!
  BENCH_PIDS+=("$NOTIFY_PID")
  local deadline=$((SECONDS + 30))
  until [ "$(metric messaging_consumer_up)" = 1 ]; do
    kill -0 "$NOTIFY_PID" 2>/dev/null || die "the notification service exited"
    [ $SECONDS -lt $deadline ] || die "the notification service did not start consuming"
    sleep 0.1
  done
}
stop_notifier() { kill -TERM "$NOTIFY_PID"; wait "$NOTIFY_PID" || true; }
wait_sent() { # count seconds
  local deadline=$((SECONDS + $2))
  until [ "$(sent)" -ge "$1" ]; do
    [ $SECONDS -lt $deadline ] || die "only $(sent) of $1 emails sent within $2 s"
    sleep 0.2
  done
}
now() { date +%s.%N; }

# --- drain --------------------------------------------------------------------------
start_notifier # declares the queue and its bindings
stop_notifier
say "publishing $EVENTS events into the queue (nobody consuming)"
/usr/bin/python3 scripts/bench/notification-events.py load "$EVENTS"
start_notifier
cpu0=$(cpu_seconds "$NOTIFY_PID"); mq0=$(cpu_seconds "$(beam_pid)"); sink0=$(cpu_seconds "$SINK_PID")
pg0=$(cpu_seconds $(pg_pids)); t0=$(now)
wait_sent "$EVENTS" 600
t1=$(now)
cpu1=$(cpu_seconds "$NOTIFY_PID"); mq1=$(cpu_seconds "$(beam_pid)"); sink1=$(cpu_seconds "$SINK_PID")
pg1=$(cpu_seconds $(pg_pids))
awk -v n="$EVENTS" -v a="$t0" -v b="$t1" -v c0="$cpu0" -v c1="$cpu1" -v m0="$mq0" -v m1="$mq1" -v s0="$sink0" \
    -v s1="$sink1" -v p0="$pg0" -v p1="$pg1" 'BEGIN {
  printf "drain: %d events (one email each) in %.1f s: %.0f events/s\n", n, b - a, n / (b - a)
  printf "  CPU seconds: notification %.1f (%.0f us/event), PostgreSQL %.1f, RabbitMQ %.1f, mail sink %.1f\n",
         c1 - c0, (c1 - c0) * 1e6 / n, p1 - p0, m1 - m0, s1 - s0 }'
peers=$(grep -rh '^X-Sink-Peer:' "$BENCH_DIR/mail" | sort -u | wc -l)
echo "  SMTP connections used for $(find "$BENCH_DIR/mail" -name '*.eml' | wc -l) messages: $peers"

# --- drain, nothing to send: the consumer and PostgreSQL alone -------------------------
acked() { metric 'messaging_messages_total{destination="notification.events",operation="settle",outcome="acked"}' |
  awk '{printf "%d", $1}'; }
stop_notifier
say "publishing $EVENTS order.created events (taken in and remembered, nothing sent)"
/usr/bin/python3 scripts/bench/notification-events.py load "$EVENTS" order.created
start_notifier
cpu0=$(cpu_seconds "$NOTIFY_PID"); pg0=$(cpu_seconds $(pg_pids)); t0=$(now)
deadline=$((SECONDS + 600))
until [ "$(acked)" -ge "$EVENTS" ]; do [ $SECONDS -lt $deadline ] || die "not drained"; sleep 0.2; done
awk -v n="$EVENTS" -v a="$t0" -v b="$(now)" -v c0="$cpu0" -v c1="$(cpu_seconds "$NOTIFY_PID")" -v p0="$pg0" \
    -v p1="$(cpu_seconds $(pg_pids))" 'BEGIN {
  printf "drain, nothing to send: %d events in %.1f s: %.0f events/s (CPU s: notification %.1f, PostgreSQL %.1f)\n",
         n, b - a, n / (b - a), c1 - c0, p1 - p0 }'

# --- burst --------------------------------------------------------------------------
base=$(sent)
say "burst: $BURST_RATE events/s for $BURST_S s"
/usr/bin/python3 scripts/bench/notification-events.py paced "$BURST_RATE" "$BURST_S" >"$LOG_DIR/burst.out" &
pub=$!
BENCH_PIDS+=("$pub")
max=0
while kill -0 "$pub" 2>/dev/null; do
  r=$(ready); [ "$r" -gt "$max" ] && max=$r
  sleep 1
done
wait "$pub"
published=$(cat "$LOG_DIR/burst.out")
t_end=$(now)
echo "  published $published in ${BURST_S} s ($(awk -v p="$published" -v s="$BURST_S" 'BEGIN{printf "%.0f", p / s}')/s); backlog at most $max ready"
wait_sent $((base + published)) 600
awk -v a="$t_end" -v b="$(now)" 'BEGIN {printf "  drained %.1f s after the burst ended\n", b - a}'

# --- soak, then the leak fault ---------------------------------------------------------
say "soak: $SOAK_RATE events/s for $SOAK_S s, resident memory every 10 s"
/usr/bin/python3 scripts/bench/notification-events.py paced "$SOAK_RATE" "$SOAK_S" >"$LOG_DIR/soak.out" &
pub=$!
BENCH_PIDS+=("$pub")
samples=()
while kill -0 "$pub" 2>/dev/null; do samples+=("$(rss_kib)"); sleep 10; done
wait "$pub"
printf '  RSS kB: %s\n' "${samples[*]}"
printf '%s\n' "${samples[@]:1}" | awk 'NR == 1 {min = max = $1} {if ($1 < min) min = $1; if ($1 > max) max = $1}
  END {printf "  after the first sample: min %d kB, max %d kB, spread %d kB\n", min, max, max - min}'
curl -sf -X PUT -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json' \
  -d "{\"notification.memory_leak\": $LEAK_MIB}" "http://127.0.0.1:$NOTIFY_PORT/admin/faults" >/dev/null
leak=()
for _ in $(seq $((LEAK_S / 5))); do sleep 5; leak+=("$(rss_kib)"); done
curl -sf -X PUT -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json' \
  -d '{"notification.memory_leak": null}' "http://127.0.0.1:$NOTIFY_PORT/admin/faults" >/dev/null
sleep 5
printf '  with notification.memory_leak=%s, every 5 s, kB: %s\n' "$LEAK_MIB" "${leak[*]}"
echo "  5 s after clearing it: $(rss_kib) kB"
stop_notifier
