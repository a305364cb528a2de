#!/usr/bin/env bash
# Checks every endpoint of a deployment and prints one row per check; exits
# non-zero when any fails.
#
#   scripts/health-check.sh webapp [HOST]    the webapp VM
#   scripts/health-check.sh grafana [HOST]   the Grafana stack VM
#   scripts/health-check.sh single [HOST]    both, on one host
#   scripts/health-check.sh native           what `make run` started on this machine
#
# HOST defaults to BIND_ADDRESS (.env), where the stacks publish their
# ports, else 127.0.0.1. Each role judges only its own VM: the grafana role
# counts the Prometheus targets labelled vm="grafana" (the webapp VM's are
# shown, not judged: that VM may not exist yet). Ports follow .env / the
# environment (INVENTORY_PORT, PROMETHEUS_PORT, PG_PORT, ...) with
# DESIGN.md's defaults. Needs bash and curl.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)

role=${1:-}
host=${2:-}
case $role in webapp|grafana|single|native) ;; *)
  echo "usage: $0 webapp|grafana|single|native [HOST]" >&2; exit 2 ;;
esac
command -v curl >/dev/null || { echo "health-check: curl is missing" >&2; exit 2; }

# .env, unless the environment already says otherwise (as scripts/stack.sh does).
. "$ROOT/scripts/lib/dotenv.sh"
dotenv_load "$ROOT/.env"
host=${host:-${BIND_ADDRESS:-127.0.0.1}}
ORDER_PORT=${ORDER_PORT:-8001}
INVENTORY_PORT=${INVENTORY_PORT:-8002}
PAYMENT_PORT=${PAYMENT_PORT:-8003}
USER_PORT=${USER_PORT:-8004}
PG_PORT=${PG_PORT:-5432}
REDIS_PORT=${REDIS_PORT:-6379}
AMQP_PORT=${AMQP_PORT:-5672}
RABBITMQ_MGMT_PORT=${RABBITMQ_MGMT_PORT:-15672}
RABBITMQ_PROMETHEUS_PORT=${RABBITMQ_PROMETHEUS_PORT:-15692}
GATEWAY_PORT=${GATEWAY_PORT:-8080}
GRAFANA_PORT=${GRAFANA_PORT:-3000}
PROMETHEUS_PORT=${PROMETHEUS_PORT:-9090}
ALERTMANAGER_PORT=${ALERTMANAGER_PORT:-9093}
LOKI_PORT=${LOKI_PORT:-3100}
TEMPO_PORT=${TEMPO_PORT:-3200}

failures=0
printf '%-26s %-52s %-6s %s\n' CHECK TARGET RESULT DETAIL
row() { # name target ok|FAIL detail
  printf '%-26s %-52s %-6s %s\n' "$1" "$2" "$3" "$4"
  [ "$3" = ok ] || failures=$((failures + 1))
}

# An HTTP GET whose status must be one of the expected codes (e.g. "200" or
# "200 401"); the detail shows the status and the time taken.
http() { # name url expected-codes [curl args...]
  local name=$1 url=$2 expected=$3; shift 3
  local out code time
  out=$(curl -s -o /dev/null -m 5 -w '%{http_code} %{time_total}' "$@" "$url" 2>/dev/null) || true
  code=${out%% *}; time=${out#* }
  if [[ " $expected " == *" $code "* ]]; then
    row "$name" "$url" ok "HTTP $code in ${time}s"
  else
    row "$name" "$url" FAIL "HTTP ${code:-000} (want $expected)"
  fi
}

# A metrics page that must contain a sample, e.g. 'pg_up 1'.
metric() { # name url needle
  local body
  body=$(curl -s -m 5 "$2" 2>/dev/null) || true
  if grep -q "^$3" <<<"$body"; then row "$1" "$2" ok "$3"
  elif [ -n "$body" ]; then row "$1" "$2" FAIL "no '$3'"
  else row "$1" "$2" FAIL "no answer"
  fi
}

# A TCP port that must accept connections (PostgreSQL, Redis, AMQP, OTLP gRPC).
tcp() { # name host port
  if timeout 3 bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null; then row "$1" "$2:$3" ok "accepts connections"
  else row "$1" "$2:$3" FAIL "connection refused or timed out"
  fi
}

check_services() { # host
  http "order ready" "http://$1:$ORDER_PORT/health/ready" 200
  http "inventory ready" "http://$1:$INVENTORY_PORT/health/ready" 200
  http "payment ready" "http://$1:$PAYMENT_PORT/health/ready" 200
  http "user ready" "http://$1:$USER_PORT/health/ready" 200
  metric "order metrics" "http://$1:$ORDER_PORT/metrics" "oms_build_info"
  metric "inventory metrics" "http://$1:$INVENTORY_PORT/metrics" "oms_build_info"
  metric "payment metrics" "http://$1:$PAYMENT_PORT/metrics" "oms_build_info"
  metric "user metrics" "http://$1:$USER_PORT/metrics" "oms_logins_total"
}

check_webapp() { # host
  http "traefik ping" "http://$1:8080/ping" 200
  metric "traefik metrics" "http://$1:8080/metrics" "traefik_"
  # The dashboard answers, and only with a password.
  http "traefik dashboard locked" "http://$1:8080/dashboard/" 401
  http "route /api/inventory" "http://$1/api/inventory/products?limit=1" 200
  http "route /api/users" "http://$1/api/users/me" 401   # routed; no token
  http "route /api/orders" "http://$1/api/orders" 401     # routed; no token
  http "route /api/payments" "http://$1/api/payments?order_id=x" 401
  check_services "$1"
  tcp "postgres" "$1" 5432
  tcp "redis" "$1" 6379
  tcp "rabbitmq amqp" "$1" 5672
  http "rabbitmq management" "http://$1:15672/" 200
  metric "rabbitmq metrics" "http://$1:15692/metrics" "rabbitmq_"
  metric "postgres exporter" "http://$1:9187/metrics" "pg_up 1"
  metric "redis exporter" "http://$1:9121/metrics" "redis_up 1"
  http "alloy ready" "http://$1:12345/-/ready" 200
  # Two VMs only (profile host-agents); on one host the Grafana stack's.
  case ",${COMPOSE_PROFILES:-}," in *,host-agents,*)
    metric "node exporter" "http://$1:9100/metrics" "node_cpu_seconds_total"
    http "cadvisor" "http://$1:8081/healthz" 200 ;;
  esac
}

# One Prometheus instant query; prints the JSON answer (empty on failure).
prom_query() { # host query
  curl -s -m 5 "http://$1:$PROMETHEUS_PORT/api/v1/query" --data-urlencode "query=$2" 2>/dev/null || true
}

# The number in a one-sample answer such as count(...), or nothing.
prom_number() {
  grep -o '"value":\[[^,]*,"[0-9]*"' | grep -o '"[0-9]*"$' | tr -d '"'
}

check_grafana() { # host
  http "grafana" "http://$1:$GRAFANA_PORT/api/health" 200
  http "prometheus ready" "http://$1:$PROMETHEUS_PORT/-/ready" 200
  http "alertmanager ready" "http://$1:$ALERTMANAGER_PORT/-/ready" 200
  http "loki ready" "http://$1:$LOKI_PORT/ready" 200
  http "tempo ready" "http://$1:$TEMPO_PORT/ready" 200
  # An empty OTLP/HTTP export is well-formed: 200 means the receiver is up.
  http "tempo otlp http" "http://$1:4318/v1/traces" "200 400" -X POST -H 'Content-Type: application/json' -d '{}'
  tcp "tempo otlp grpc" "$1" 4317
  # What Prometheus sees of this VM (vm="grafana"; on one host, of both):
  # each target that is down is a row of its own (up == 0; labels come back
  # sorted, so instance precedes job).
  local targets="http://$1:$PROMETHEUS_PORT/targets" answer down up
  answer=$(prom_query "$1" "up{$judged} == 0")
  if [[ $answer != *'"status":"success"'* ]]; then
    row "prometheus targets" "$targets" FAIL "no answer"
  else
    down=$(grep -o '"instance":"[^"]*","job":"[^"]*"' <<<"$answer" | sed 's/"instance":"\([^"]*\)","job":"\([^"]*\)"/\2 \1/')
    up=$(prom_query "$1" "count(up{$judged} == 1)" | prom_number)
    if [ -z "$down" ] && [ "${up:-0}" -gt 0 ]; then
      row "prometheus targets" "$targets" ok "all $up ${judged:+vm=grafana }targets up"
    elif [ -z "$down" ]; then
      row "prometheus targets" "$targets" FAIL "no ${judged:+vm=grafana }target scraped yet"
    else
      while read -r job instance; do row "target $job" "$instance" FAIL "down in Prometheus"; done <<<"$down"
    fi
    # The webapp VM's targets: shown, not judged (deploy order: this VM
    # comes first; `health-check.sh webapp` on that VM judges them).
    [ -n "$judged" ] || return 0
    local webapp_up webapp_all
    webapp_up=$(prom_query "$1" 'count(up{vm="webapp"} == 1)' | prom_number)
    webapp_all=$(prom_query "$1" 'count(up{vm="webapp"})' | prom_number)
    row "webapp targets (info)" "$targets" ok "${webapp_up:-0} of ${webapp_all:-0} up; judged on the webapp VM"
  fi
}

check_native() {
  http "gateway route" "http://127.0.0.1:$GATEWAY_PORT/api/inventory/products?limit=1" 200
  check_services 127.0.0.1
  tcp "postgres" 127.0.0.1 "$PG_PORT"
  tcp "redis" 127.0.0.1 "$REDIS_PORT"
  tcp "rabbitmq amqp" 127.0.0.1 "$AMQP_PORT"
  metric "rabbitmq metrics" "http://127.0.0.1:$RABBITMQ_PROMETHEUS_PORT/metrics" "rabbitmq_"
}

judged='vm="grafana"'
case $role in
  webapp) check_webapp "$host" ;;
  grafana) check_grafana "$host" ;;
  single) judged=''; check_webapp "$host"; check_grafana "$host" ;;
  native) check_native ;;
esac

if [ "$failures" -eq 0 ]; then
  echo "all checks passed"
else
  echo "$failures check(s) failed"
  exit 1
fi
