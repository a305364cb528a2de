#!/usr/bin/env bash
# The native stack: PostgreSQL, Redis, RabbitMQ, the services and the h2o
# gateway, from Debian packages, on 127.0.0.1, with every byte of state in
# one folder ($STACK_DIR, default .run/).
#
#   scripts/stack.sh start      start what is not running yet (idempotent)
#   scripts/stack.sh stop       stop what start started, newest first
#   scripts/stack.sh status     show what runs
#   scripts/stack.sh destroy    stop, then delete every byte of state
#   scripts/stack.sh start-postgres|stop-postgres|start-redis|stop-redis|
#                    start-rabbitmq|stop-rabbitmq|start-services|stop-services|
#                    start-gateway|stop-gateway|start-mail|stop-mail
#
# Ports and switches come from the environment (defaults in brackets):
#   PG_PORT [5432] REDIS_PORT [6379] AMQP_PORT [5672] RABBITMQ_MGMT_PORT [15672]
#   RABBITMQ_PROMETHEUS_PORT [15692] RABBITMQ_DIST_PORT [25672]
#   GATEWAY_PORT [8080] ORDER_PORT [8001] INVENTORY_PORT [8002] PAYMENT_PORT [8003]
#   USER_PORT [8004] NOTIFICATION_PORT [8005] SMTP_PORT [1025] (the mail sink)
#   GATEWAY_MAX_CONNECTIONS [4096] GATEWAY_MAX_BODY_BYTES [8388608]
#   WITH_RABBITMQ [1] WITH_SERVICES [1] WITH_GATEWAY [1] WITH_MAIL [=WITH_SERVICES]
#   BIN_DIR [build/release/bin]  GUARD_CFLAGS [-O2 -g]  PG_STOP_TIMEOUT [30]
#   LOG_LEVEL [info]  ADMIN_TOKEN [lab default]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

# Settings from .env (see .env.example) unless the environment has them.
. "$ROOT/scripts/lib/dotenv.sh"
dotenv_load "$ROOT/.env"

STACK_DIR=${STACK_DIR:-$ROOT/.run}
PG_PORT=${PG_PORT:-5432}
REDIS_PORT=${REDIS_PORT:-6379}
AMQP_PORT=${AMQP_PORT:-5672}
RABBITMQ_MGMT_PORT=${RABBITMQ_MGMT_PORT:-15672}
RABBITMQ_PROMETHEUS_PORT=${RABBITMQ_PROMETHEUS_PORT:-15692}
RABBITMQ_DIST_PORT=${RABBITMQ_DIST_PORT:-25672}
GATEWAY_PORT=${GATEWAY_PORT:-8080}
ORDER_PORT=${ORDER_PORT:-8001}
INVENTORY_PORT=${INVENTORY_PORT:-8002}
PAYMENT_PORT=${PAYMENT_PORT:-8003}
USER_PORT=${USER_PORT:-8004}
NOTIFICATION_PORT=${NOTIFICATION_PORT:-8005}
SMTP_PORT=${SMTP_PORT:-1025}
GATEWAY_MAX_CONNECTIONS=${GATEWAY_MAX_CONNECTIONS:-4096}
GATEWAY_MAX_BODY_BYTES=${GATEWAY_MAX_BODY_BYTES:-8388608}
PG_STOP_TIMEOUT=${PG_STOP_TIMEOUT:-30}
WITH_RABBITMQ=${WITH_RABBITMQ:-1}
WITH_SERVICES=${WITH_SERVICES:-1}
WITH_GATEWAY=${WITH_GATEWAY:-1}
WITH_MAIL=${WITH_MAIL:-$WITH_SERVICES}
MAIL_DIR=$STACK_DIR/mail
BIN_DIR=${BIN_DIR:-$ROOT/build/release/bin}
export POSTGRES_PASSWORD=${POSTGRES_PASSWORD:-postgres-lab-password}
export ADMIN_TOKEN=${ADMIN_TOKEN:-lab-admin-token-change-me}
export LOG_LEVEL=${LOG_LEVEL:-info}

PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
mkdir -p "$STACK_DIR"
LOG_DIR=$STACK_DIR/logs
PID_DIR=$STACK_DIR/pids
STACK_ID=$(echo "$STACK_DIR" | md5sum | cut -c1-8)
RABBITMQ_NODE=oms-$STACK_ID@localhost

# As root, PostgreSQL and RabbitMQ run as their own users, who must be able
# to reach their data. A checkout under /root is closed to them: their data
# then lives in /var/tmp/oms-<id>/ (still one folder per stack, and removed
# with it by `stack.sh destroy`).
server_dir() { # user component
  if [ "$(id -u)" -eq 0 ] && ! runuser -u "$1" -- test -x "$STACK_DIR" 2>/dev/null; then
    echo "/var/tmp/oms-$STACK_ID/$2"
  else
    echo "$STACK_DIR/$2"
  fi
}
PG_HOME=$(server_dir postgres postgres)
PG_DATA=$PG_HOME/data
PG_LOG=$PG_HOME/postgres.log
RABBITMQ_DIR=$(server_dir rabbitmq rabbitmq)

log() { printf '%s\n' "stack: $*"; }
die() { printf '%s\n' "stack: $*" >&2; exit 1; }

# Runs a command as the owner of the PostgreSQL data: initdb and pg_ctl refuse root.
as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # port seconds what
  local deadline=$((SECONDS + $2))
  until port_open "$1"; do
    [ $SECONDS -lt $deadline ] || die "$3 did not open port $1 within $2 s (logs in $LOG_DIR)"
    sleep 0.2
  done
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Waits for the process in a pid file to open its port; fails at once if it
# exits instead (a port another program holds must not pass for it).
wait_started() { # pidfile port seconds what log
  local deadline=$((SECONDS + $3))
  until port_open "$2"; do
    pid_alive "$1" || die "$4 exited during start-up: see $5"
    [ $SECONDS -lt $deadline ] || die "$4 did not open port $2 within $3 s: see $5"
    sleep 0.1
  done
  pid_alive "$1" || die "$4 exited during start-up: see $5"
}

prepare_dirs() {
  mkdir -p "$STACK_DIR" "$LOG_DIR" "$PID_DIR"
  [ -f "$STACK_DIR/.gitignore" ] || echo '*' > "$STACK_DIR/.gitignore"
}

# --- PostgreSQL ---------------------------------------------------------------

# What the server in $PG_DATA is doing, from the status line PostgreSQL keeps
# in postmaster.pid: ready, starting, stopping (a shutdown is under way),
# standby, or stopped (no live server).
postgres_state() {
  local pidfile=$PG_DATA/postmaster.pid pid
  [ -f "$pidfile" ] && pid=$(head -n 1 "$pidfile" 2>/dev/null) && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null \
    || { echo stopped; return; }
  local state; state=$(sed -n 8p "$pidfile" 2>/dev/null | tr -d ' ')
  echo "${state:-starting}"
}

start_postgres() {
  [ -n "$PG_BIN" ] || die "PostgreSQL is not installed (make deps)"
  prepare_dirs
  if [ ! -f "$PG_DATA/PG_VERSION" ]; then
    mkdir -p "$PG_DATA"
    local pwfile=$PG_HOME/.pgpass-init
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    if [ "$(id -u)" -eq 0 ]; then chown -R postgres: "$PG_HOME"; fi
    chmod 700 "$PG_DATA"
    as_postgres "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --pwfile="$pwfile" \
      --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$LOG_DIR/initdb.log" 2>&1 \
      || { rm -f "$pwfile"; die "initdb failed: see $LOG_DIR/initdb.log"; }
    rm -f "$pwfile"
  fi
  case $(postgres_state) in
    ready)
      log "postgres already running on $PG_PORT"
      return ;;
    stopping)
      # Someone asked it to stop (SIGTERM or pg_ctl's default is a "smart"
      # shutdown): it refuses new connections but waits for every client to
      # leave, and the services keep their pooled connections open, so it
      # would wait forever. Finish the shutdown, then start it again.
      log "postgres is stuck shutting down (a smart shutdown waits for the services' connections): finishing it with a fast shutdown and starting it again"
      stop_postgres ;;
    starting)
      # Starting or recovering: wait for it rather than start a second one.
      local deadline=$((SECONDS + 60))
      while [ "$(postgres_state)" = starting ] && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
      if [ "$(postgres_state)" = ready ]; then log "postgres already running on $PG_PORT"; return; fi
      [ "$(postgres_state)" = stopped ] || die "postgres did not finish starting within 60 s: see $PG_LOG (or run: scripts/stack.sh stop-postgres)" ;;
  esac
  # TCP on loopback only; no Unix socket (nothing in the folder needs one).
  as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 30 \
    -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=200" \
    start >/dev/null || die "postgres failed to start: see $PG_LOG"
  ln -sfn "$PG_LOG" "$LOG_DIR/postgres.log" 2>/dev/null || true
  log "postgres started on 127.0.0.1:$PG_PORT"
}

# A fast shutdown: clients are disconnected, open transactions roll back,
# and the data is checkpointed (nothing committed is lost). Should that not
# finish within PG_STOP_TIMEOUT seconds (a backend that does not react),
# an immediate one: every process is stopped at once, and the next start
# replays the write-ahead log (still nothing committed is lost).
stop_postgres() {
  [ -f "$PG_DATA/PG_VERSION" ] || return 0
  [ "$(postgres_state)" != stopped ] || return 0
  if as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t "$PG_STOP_TIMEOUT" stop >/dev/null 2>&1 \
     || [ "$(postgres_state)" = stopped ]; then
    log "postgres stopped"
    return
  fi
  log "postgres did not stop within $PG_STOP_TIMEOUT s: stopping it immediately (it recovers on the next start)"
  as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w -t 30 stop >/dev/null 2>&1 \
    || [ "$(postgres_state)" = stopped ] || die "postgres did not stop: see $PG_LOG"
  log "postgres stopped"
}

migrate() {
  PGHOST=127.0.0.1 PGPORT=$PG_PORT PGUSER=postgres PGPASSWORD=$POSTGRES_PASSWORD scripts/migrate.sh
}

# --- Redis --------------------------------------------------------------------

start_redis() {
  prepare_dirs
  if pid_alive "$PID_DIR/redis.pid"; then
    log "redis already running on $REDIS_PORT"
    return
  fi
  mkdir -p "$STACK_DIR/redis"
  # No persistence: the cache and fault flags are disposable in the lab.
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$STACK_DIR/redis" --daemonize yes --pidfile "$PID_DIR/redis.pid" \
    --logfile "$LOG_DIR/redis.log" >/dev/null
  wait_port "$REDIS_PORT" 10 redis
  log "redis started on 127.0.0.1:$REDIS_PORT"
}

stop_redis() { stop_pidfile "$PID_DIR/redis.pid" redis; }

# --- RabbitMQ -------------------------------------------------------------------

# Debian's rabbitmq-server/rabbitmqctl wrappers run the broker as the
# rabbitmq user and accept only root; anyone else runs the real scripts.
if [ "$(id -u)" -eq 0 ]; then
  RABBITMQ_SERVER=rabbitmq-server RABBITMQCTL=rabbitmqctl
else
  RABBITMQ_SERVER=/usr/lib/rabbitmq/bin/rabbitmq-server RABBITMQCTL=/usr/lib/rabbitmq/bin/rabbitmqctl
fi

rabbitmq_env() {
  export RABBITMQ_NODENAME=$RABBITMQ_NODE
  export RABBITMQ_MNESIA_BASE=$RABBITMQ_DIR/mnesia
  export RABBITMQ_LOG_BASE=$RABBITMQ_DIR/log
  export RABBITMQ_ENABLED_PLUGINS_FILE=$RABBITMQ_DIR/enabled_plugins
  export RABBITMQ_CONFIG_FILE=$RABBITMQ_DIR/rabbitmq
  export RABBITMQ_DIST_PORT
  # In the broker's own folder: as root the broker runs as the rabbitmq
  # user, who must be able to write it.
  export RABBITMQ_PID_FILE=$RABBITMQ_DIR/rabbitmq.pid
}

start_rabbitmq() {
  prepare_dirs
  rabbitmq_env
  # Erlang tools start their port mapper (epmd) when none runs; if that is
  # us, `stop` ends it too.
  epmd -names >/dev/null 2>&1 || touch "$PID_DIR/epmd.ours"
  if port_open "$AMQP_PORT" && "$RABBITMQCTL" -q -n "$RABBITMQ_NODE" status >/dev/null 2>&1; then
    log "rabbitmq already running on $AMQP_PORT"
    return
  fi
  mkdir -p "$RABBITMQ_DIR/log"
  echo '[rabbitmq_management,rabbitmq_prometheus].' > "$RABBITMQ_ENABLED_PLUGINS_FILE"
  cat > "$RABBITMQ_CONFIG_FILE.conf" <<CONF
listeners.tcp.1 = 127.0.0.1:$AMQP_PORT
management.tcp.ip = 127.0.0.1
management.tcp.port = $RABBITMQ_MGMT_PORT
prometheus.tcp.ip = 127.0.0.1
prometheus.tcp.port = $RABBITMQ_PROMETHEUS_PORT
CONF
  if [ "$(id -u)" -eq 0 ]; then chown -R rabbitmq: "$RABBITMQ_DIR"; fi

  ln -sfn "$RABBITMQ_DIR/log" "$LOG_DIR/rabbitmq" 2>/dev/null || true
  "$RABBITMQ_SERVER" -detached >/dev/null 2>&1 || die "rabbitmq failed to start: see $RABBITMQ_DIR/log"
  wait_port "$AMQP_PORT" 60 rabbitmq
  log "rabbitmq started on 127.0.0.1:$AMQP_PORT (management :$RABBITMQ_MGMT_PORT, metrics :$RABBITMQ_PROMETHEUS_PORT)"
}

stop_rabbitmq() {
  rabbitmq_env
  # Given the pid file, rabbitmqctl waits for the broker's process to exit
  # (without it, it returns while the broker is still shutting down).
  local pid_file=""
  [ -f "$RABBITMQ_PID_FILE" ] && kill -0 "$(cat "$RABBITMQ_PID_FILE")" 2>/dev/null && pid_file=$RABBITMQ_PID_FILE
  if [ -n "$pid_file" ] || { port_open "$AMQP_PORT" && "$RABBITMQCTL" -q -n "$RABBITMQ_NODE" status >/dev/null 2>&1; }; then
    "$RABBITMQCTL" -q -n "$RABBITMQ_NODE" stop $pid_file >/dev/null 2>&1 || true
    log "rabbitmq stopped"
  fi
  if [ -f "$PID_DIR/epmd.ours" ]; then
    epmd -kill >/dev/null 2>&1 || true
    rm -f "$PID_DIR/epmd.ours"
  fi
}

# --- services ---------------------------------------------------------------------

service_port() {
  case $1 in
    order) echo "$ORDER_PORT" ;;
    inventory) echo "$INVENTORY_PORT" ;;
    payment) echo "$PAYMENT_PORT" ;;
    user) echo "$USER_PORT" ;;
    notification) echo "$NOTIFICATION_PORT" ;;
    *) die "unknown service $1" ;;
  esac
}
# The PostgreSQL role (and schema) each service logs in as.
service_role() {
  case $1 in
    order) echo orders ;; inventory) echo inventory ;; payment) echo payments ;; user) echo users ;;
    notification) echo notifications ;;
  esac
}

# The notification service mails the stack's own sink when there is one.
smtp_url() {
  if [ "$WITH_MAIL" = 1 ]; then echo "smtp://127.0.0.1:$SMTP_PORT"; else echo "${SMTP_URL:-smtp://127.0.0.1:$SMTP_PORT}"; fi
}

start_service() {
  local name=$1 port; port=$(service_port "$name")
  local pidfile=$PID_DIR/$name.pid
  if pid_alive "$pidfile"; then
    log "$name already running on $port"
    return
  fi
  [ -x "$BIN_DIR/$name" ] || die "$BIN_DIR/$name is missing (make build)"
  local role; role=$(service_role "$name")
  local password_var; password_var=$(echo "${role}_DB_PASSWORD" | tr '[:lower:]' '[:upper:]')
  # GNUTLS_NO_IMPLICIT_INIT: see .env.example (saves ~0.6 MB per service).
  PORT=$port LISTEN_ADDRESS=127.0.0.1 GNUTLS_NO_IMPLICIT_INIT=1 \
    DATABASE_URL="postgresql://$role:${!password_var:-$role-lab-password}@127.0.0.1:$PG_PORT/oms?gssencmode=disable" \
    REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" AMQP_URL="amqp://guest:guest@127.0.0.1:$AMQP_PORT/" \
    INVENTORY_URL="http://127.0.0.1:$INVENTORY_PORT" PAYMENT_URL="http://127.0.0.1:$PAYMENT_PORT" \
    USER_URL="http://127.0.0.1:$USER_PORT" SMTP_URL="$(smtp_url)" \
    nohup "$BIN_DIR/$name" >>"$LOG_DIR/$name.log" 2>&1 &
  echo $! > "$pidfile"
  wait_port "$port" 15 "$name"
  log "$name started on 127.0.0.1:$port (log: $LOG_DIR/$name.log)"
}

stop_pidfile() { # pidfile name
  if pid_alive "$1"; then
    local pid; pid=$(cat "$1")
    kill -TERM "$pid"
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    log "$2 stopped"
  fi
  rm -f "$1"
}

# --- the mail sink (scripts/mail-sink.py: every message kept in $MAIL_DIR) -----------

start_mail() {
  prepare_dirs
  if pid_alive "$PID_DIR/mail.pid"; then
    log "mail sink already running on $SMTP_PORT"
    return
  fi
  /usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || die "the mail sink needs python3-aiosmtpd (make deps)"
  nohup /usr/bin/python3 "$ROOT/scripts/mail-sink.py" serve --dir "$MAIL_DIR" --port "$SMTP_PORT" \
    >>"$LOG_DIR/mail.log" 2>&1 &
  echo $! > "$PID_DIR/mail.pid"
  wait_started "$PID_DIR/mail.pid" "$SMTP_PORT" 15 "mail sink" "$LOG_DIR/mail.log"
  log "mail sink started on 127.0.0.1:$SMTP_PORT (messages in $MAIL_DIR)"
}

stop_mail() { stop_pidfile "$PID_DIR/mail.pid" "mail sink"; }

# --- gateway (framing guard + h2o; infrastructure/h2o/h2o.conf.tmpl) --------------

# h2o listens on a Unix socket only the guard uses. A socket path must fit
# in 107 bytes; a deep checkout falls back to /tmp.
GATEWAY_SOCKET=$STACK_DIR/gateway.sock
[ ${#GATEWAY_SOCKET} -lt 100 ] || GATEWAY_SOCKET=/tmp/oms-$STACK_ID-gateway.sock
GUARD_BIN=$BIN_DIR/framing-guard

# Raises this shell's open-files limit for the gateway: two descriptors per
# client in the guard (client + h2o), about as many in h2o (client +
# upstream), plus logs and listeners. As root the hard limit can rise too;
# otherwise the soft limit goes as high as the hard one allows.
raise_open_files() {
  local want=$((2 * GATEWAY_MAX_CONNECTIONS + 256)) hard
  hard=$(ulimit -Hn)
  if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then
    ulimit -Hn "$want" 2>/dev/null || want=$hard
  fi
  ulimit -Sn "$want" 2>/dev/null || true
  [ "$want" -ge $((2 * GATEWAY_MAX_CONNECTIONS + 256)) ] \
    || log "warning: open-files limit $want is below what GATEWAY_MAX_CONNECTIONS=$GATEWAY_MAX_CONNECTIONS needs ($((2 * GATEWAY_MAX_CONNECTIONS + 256)))"
}

start_gateway() {
  prepare_dirs
  make -s -C infrastructure/h2o OUT="$GUARD_BIN" CFLAGS="${GUARD_CFLAGS:--O2 -g}" \
    || die "could not build $GUARD_BIN (make deps installs gcc and libh2o-evloop-dev)"
  if pid_alive "$PID_DIR/gateway.pid"; then
    log "h2o (gateway) already running"
  else
    local user_line=""
    [ "$(id -u)" -eq 0 ] && user_line="user: root"
    sed -e "s|@USER_LINE@|$user_line|" -e "s|@H2O_SOCKET@|$GATEWAY_SOCKET|" -e "s|@LOG_DIR@|$LOG_DIR|" \
        -e "s|@MAX_CONNECTIONS@|$((GATEWAY_MAX_CONNECTIONS + 64))|" \
        -e "s|@H2O_MAX_BODY_BYTES@|$((2 * GATEWAY_MAX_BODY_BYTES))|" \
        -e "s|@ERRORS_DIR@|$ROOT/infrastructure/h2o/errors|" \
        -e "s|@INVENTORY_PORT@|$INVENTORY_PORT|" -e "s|@USER_PORT@|$USER_PORT|" \
        -e "s|@ORDER_PORT@|$ORDER_PORT|" -e "s|@PAYMENT_PORT@|$PAYMENT_PORT|" \
        -e "s|@NOTIFICATION_PORT@|$NOTIFICATION_PORT|" \
        infrastructure/h2o/h2o.conf.tmpl > "$STACK_DIR/h2o.conf"
    (raise_open_files; exec nohup h2o -m worker -c "$STACK_DIR/h2o.conf" >>"$LOG_DIR/gateway.log" 2>&1) &
    echo $! > "$PID_DIR/gateway.pid"
    local deadline=$((SECONDS + 10))
    until [ -S "$GATEWAY_SOCKET" ]; do
      pid_alive "$PID_DIR/gateway.pid" || die "h2o (gateway) exited during start-up: see $LOG_DIR/gateway.log"
      [ $SECONDS -lt $deadline ] || die "h2o (gateway) did not create $GATEWAY_SOCKET within 10 s: see $LOG_DIR/gateway.log"
      sleep 0.1
    done
  fi
  if pid_alive "$PID_DIR/gateway-guard.pid"; then
    log "gateway already running on $GATEWAY_PORT"
    return
  fi
  (raise_open_files; exec nohup "$GUARD_BIN" --listen "127.0.0.1:$GATEWAY_PORT" --upstream "$GATEWAY_SOCKET" \
    --max-connections "$GATEWAY_MAX_CONNECTIONS" --max-body-bytes "$GATEWAY_MAX_BODY_BYTES" >>"$LOG_DIR/gateway-guard.log" 2>&1) &
  echo $! > "$PID_DIR/gateway-guard.pid"
  wait_started "$PID_DIR/gateway-guard.pid" "$GATEWAY_PORT" 10 gateway "$LOG_DIR/gateway-guard.log"
  log "gateway started on 127.0.0.1:$GATEWAY_PORT (up to $GATEWAY_MAX_CONNECTIONS connections; logs: $LOG_DIR/gateway-*.log)"
}

stop_gateway() {
  stop_pidfile "$PID_DIR/gateway-guard.pid" "gateway (framing guard)"
  stop_pidfile "$PID_DIR/gateway.pid" "gateway (h2o)"
  rm -f "$GATEWAY_SOCKET"
}

# Peers first: order calls inventory and payment; notification calls user.
SERVICES=(inventory payment user order notification)

start_all() {
  start_postgres
  start_redis
  [ "$WITH_RABBITMQ" = 1 ] && start_rabbitmq
  migrate
  [ "$WITH_MAIL" = 1 ] && start_mail
  if [ "$WITH_SERVICES" = 1 ]; then
    for s in "${SERVICES[@]}"; do start_service "$s"; done
  fi
  [ "$WITH_GATEWAY" = 1 ] && start_gateway
  cat <<MSG

The lab is running (state and logs in $STACK_DIR):
  gateway           http://127.0.0.1:$GATEWAY_PORT/api/inventory/products
  order             http://127.0.0.1:$ORDER_PORT  (place orders through the gateway: README, "Placing an order")
  inventory         http://127.0.0.1:$INVENTORY_PORT  (/health/ready, /metrics)
  payment           http://127.0.0.1:$PAYMENT_PORT  (test cards: README)
  user              http://127.0.0.1:$USER_PORT  (log in: see README, "Lab accounts")
  notification      http://127.0.0.1:$NOTIFICATION_PORT  (inbox: /api/notifications through the gateway)
  postgres          127.0.0.1:$PG_PORT  (database oms, superuser postgres)
  redis             127.0.0.1:$REDIS_PORT
MSG
  [ "$WITH_RABBITMQ" = 1 ] && echo "  rabbitmq          amqp://127.0.0.1:$AMQP_PORT  management http://127.0.0.1:$RABBITMQ_MGMT_PORT  metrics http://127.0.0.1:$RABBITMQ_PROMETHEUS_PORT/metrics"
  [ "$WITH_MAIL" = 1 ] && echo "  mail sink         smtp://127.0.0.1:$SMTP_PORT  messages in $MAIL_DIR  (list: scripts/mail-sink.py list)"
  echo "Stop it with: make stop"
}

stop_all() {
  stop_gateway
  for s in "${SERVICES[@]}"; do stop_pidfile "$PID_DIR/$s.pid" "$s"; done
  stop_mail
  stop_rabbitmq
  stop_redis
  stop_postgres
}

status() {
  for s in gateway-guard gateway "${SERVICES[@]}" mail redis; do
    if pid_alive "$PID_DIR/$s.pid"; then echo "$s: running (pid $(cat "$PID_DIR/$s.pid"))"; else echo "$s: stopped"; fi
  done
  case $(postgres_state) in
    ready) echo "postgres: running" ;;
    stopping) echo "postgres: shutting down (scripts/stack.sh start finishes that and starts it again)" ;;
    stopped) echo "postgres: stopped" ;;
    *) echo "postgres: $(postgres_state)" ;;
  esac
  if port_open "$AMQP_PORT"; then echo "rabbitmq: port $AMQP_PORT open"; else echo "rabbitmq: stopped"; fi
}

case ${1:-} in
  start) start_all ;;
  stop) stop_all ;;
  status) status ;;
  destroy) stop_all; rm -rf "$STACK_DIR" "/var/tmp/oms-$STACK_ID" ;;
  start-postgres) start_postgres ;;
  stop-postgres) stop_postgres ;;
  migrate) migrate ;;
  start-redis) start_redis ;;
  stop-redis) stop_redis ;;
  start-rabbitmq) start_rabbitmq ;;
  stop-rabbitmq) stop_rabbitmq ;;
  start-services) for s in "${SERVICES[@]}"; do start_service "$s"; done ;;
  stop-services) for s in "${SERVICES[@]}"; do stop_pidfile "$PID_DIR/$s.pid" "$s"; done ;;
  start-gateway) start_gateway ;;
  stop-gateway) stop_gateway ;;
  start-mail) start_mail ;;
  stop-mail) stop_mail ;;
  *) sed -n '2,23p' "$0"; exit 2 ;;
esac
