#!/usr/bin/env bash
# Checks that orders, payments, stock and events agree, across the three
# services' schemas (read as the superuser: no service may read another's
# tables, an auditor may).
#
#   scripts/reconcile.sh [--since INTERVAL] [--grace SECONDS]
#
#   CONFIRMED            exactly one net charge, of the order's total, and
#                        its stock reservation committed
#   FAILED, CANCELLED    no net charge (charges refunded or voided) and no
#                        stock held or taken (released, expired, restocked)
#   every order          its events published: order.created, and the
#                        event of its final status
#   PENDING, or a saga still compensating, is "in flight" and not judged,
#   unless its deadline passed more than --grace seconds (default 120) ago:
#   then it is a mismatch (stuck).
#
# Prints a summary table, then every mismatch; exits 1 when there is one,
# 2 when the database cannot be read. Connection: PGHOST, PGPORT, PGUSER
# (a superuser), PGPASSWORD, as scripts/migrate.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

SINCE="100 years"
GRACE=120
while [ $# -gt 0 ]; do
  case $1 in
    --since) SINCE=$2; shift 2 ;;
    --grace) GRACE=$2; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "reconcile: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ $GRACE =~ ^[0-9]+$ ]] || { echo "reconcile: --grace takes whole seconds" >&2; exit 2; }

export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
export PGPASSWORD=${PGPASSWORD:-${POSTGRES_PASSWORD:-postgres-lab-password}}

# One row per order and check: check, order id, ok (t/f), detail.
read -r -d '' SQL <<'SQL' || true
WITH o AS (
    SELECT id, status, step, total_cents,
           (step <> 'done' AND deadline > now() - make_interval(secs => :grace)) AS in_flight,
           (step <> 'done') AS unsettled
      FROM orders.orders
     WHERE created_at > now() - (:'since')::interval
),
charges AS (
    SELECT p.order_id,
           count(*) FILTER (WHERE p.status = 'succeeded' AND p.amount_cents > p.refunded_cents) AS charged,
           coalesce(sum(p.amount_cents - p.refunded_cents) FILTER (WHERE p.status = 'succeeded'), 0) AS net_cents
      FROM payments.payments p
     GROUP BY p.order_id
),
stock AS (
    SELECT r.order_id, r.status FROM inventory.reservations r
),
events AS (
    SELECT (e.payload -> 'data' ->> 'order_id') AS order_id,
           array_agg(e.routing_key) AS published,
           count(*) FILTER (WHERE e.published_at IS NULL) AS unpublished
      FROM orders.outbox e
     GROUP BY 1
),
judged AS (
    SELECT o.*, coalesce(c.charged, 0) AS charged, coalesce(c.net_cents, 0) AS net_cents, s.status AS stock_status,
           coalesce(ev.published, '{}') AS published, coalesce(ev.unpublished, 0) AS unpublished
      FROM o
      LEFT JOIN charges c ON c.order_id = o.id::text
      LEFT JOIN stock s ON s.order_id = o.id::text
      LEFT JOIN events ev ON ev.order_id = o.id::text
)
SELECT 'in flight', id, true, status || ' ' || step FROM judged WHERE in_flight
UNION ALL
SELECT 'stuck', id, false, status || ' ' || step || ' past its deadline' FROM judged WHERE unsettled AND NOT in_flight
UNION ALL
SELECT 'charge', id,
       CASE WHEN status = 'CONFIRMED' THEN charged = 1 AND net_cents = total_cents ELSE net_cents = 0 END,
       format('%s: %s net charge(s), %s cents net, total %s', status, charged, net_cents, total_cents)
  FROM judged WHERE NOT unsettled
UNION ALL
SELECT 'stock', id,
       CASE WHEN status = 'CONFIRMED' THEN stock_status = 'committed'
            ELSE coalesce(stock_status, 'none') IN ('none', 'released', 'expired', 'restocked') END,
       format('%s: reservation %s', status, coalesce(stock_status, 'none'))
  FROM judged WHERE NOT unsettled
UNION ALL
SELECT 'events', id,
       unpublished = 0 AND 'order.created' = ANY (published)
       AND (status = 'PENDING' OR ('order.' || lower(status)) = ANY (published)),
       format('%s: published %s, %s not yet', status, array_to_string(published, ' '), unpublished)
  FROM judged WHERE NOT unsettled
SQL

out=$(psql -X -q -d oms -v ON_ERROR_STOP=1 -v since="$SINCE" -v grace="$GRACE" -At -F $'\t' <<<"$SQL" 2>&1) || {
  echo "reconcile: could not read the database: $out" >&2
  exit 2
}

awk -F '\t' '
  NF >= 3 { total[$1]++; if ($3 == "f") { bad[$1]++; lines[++n] = sprintf("  %-8s %s  %s", $1, $2, $4) } }
  END {
    printf "%-10s %8s %10s\n", "check", "orders", "mismatch"
    printf "%-10s %8d %10d\n", "charge", total["charge"], bad["charge"]
    printf "%-10s %8d %10d\n", "stock", total["stock"], bad["stock"]
    printf "%-10s %8d %10d\n", "events", total["events"], bad["events"]
    printf "%-10s %8d %10d\n", "stuck", total["stuck"], bad["stuck"]
    printf "%-10s %8d %10s\n", "in flight", total["in flight"], "-"
    if (n > 0) {
      print ""
      print "mismatches:"
      for (i = 1; i <= n && i <= 200; i++) print lines[i]
      if (n > 200) printf "  ... and %d more\n", n - 200
      exit 1
    }
    print ""
    print "reconcile: every settled order agrees with its payments, stock and events"
  }' <<<"$out"
