"""Helpers for the notification service's tests: events published the way
the outbox relays publish them, the service configured for quick retries,
and the dead letters read back."""
import json
import time
import uuid

import pika
from events import connect

from oms_test import Service, bearer, signed_token, wait_until

QUEUE = "notification.events"
ALERTMANAGER_TOKEN = "test-alertmanager-token-0123456789"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
RETRY_DELAYS_MS = [300, 600, 1200, 2400, 4800]  # 5 retries: 6 attempts over ~9 s


def notification_env(mail, webhook, user=None, **extra):
    env = dict(SMTP_URL=mail.url, WEBHOOK_URL=webhook.url, ALERTMANAGER_TOKEN=ALERTMANAGER_TOKEN,
               USER_URL=f"http://127.0.0.1:{user.port}" if user is not None else "http://127.0.0.1:9",
               NOTIFICATION_RETRY_DELAYS_MS=",".join(map(str, RETRY_DELAYS_MS)), SMTP_TIMEOUT_MS="1000",
               # the shortest claim the service accepts: 2 x (the longest send + a query)
               HTTP_CLIENT_TIMEOUT_MS="1000", PG_QUERY_TIMEOUT_MS="2000",
               NOTIFICATION_CLAIM_LEASE_MS="6000", NOTIFICATION_RECLAIM_INTERVAL_MS="300",
               NOTIFICATION_ADMIN_EMAIL="ops@oms.test")
    env.update(extra)
    return env


def start_notifier(env):
    """A notification service, once it consumes its queue."""
    service = Service("notification", **env).start()
    wait_until(lambda: service.metric("messaging_consumer_up") == 1, 30, what="the consumer to start")
    return service


def purge_queue():
    """Empties notification.events of what earlier tests' services
    published while nobody consumed it."""
    conn = connect()
    try:
        ch = conn.channel()
        ch.queue_declare(QUEUE, passive=True)
        ch.queue_purge(QUEUE)
    except pika.exceptions.ChannelClosedByBroker:
        pass  # not declared yet
    finally:
        if conn.is_open:
            conn.close()


def publish(routing_key, data=None, event_id=None, body=None, traceparent=TRACEPARENT):
    """Publishes one event to oms.events (confirmed); returns its id."""
    event_id = event_id or str(uuid.uuid4())
    if body is None:
        body = json.dumps({"id": event_id, "type": routing_key, "occurred_at": "2026-12-03T10:00:00.000Z",
                           "data": data or {}})
    conn = connect()
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.basic_publish("oms.events", routing_key, body,
                         pika.BasicProperties(message_id=event_id, type=routing_key, delivery_mode=2,
                                              content_type="application/json",
                                              headers={"traceparent": traceparent}),
                         mandatory=True)
    finally:
        conn.close()
    return event_id


class DeadLetters:
    """A queue of the test's own bound to oms.dlx: what is dead-lettered
    from now on."""

    def __init__(self):
        self.conn = connect()
        self.ch = self.conn.channel()
        self.name = self.ch.queue_declare("", exclusive=True, auto_delete=True).method.queue
        self.ch.queue_bind(self.name, "oms.dlx", "#")
        self.seen = []

    def wait_for(self, message_id, timeout=40):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            method, props, body = self.ch.basic_get(self.name, auto_ack=True)
            if method is None:
                time.sleep(0.1)
                continue
            self.seen.append((props, body))
            if props.message_id == message_id:
                return props, body
        raise AssertionError(f"{message_id} was not dead-lettered within {timeout} s")

    def close(self):
        self.conn.close()


class Customer:
    """A customer of the notification service's own: a user id, an address,
    and a token, made known to it by a user.registered event."""

    def __init__(self, name="Ada Lovelace"):
        self.id = str(uuid.uuid4())
        self.email = f"{self.id[:8]}@customers.test"
        self.name = name
        self.headers = bearer(signed_token("customer", self.id))

    def register(self):
        return publish("user.registered", {"user_id": self.id, "email": self.email, "name": self.name})


def order_data(customer, status="CONFIRMED", order_id=None, reason=None):
    return {"order_id": order_id or str(uuid.uuid4()), "user_id": customer.id, "status": status, "reason": reason,
            "items": [{"sku": "LAB-1", "name": "Lab widget", "qty": 2, "unit_price_cents": 1250},
                      {"sku": "LAB-2", "name": "Lab gadget", "qty": 1, "unit_price_cents": 999}],
            "total_cents": 3499, "currency": "EUR", "payment_id": None, "reservation_id": None}


def inbox(service, headers, query=""):
    res = service.get(f"/api/notifications{query}", headers)
    assert res.status == 200, res
    return res.json
