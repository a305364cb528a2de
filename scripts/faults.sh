#!/usr/bin/env bash
# Sets, clears and lists the lab's fault flags through a service's
# /admin/faults endpoint (every service shares them through Redis).
#
#   scripts/faults.sh list
#   scripts/faults.sh set inventory.latency_ms=300 inventory.error_rate=0.05
#   scripts/faults.sh clear inventory.latency_ms      # one fault
#   scripts/faults.sh clear                           # every fault
#
# Environment: FAULTS_URL (default http://127.0.0.1:8002, the inventory
# service), ADMIN_TOKEN (default: the lab token).
set -euo pipefail
URL=${FAULTS_URL:-http://127.0.0.1:${INVENTORY_PORT:-8002}}
TOKEN=${ADMIN_TOKEN:-lab-admin-token-change-me}

call() { # method [json]
  local out status
  out=$(curl -sS -w '\n%{http_code}' -X "$1" -H "Authorization: Bearer $TOKEN" \
        -H 'Content-Type: application/json' ${2:+-d "$2"} "$URL/admin/faults") || exit 1
  status=${out##*$'\n'}
  printf '%s\n' "${out%$'\n'*}"
  [ "$status" = 200 ] || { echo "faults: HTTP $status" >&2; exit 1; }
}

# Checks name=value pairs before anything is sent.
validate() {
  local pair name value
  for pair in "$@"; do
    [[ $pair == *=* ]] || { echo "faults: '$pair' is not name=value" >&2; exit 2; }
    name=${pair%%=*}
    value=${pair#*=}
    [[ $name =~ ^[a-z0-9_]+\.[a-z0-9_]+$ ]] || { echo "faults: bad fault name '$name'" >&2; exit 2; }
    [[ $value =~ ^([0-9]+(\.[0-9]+)?|true|false|null)$ ]] || { echo "faults: bad value '$value' for $name" >&2; exit 2; }
  done
}

# name=value ... (validated) -> {"name":value,...}
to_json() {
  local out="" pair
  for pair in "$@"; do
    out+="${out:+,}\"${pair%%=*}\":${pair#*=}"
  done
  printf '{%s}' "$out"
}

case ${1:-list} in
  list) call GET ;;
  set)
    shift
    [ $# -gt 0 ] || { echo "usage: $0 set name=value..." >&2; exit 2; }
    validate "$@"
    call PUT "$(to_json "$@")" ;;
  clear)
    shift
    if [ $# -eq 0 ]; then # every fault currently set
      names=$(call GET | grep -o '"[a-z0-9_]*\.[a-z0-9_]*"' | tr -d '"' || true)
      [ -n "$names" ] || { echo "{}"; exit 0; }
      set -- $names
    fi
    pairs=()
    for name in "$@"; do pairs+=("$name=null"); done
    validate "${pairs[@]}"
    call PUT "$(to_json "${pairs[@]}")" ;;
  *) sed -n '2,12p' "$0"; exit 2 ;;
esac
