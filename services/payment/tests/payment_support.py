"""What the payment service's tests share: the service's settings for
tests, charging, and reading what PostgreSQL holds."""
import uuid

from oms_test import TEST_CARDS, query, service_headers

# A fast processor, so the suite is quick; a short timeout, so the card that
# never answers fails within a test's patience.
PAYMENT_ENV = dict(PAYMENT_PROCESSOR_LATENCY_MS="5", PAYMENT_PROCESSOR_JITTER_MS="3",
                   PAYMENT_PROCESSOR_TIMEOUT_MS="800")


def charge_body(order_id, amount=2500, card=TEST_CARDS["ok"], method="card", currency="USD"):
    body = {"order_id": order_id, "amount_cents": amount, "currency": currency, "method": method}
    if card is not None:
        body["card"] = card
    return body


class Charger:
    """charge(order_id, ...) -> Response of POST /api/payments."""

    def __init__(self, service):
        self.service = service

    def __call__(self, order_id=None, key=None, headers=None, timeout=15, **terms):
        order_id = order_id or f"ord-{uuid.uuid4()}"
        h = dict(service_headers() if headers is None else headers)
        if key is not None:
            h["Idempotency-Key"] = key
        return self.service.request("POST", "/api/payments", charge_body(order_id, **terms), h, timeout=timeout)


def payments_of(order_id):
    return query("SELECT status, amount_cents, refunded_cents, decline_reason FROM payments.payments "
                 "WHERE order_id = %s", order_id)


def outbox_of(order_id):
    """The (routing key, data) of every event about `order_id`, in order."""
    return [(key, data) for key, data in query(
        "SELECT routing_key, payload->'data' FROM payments.outbox WHERE payload->'data'->>'order_id' = %s "
        "ORDER BY seq", order_id)]


def key_row(scope, key):
    rows = query("SELECT request_hash, response_status, completed_at FROM payments.idempotency_keys "
                 "WHERE scope = %s AND key = %s", scope, key)
    return rows[0] if rows else None
