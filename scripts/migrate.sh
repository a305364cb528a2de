#!/usr/bin/env bash
# Creates the `oms` database, the service roles and schemas and what they
# share (infrastructure/postgres/init/*.sql), then applies
# each service's migrations (services/<name>/migrations/NNN_*.sql) in order.
#
# Each migration runs in one transaction as the service's own role, so the
# role owns what it creates. Applied versions are recorded with a checksum in
# public.schema_migrations; a migration edited after it was applied is an
# error (write a new one instead). Re-running applies only what is new.
#
# Connection: PGHOST, PGPORT, PGUSER (a superuser), PGPASSWORD.
set -euo pipefail
cd "$(dirname "$0")/.."

export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
export PGPASSWORD=${PGPASSWORD:-${POSTGRES_PASSWORD:-postgres-lab-password}}
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -v VERBOSITY=terse -c "SET client_min_messages = warning")

if [ "$("${PSQL[@]}" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'oms'")" != 1 ]; then
  "${PSQL[@]}" -d postgres -c "CREATE DATABASE oms"
fi

# Roles and schemas (001), then what every service shares, such as the
# outbox (002); each file may be re-run.
for file in infrastructure/postgres/init/[0-9]*.sql; do
  "${PSQL[@]}" -d oms \
    -v orders_password="${ORDERS_DB_PASSWORD:-orders-lab-password}" \
    -v inventory_password="${INVENTORY_DB_PASSWORD:-inventory-lab-password}" \
    -v payments_password="${PAYMENTS_DB_PASSWORD:-payments-lab-password}" \
    -v users_password="${USERS_DB_PASSWORD:-users-lab-password}" \
    -v notifications_password="${NOTIFICATIONS_DB_PASSWORD:-notifications-lab-password}" \
    -f "$file" >/dev/null
done

# service directory -> database role (= schema)
declare -A ROLE=([order]=orders [inventory]=inventory [payment]=payments [user]=users [notification]=notifications)

applied=0
for dir in services/*/migrations; do
  service=$(basename "$(dirname "$dir")")
  role=${ROLE[$service]:-}
  [ -n "$role" ] || { echo "migrate: no database role for service '$service'" >&2; exit 1; }
  for file in "$dir"/[0-9]*.sql; do
    [ -e "$file" ] || continue
    version=$(basename "$file" .sql)
    sum=$(sha256sum "$file" | cut -d' ' -f1)
    recorded=$("${PSQL[@]}" -d oms -tA \
      -c "SELECT checksum FROM public.schema_migrations WHERE service = '$service' AND version = '$version'")
    if [ -n "$recorded" ]; then
      if [ "$recorded" != "$sum" ]; then
        echo "migrate: $file changed after it was applied; add a new migration instead" >&2
        exit 1
      fi
      continue
    fi
    "${PSQL[@]}" -d oms -1 \
      -c "INSERT INTO public.schema_migrations (service, version, checksum) VALUES ('$service', '$version', '$sum')" \
      -c "SET ROLE $role" \
      -f "$file" >/dev/null
    echo "migrate: applied $service/$version"
    applied=$((applied + 1))
  done
done
echo "migrate: database up to date ($applied new)"
