#!/usr/bin/env bash
# Installs the Debian packages a make target needs, when they are missing.
#
#   scripts/install-deps.sh [build|test|run|bench]...   (default: build test run)
#
# As root it runs apt-get; otherwise it prints the apt-get line to run.
set -euo pipefail

declare -A PROFILE=(
  # compilers and the C libraries the services link
  [build]="gcc make pkg-config libh2o-evloop-dev libpq-dev libhiredis-dev libjansson-dev libargon2-dev libssl-dev zlib1g-dev libcurl4-openssl-dev librabbitmq-dev libcmocka-dev"
  # servers and tools the tests start or call; clang and its runtime
  # libraries (libFuzzer, the sanitizers) for the fuzz targets; openssl and
  # iproute2 for scripts/deploy.sh (the dashboard hash, BIND_ADDRESS's check)
  [test]="postgresql redis-server redis-tools rabbitmq-server h2o prometheus prometheus-alertmanager prometheus-node-exporter prometheus-postgres-exporter prometheus-redis-exporter python3 python3-pytest python3-psycopg2 python3-pika python3-yaml python3-jsonschema python3-aiosmtpd curl procps clang libclang-rt-14-dev cppcheck openssl iproute2"
  # the native stack: the test servers plus RabbitMQ, the h2o gateway and
  # the mail sink (aiosmtpd)
  [run]="postgresql redis-server redis-tools rabbitmq-server h2o python3 python3-aiosmtpd curl procps"
  [bench]="wrk curl procps"
)

profiles=("$@")
[ ${#profiles[@]} -gt 0 ] || profiles=(build test run)

wanted=()
for p in "${profiles[@]}"; do
  [ -n "${PROFILE[$p]+x}" ] || { echo "install-deps: unknown profile '$p'" >&2; exit 2; }
  for pkg in ${PROFILE[$p]}; do wanted+=("$pkg"); done
done

missing=()
for pkg in $(printf '%s\n' "${wanted[@]}" | sort -u); do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "Missing Debian packages. Install them with:" >&2
  echo "  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "Installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Package lists may be absent on a fresh machine; refresh them once.
apt-get update -qq
# Installing a server package must not try to start it (there may be no
# init system, and the stack starts its own instances on its own ports).
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && created_policy=1
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
[ "$created_policy" = 1 ] && rm -f "$policy"
echo "Installed."
