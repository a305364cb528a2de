#!/usr/bin/env bash
# Deploys a Compose stack of the lab on this machine and waits until it is
# healthy.
#
#   scripts/deploy.sh webapp    the webapp VM  (docker-compose.yml)
#   scripts/deploy.sh grafana   the Grafana VM (docker-compose.grafana.yml)
#   scripts/deploy.sh single    both stacks on this one host
#   scripts/deploy.sh --dry-run ROLE   every step that needs no Docker engine
#                               (prerequisites, .env, configs), then the
#                               commands it would run; changes nothing
#
# Two VMs: the Grafana VM first, then the webapp VM (docs/DEPLOYMENT.md).
# Each VM's deploy waits only for its own components: the Grafana VM is
# healthy before the webapp VM exists.
#
# Steps: check the prerequisites (Docker with Compose v2, memory, disk);
# create .env from .env.example with fresh random secrets if there is none;
# check BIND_ADDRESS is an address of this machine; render the Prometheus
# and Alertmanager templates once to catch a missing setting before anything
# starts (the containers render them again at start-up); `docker compose up
# -d` (building the C services for webapp); wait for every check of
# scripts/health-check.sh to pass; print the URLs.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

dry_run=0
if [ "${1:-}" = --dry-run ]; then dry_run=1; shift; fi
role=${1:-}
case $role in webapp|grafana|single) ;; *) echo "usage: $0 [--dry-run] webapp|grafana|single" >&2; exit 2 ;; esac
WAIT_SECONDS=${WAIT_SECONDS:-300}

say() { printf '\n== %s\n' "$*"; }
die() { echo "deploy: $*" >&2; exit 1; }
# run COMMAND...: runs it, or in a dry run shows it.
run() {
  if [ "$dry_run" = 1 ]; then echo "would run: $*"; else "$@"; fi
}

# --- prerequisites --------------------------------------------------------------
say "prerequisites"
if [ "$dry_run" = 1 ]; then
  echo "dry run: the Docker engine is not needed or checked"
else
  command -v docker >/dev/null || die "docker is not installed (https://docs.docker.com/engine/install/)"
  docker info >/dev/null 2>&1 || die "the Docker engine is not running, or this user may not use it (try sudo, or the docker group)"
  docker compose version >/dev/null 2>&1 || die "the Compose v2 plugin is missing ('docker compose'; Debian/Ubuntu: docker-compose-plugin)"
fi
command -v curl >/dev/null || die "curl is missing (apt-get install curl)"
command -v openssl >/dev/null || die "openssl is missing (apt-get install openssl): it hashes the Traefik dashboard password"
# Sizes from docs/DEPLOYMENT.md: webapp 4 GB, grafana 4 GB, single 8 GB.
want_mb=4000
[ "$role" = single ] && want_mb=8000
have_mb=$(awk '/MemTotal/{print int($2/1024)}' /proc/meminfo 2>/dev/null || echo 0)
[ "$have_mb" -ge "$want_mb" ] || echo "warning: ${have_mb} MB of memory; ${want_mb} MB recommended for '$role'"
free_gb=$(df -Pk . | awk 'NR==2{print int($4/1024/1024)}')
[ "$free_gb" -ge 10 ] || echo "warning: ${free_gb} GB free on this disk; 10 GB recommended (images, volumes)"
if [ "$dry_run" = 0 ]; then
  echo "docker $(docker version --format '{{.Server.Version}}'), $(docker compose version --short 2>/dev/null || echo compose), ${have_mb} MB, ${free_gb} GB free"
fi

# --- .env -------------------------------------------------------------------------
random_secret() { head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c "${1:-32}"; }
# set_env FILE KEY VALUE: replaces KEY's line (values may hold $ and /).
set_env() {
  awk -v key="$2" -v value="$3" 'index($0, key "=") == 1 { print key "=" value; next } { print }' "$1" > "$1.new"
  mv "$1.new" "$1"
}
# A fresh Traefik dashboard login: $dashboard_password, and its htpasswd
# line for .env as $dashboard_users (single-quoted: Compose leaves the $ alone).
new_dashboard_login() {
  dashboard_password=$(random_secret 20)
  dashboard_users="'admin:$(openssl passwd -apr1 "$dashboard_password")'"
}
tell_dashboard_login() {
  echo "Traefik's dashboard: user admin, password $dashboard_password (only its hash is kept, in .env)"
}
env_file=.env
if [ ! -f .env ]; then
  if [ "$dry_run" = 1 ]; then
    env_file=$(mktemp)
    trap 'rm -f "$env_file"' EXIT
    say "no .env: a deploy would create one from .env.example with new secrets (this dry run uses a temporary one)"
  else
    say "creating .env from .env.example with new secrets"
  fi
  cp .env.example "$env_file"
  for key in POSTGRES_PASSWORD ORDERS_DB_PASSWORD INVENTORY_DB_PASSWORD PAYMENTS_DB_PASSWORD USERS_DB_PASSWORD \
             NOTIFICATIONS_DB_PASSWORD REDIS_PASSWORD ADMIN_TOKEN GRAFANA_ADMIN_PASSWORD; do
    set_env "$env_file" "$key" "$(random_secret 24)"
  done
  set_env "$env_file" JWT_SECRET "$(random_secret 48)"
  new_dashboard_login
  set_env "$env_file" TRAEFIK_DASHBOARD_USERS "$dashboard_users"
  chmod 600 "$env_file"
  if [ "$dry_run" = 0 ]; then
    echo "wrote .env (mode 600): the Grafana admin password is GRAFANA_ADMIN_PASSWORD there;"
    tell_dashboard_login
  fi
fi
# A .env made by an older version: the settings it lacks come from
# .env.example (a dashboard login is made fresh). Its values, image versions
# included, stay as they are.
if [ "$env_file" = .env ]; then
  while IFS='=' read -r key value; do
    case $key in ''|'#'*) continue ;; esac
    grep -q "^$key=" .env && continue
    if [ "$dry_run" = 1 ]; then echo "a deploy would add $key to .env (from .env.example)"; continue; fi
    if [ "$key" = TRAEFIK_DASHBOARD_USERS ]; then
      new_dashboard_login
      value=$dashboard_users
      tell_dashboard_login
    fi
    printf '%s=%s\n' "$key" "$value" >> .env
    echo "added $key to .env (from .env.example)"
  done < .env.example
fi
# .env's values for the checks below, unless the environment has them.
. scripts/lib/dotenv.sh
dotenv_load "$env_file"

# --- image pins -------------------------------------------------------------------
# The configs of this checkout are written for the versions .env.example
# pins (docs/DEPLOYMENT.md, "Versions"). A .env from an older checkout keeps
# its own pins, and some older images cannot read these configs or this
# volume layout: Prometheus 2 (retention in the config file), Loki before
# 3.7 (ruler_storage), PostgreSQL before 18 (its data volume's new path).
# Newer pins than .env.example's are the user's choice and pass.
version_number() { sed -e 's/^v//' -e 's/-.*//' <<<"$1"; }   # v3.14.0 -> 3.14.0, 18.6-bookworm -> 18.6
older_than() { [ "$1" != "$2" ] && [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n 1)" = "$1" ]; }
case $role in
  webapp) pinned=POSTGRES_VERSION ;;
  grafana) pinned="PROMETHEUS_VERSION LOKI_VERSION" ;;
  single) pinned="POSTGRES_VERSION PROMETHEUS_VERSION LOKI_VERSION" ;;
esac
stale=''
for key in $pinned; do
  have=${!key:-}
  want=$(awk -F= -v key="$key" '$1 == key { print $2 }' .env.example)
  [ -n "$have" ] && [ -n "$want" ] || continue
  if older_than "$(version_number "$have")" "$(version_number "$want")"; then
    stale="$stale $key=$have (needs $want or newer)"
  fi
done
[ -z "$stale" ] || die "$env_file pins images older than these configs need:$stale. Upgrade them as docs/DEPLOYMENT.md, \"Versions\", says (PostgreSQL: move the data first), then deploy again"

# --- addresses ----------------------------------------------------------------------
# Every published port but 80 and 3000 binds BIND_ADDRESS: it must be an
# address of this machine, or Docker cannot start the containers.
BIND_ADDRESS=${BIND_ADDRESS:-172.17.0.1}
say "addresses"
if command -v ip >/dev/null; then
  if ip -o addr show | awk '{print $4}' | cut -d/ -f1 | grep -qxF "$BIND_ADDRESS"; then
    echo "BIND_ADDRESS $BIND_ADDRESS is an address of this machine"
  elif [ "$dry_run" = 1 ]; then
    echo "BIND_ADDRESS $BIND_ADDRESS is not (yet) an address of this machine: Docker's bridge appears with the engine"
  else
    die "BIND_ADDRESS=$BIND_ADDRESS is not an address of this machine (ip -o addr); see .env.example"
  fi
fi
if [ "$dry_run" = 0 ] && [ "$role" != webapp ] && [ "${WEBAPP_HOST:-host.docker.internal}" = host.docker.internal ]; then
  # One host: the Grafana stack reaches the webapp's ports through the
  # bridge's gateway (host.docker.internal), so they must be published there.
  gateway=$(docker network inspect bridge --format '{{(index .IPAM.Config 0).Gateway}}' 2>/dev/null || true)
  [ -z "$gateway" ] || [ "$gateway" = "$BIND_ADDRESS" ] ||
    die "one host: BIND_ADDRESS must be Docker's bridge address $gateway (it is $BIND_ADDRESS)"
fi

if [ "$role" != single ]; then
  other=$([ "$role" = webapp ] && echo GRAFANA_HOST || echo WEBAPP_HOST)
  if [ "${!other:-host.docker.internal}" = host.docker.internal ]; then
    echo "note: $other is host.docker.internal (one-host mode). On two VMs, set it in .env to the other VM's address."
  fi
fi
# The webapp's own Node Exporter and cAdvisor (profile host-agents) run on
# a VM of its own only; on one host the Grafana stack's report the machine.
profiles=${COMPOSE_PROFILES:-}
if [ "$role" = webapp ] && [ "${GRAFANA_HOST:-host.docker.internal}" != host.docker.internal ]; then
  case ",$profiles," in *,host-agents,*) ;; *) profiles=${profiles:+$profiles,}host-agents
    echo "two VMs: starting this VM's Node Exporter and cAdvisor too (COMPOSE_PROFILES=$profiles)"
    # Kept in .env, so that `docker compose` and health-check.sh run by
    # hand later see the same profile.
    # (.env has the key: .env.example's settings were added above.)
    if [ "$dry_run" = 1 ]; then echo "a deploy would set COMPOSE_PROFILES=$profiles in .env"
    else set_env .env COMPOSE_PROFILES "$profiles"
    fi ;; esac
elif [ "$role" = single ]; then
  case ",$profiles," in *,host-agents,*) die "one host: remove host-agents from COMPOSE_PROFILES (the Grafana stack's agents report this machine)" ;; esac
fi
export COMPOSE_PROFILES=$profiles

# --- render and check ---------------------------------------------------------------
if [ "$role" != webapp ]; then
  say "rendering the Prometheus and Alertmanager configs"
  rendered=$(mktemp -d)
  export BIND_ADDRESS
  PROMETHEUS_RULES_DIR=$ROOT/infrastructure/prometheus/rules \
    sh infrastructure/render-template.sh infrastructure/prometheus/prometheus.yml.tmpl > "$rendered/prometheus.yml"
  sh infrastructure/render-template.sh infrastructure/alertmanager/alertmanager.yml.tmpl > "$rendered/alertmanager.yml"
  echo "rendered: both templates have every value they need"
  # This machine's own promtool (Prometheus 3 runs in the container; an
  # older promtool may not know every 3.x key, so it only advises).
  if command -v promtool >/dev/null; then
    promtool check config "$rendered/prometheus.yml" >/dev/null 2>&1 && echo "promtool: ok" ||
      echo "promtool $(promtool --version 2>&1 | awk 'NR==1{print $3}') disagrees (fine if older than 3.x): promtool check config on the rendered file tells why"
  fi
  if command -v amtool >/dev/null; then amtool check-config "$rendered/alertmanager.yml" >/dev/null && echo "amtool: ok"; fi
  rm -rf "$rendered"
  [ -n "${GRAFANA_ADMIN_PASSWORD:-}" ] || die "set GRAFANA_ADMIN_PASSWORD in .env"
fi

# --- up ---------------------------------------------------------------------------------
compose_up() { # file [extra args]
  local file=$1; shift
  say "docker compose -f $file up -d $*"
  run docker compose --env-file "$env_file" -f "$file" up -d "$@"
}
case $role in
  webapp) compose_up docker-compose.yml --build ;;
  grafana) compose_up docker-compose.grafana.yml ;;
  single)
    compose_up docker-compose.grafana.yml
    compose_up docker-compose.yml --build ;;
esac

# --- wait for health -----------------------------------------------------------------------
if [ "$dry_run" = 1 ]; then
  say "dry run done"
  echo "would wait up to ${WAIT_SECONDS}s for: scripts/health-check.sh $role $BIND_ADDRESS"
  [ "$role" = webapp ] || echo "(the grafana role judges only this VM's Prometheus targets, vm=\"grafana\")"
  exit 0
fi
say "waiting for every check to pass (up to ${WAIT_SECONDS}s)"
deadline=$((SECONDS + WAIT_SECONDS))
until scripts/health-check.sh "$role" "$BIND_ADDRESS" >/tmp/oms-health.$$ 2>&1; do
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
  Traefik dashboard    http://$BIND_ADDRESS:8080/dashboard/   (TRAEFIK_DASHBOARD_USERS in .env)
  RabbitMQ management  http://$BIND_ADDRESS:15672   (user oms, RABBITMQ_PASSWORD)
  drive it             scripts/generate-load.sh (when present), log in as a lab account (README)
EOF
fi
if [ "$role" != webapp ]; then
  cat <<EOF
  Grafana              http://$host:3000   (user admin, GRAFANA_ADMIN_PASSWORD in .env)
  Prometheus           http://$BIND_ADDRESS:9090/targets
  Alertmanager         http://$BIND_ADDRESS:9093
EOF
fi
