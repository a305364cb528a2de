#!/usr/bin/env bash
# Deploys a Compose stack of the lab on this machine and waits until it is
# healthy.
#
#   scripts/deploy.sh webapp    the webapp VM  (docker-compose.yml)
#   scripts/deploy.sh grafana   the Grafana VM (docker-compose.grafana.yml)
#   scripts/deploy.sh single    both stacks on this one host
#
# Steps: check the prerequisites (Docker with Compose v2, memory, disk);
# create .env from .env.example with fresh random secrets if there is none;
# render the Prometheus and Alertmanager templates once to catch a missing
# setting before anything starts (the containers render them again at
# start-up); `docker compose up -d` (building the C services for webapp);
# wait for every check of scripts/health-check.sh to pass; print the URLs.
# docs/DEPLOYMENT.md is the walkthrough.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

role=${1:-}
case $role in webapp|grafana|single) ;; *) echo "usage: $0 webapp|grafana|single" >&2; exit 2 ;; esac
WAIT_SECONDS=${WAIT_SECONDS:-300}

say() { printf '\n== %s\n' "$*"; }
die() { echo "deploy: $*" >&2; exit 1; }

# --- prerequisites --------------------------------------------------------------
say "prerequisites"
command -v docker >/dev/null || die "docker is not installed (https://docs.docker.com/engine/install/)"
docker info >/dev/null 2>&1 || die "the Docker engine is not running, or this user may not use it (try sudo, or the docker group)"
docker compose version >/dev/null 2>&1 || die "the Compose v2 plugin is missing ('docker compose'; Debian/Ubuntu: docker-compose-plugin)"
command -v curl >/dev/null || die "curl is missing (apt-get install curl)"
# Sizes from docs/DEPLOYMENT.md: webapp 4 GB, grafana 4 GB, single 8 GB.
want_mb=4000
[ "$role" = single ] && want_mb=8000
have_mb=$(awk '/MemTotal/{print int($2/1024)}' /proc/meminfo 2>/dev/null || echo 0)
[ "$have_mb" -ge "$want_mb" ] || echo "warning: ${have_mb} MB of memory; ${want_mb} MB recommended for '$role'"
free_gb=$(df -Pk . | awk 'NR==2{print int($4/1024/1024)}')
[ "$free_gb" -ge 10 ] || echo "warning: ${free_gb} GB free on this disk; 10 GB recommended (images, volumes)"
echo "docker $(docker version --format '{{.Server.Version}}'), $(docker compose version --short 2>/dev/null || echo compose), ${have_mb} MB, ${free_gb} GB free"

# --- .env -------------------------------------------------------------------------
random_secret() { head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c "${1:-32}"; }
if [ ! -f .env ]; then
  say "creating .env from .env.example with new secrets"
  cp .env.example .env
  for key in POSTGRES_PASSWORD ORDERS_DB_PASSWORD INVENTORY_DB_PASSWORD PAYMENTS_DB_PASSWORD USERS_DB_PASSWORD \
             NOTIFICATIONS_DB_PASSWORD REDIS_PASSWORD ADMIN_TOKEN GRAFANA_ADMIN_PASSWORD; do
    sed -i "s|^$key=.*|$key=$(random_secret 24)|" .env
  done
  sed -i "s|^JWT_SECRET=.*|JWT_SECRET=$(random_secret 48)|" .env
  chmod 600 .env
  echo "wrote .env (mode 600); the Grafana admin password is GRAFANA_ADMIN_PASSWORD there"
fi
# .env's values for the checks below, unless the environment has them.
. scripts/lib/dotenv.sh
dotenv_load .env

if [ "$role" != single ]; then
  other=$([ "$role" = webapp ] && echo GRAFANA_HOST || echo WEBAPP_HOST)
  if [ "${!other:-host.docker.internal}" = host.docker.internal ]; then
    echo "note: $other is host.docker.internal (one-host mode). On two VMs, set it in .env to the other VM's address."
  fi
fi

# --- render and check ---------------------------------------------------------------
if [ "$role" != webapp ]; then
  say "rendering the Prometheus and Alertmanager configs"
  mkdir -p .rendered
  PROMETHEUS_RULES_DIR=$ROOT/infrastructure/prometheus/rules \
    infrastructure/render-template.sh infrastructure/prometheus/prometheus.yml.tmpl > .rendered/prometheus.yml
  infrastructure/render-template.sh infrastructure/alertmanager/alertmanager.yml.tmpl > .rendered/alertmanager.yml
  if command -v promtool >/dev/null; then promtool check config .rendered/prometheus.yml >/dev/null && echo "promtool: ok"; fi
  if command -v amtool >/dev/null; then amtool check-config .rendered/alertmanager.yml >/dev/null && echo "amtool: ok"; fi
  [ -n "${GRAFANA_ADMIN_PASSWORD:-}" ] || die "set GRAFANA_ADMIN_PASSWORD in .env"
fi

# --- up ---------------------------------------------------------------------------------
compose_up() { # file [extra args]
  local file=$1; shift
  say "docker compose -f $file up -d $*"
  docker compose -f "$file" up -d "$@"
}
case $role in
  webapp) compose_up docker-compose.yml --build ;;
  grafana) compose_up docker-compose.grafana.yml ;;
  single)
    compose_up docker-compose.grafana.yml
    compose_up docker-compose.yml --build ;;
esac

# --- wait for health -----------------------------------------------------------------------
say "waiting for every check to pass (up to ${WAIT_SECONDS}s)"
deadline=$((SECONDS + WAIT_SECONDS))
until scripts/health-check.sh "$role" >/tmp/oms-health.$$ 2>&1; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    cat /tmp/oms-health.$$
    rm -f /tmp/oms-health.$$
    die "not healthy after ${WAIT_SECONDS}s; see the FAIL rows above and 'docker compose logs <service>'"
  fi
  sleep 5
done
cat /tmp/oms-health.$$
rm -f /tmp/oms-health.$$

# --- where things are ------------------------------------------------------------------------
host=$(hostname -I 2>/dev/null | awk '{print $1}')
host=${host:-127.0.0.1}
say "ready"
if [ "$role" != grafana ]; then
  cat <<EOF
  API (Traefik)        http://$host/api/inventory/products   http://$host/api/users/login
  Traefik dashboard    http://$host:8080/dashboard/
  RabbitMQ management  http://$host:15672   (user oms, RABBITMQ_PASSWORD)
  drive it             scripts/generate-load.sh (when present), log in as a lab account (README)
EOF
fi
if [ "$role" != webapp ]; then
  cat <<EOF
  Grafana              http://$host:3000   (user admin, GRAFANA_ADMIN_PASSWORD in .env)
  Prometheus           http://$host:9090/targets
  Alertmanager         http://$host:9093
EOF
fi
