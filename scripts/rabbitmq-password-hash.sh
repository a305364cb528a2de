#!/usr/bin/env bash
# Prints the RabbitMQ password hash of a password (rabbit_password_hashing_sha256:
# base64 of a 4-byte random salt followed by SHA-256(salt + password)), for
# the "password_hash" of a user in infrastructure/rabbitmq/definitions.json.
#
#   scripts/rabbitmq-password-hash.sh 'new password'
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 PASSWORD" >&2; exit 2; }
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
head -c 4 /dev/urandom > "$tmp"
{ cat "$tmp"; printf '%s' "$1"; } | openssl dgst -sha256 -binary >> "$tmp"
base64 -w0 < "$tmp"
echo
