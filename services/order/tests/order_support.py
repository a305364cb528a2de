"""What the order service's tests share: the order service's settings for
tests, customers, and reading stock, payments and the reconciliation."""
import os
import subprocess
import uuid

from oms_test import PG_PORT, PG_SUPERUSER_PASSWORD, ROOT, TEST_CARDS, bearer, query, signed_token

# Short bounds, so that the failure tests settle quickly; the lease must be
# at least twice the charge call's timeout.
ORDER_ENV = dict(ORDER_PENDING_TIMEOUT_S="20", ORDER_PAYMENT_TIMEOUT_MS="3000", ORDER_SAGA_LEASE_S="6",
                 ORDER_RECOVERY_INTERVAL_MS="200")


def order_env(peers, **extra):
    env = dict(ORDER_ENV, INVENTORY_URL=f"http://127.0.0.1:{peers['inventory'].port}",
               PAYMENT_URL=f"http://127.0.0.1:{peers['payment'].port}")
    env.update(extra)
    return env


class Customer:
    def __init__(self):
        self.id = str(uuid.uuid4())
        self.headers = bearer(signed_token("customer", self.id))

    def place(self, service, items, card=TEST_CARDS["ok"], method="card", key=None, timeout=30):
        payment = {"method": method} if method != "card" else {"method": method, "card": card}
        headers = dict(self.headers, **{"Idempotency-Key": key or str(uuid.uuid4())})
        return service.request("POST", "/api/orders", {"items": items, "payment": payment}, headers, timeout=timeout)



def stock_of(sku):
    return query("SELECT stock, reserved FROM inventory.products WHERE sku = %s", sku)[0]


def payments_of(order_id):
    return query("SELECT status, amount_cents, refunded_cents FROM payments.payments WHERE order_id = %s "
                 "ORDER BY created_at", order_id)


def reconcile():
    """scripts/reconcile.sh against the test stack; returns (exit status, output)."""
    env = dict(os.environ, PGHOST="127.0.0.1", PGPORT=str(PG_PORT), PGUSER="postgres",
               PGPASSWORD=PG_SUPERUSER_PASSWORD)
    out = subprocess.run([os.path.join(ROOT, "scripts", "reconcile.sh"), "--since", "1 hour"], env=env,
                         capture_output=True, text=True)
    return out.returncode, out.stdout + out.stderr
