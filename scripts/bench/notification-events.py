#!/usr/bin/python3
"""Publishes order.confirmed events for scripts/bench-notification.sh.

  notification-events.py customers N               N customers' addresses as SQL (stdin of psql)
  notification-events.py load N [TYPE]             N events, as fast as RabbitMQ takes them (TYPE:
                                                   order.confirmed, or order.created: nothing to send)
  notification-events.py paced RATE SECONDS        RATE events a second for SECONDS

Each event is a confirmed order of one of the N customers (CUSTOMERS in
the environment, default 100), shaped as the order service's outbox
publishes it. AMQP_URL says where (amqp://guest:guest@127.0.0.1:5672/).
Publishing is unconfirmed (the rate is the point); the benchmark counts
what was sent, not what was published.
"""
import json
import os
import sys
import time
import uuid

import pika

CUSTOMERS = int(os.environ.get("CUSTOMERS", "100"))


def customer(i):
    return str(uuid.UUID(int=0xB0B0 << 96 | i))


def event(kind="order.confirmed"):
    order_id = str(uuid.uuid4())
    c = customer(int.from_bytes(os.urandom(2), "big") % CUSTOMERS)
    return order_id, json.dumps({
        "id": str(uuid.uuid4()), "type": kind, "occurred_at": "2026-12-03T10:00:00.000Z",
        "data": {"order_id": order_id, "user_id": c, "status": "CONFIRMED", "reason": None,
                 "items": [{"sku": "BENCH-1", "name": "Bench widget", "qty": 2, "unit_price_cents": 1250},
                           {"sku": "BENCH-2", "name": "Bench gadget", "qty": 1, "unit_price_cents": 999}],
                 "total_cents": 3499, "currency": "EUR", "payment_id": None, "reservation_id": None}})


def channel():
    conn = pika.BlockingConnection(pika.URLParameters(os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")))
    return conn, conn.channel()


def publish(ch, body):
    doc = json.loads(body)
    ch.basic_publish("oms.events", doc["type"], body,
                     pika.BasicProperties(message_id=doc["id"], type=doc["type"], delivery_mode=2,
                                          content_type="application/json",
                                          headers={"traceparent": "00-%s-%s-01" % (uuid.uuid4().hex, os.urandom(8).hex())}))


def main():
    mode = sys.argv[1]
    if mode == "customers":
        for i in range(int(sys.argv[2])):
            print("INSERT INTO notifications.recipients (user_id, email, name) VALUES ('%s', 'bench%d@customers.test',"
                  " 'Bench Customer %d') ON CONFLICT DO NOTHING;" % (customer(i), i, i))
        return 0
    conn, ch = channel()
    if mode == "load":
        kind = sys.argv[3] if len(sys.argv) > 3 else "order.confirmed"
        for _ in range(int(sys.argv[2])):
            publish(ch, event(kind)[1])
    elif mode == "paced":
        rate, seconds = float(sys.argv[2]), float(sys.argv[3])
        start, sent = time.monotonic(), 0
        while time.monotonic() - start < seconds:
            due = int((time.monotonic() - start) * rate)
            while sent < due:
                publish(ch, event()[1])
                sent += 1
            conn.sleep(0.005)  # the pacing's tick, not a wait for a condition
        print(sent)
    conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
