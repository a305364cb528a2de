"""Reading the events the services publish: a queue of the test's own bound
to oms.events on the test stack's RabbitMQ (pika, blocking)."""
import json
import time
import uuid

import pika

from oms_test import AMQP_PORT

EXCHANGE = "oms.events"


class Event:
    def __init__(self, method, properties, body):
        self.routing_key = method.routing_key
        self.message_id = properties.message_id
        self.type = properties.type
        self.delivery_mode = properties.delivery_mode
        self.content_type = properties.content_type
        self.headers = properties.headers or {}
        self.body = json.loads(body)

    def __repr__(self):
        return f"Event({self.routing_key}, {self.message_id}, {self.body})"


def connect():
    params = pika.ConnectionParameters(host="127.0.0.1", port=AMQP_PORT,
                                       credentials=pika.PlainCredentials("guest", "guest"),
                                       connection_attempts=1, socket_timeout=5, blocked_connection_timeout=10)
    return pika.BlockingConnection(params)


class EventQueue:
    """A queue bound to oms.events with `bindings`. Durable ones outlive a
    broker restart (the messages the relay publishes are persistent);
    close() deletes the queue either way."""

    def __init__(self, *bindings, durable=False):
        self.name = f"test.{uuid.uuid4().hex[:12]}"
        self.durable = durable
        self.bindings = bindings
        self.seen = []
        self._open()
        # the exchange exists once any service has connected; declaring it
        # here too (same arguments) keeps the test independent of that
        self.channel.exchange_declare(EXCHANGE, exchange_type="topic", durable=True)
        self.channel.queue_declare(self.name, durable=durable, exclusive=False, auto_delete=False)
        for binding in bindings:
            self.channel.queue_bind(self.name, EXCHANGE, binding)

    def _open(self):
        self.connection = connect()
        self.channel = self.connection.channel()

    def reconnect(self, timeout=60):
        """After a broker restart: a new connection, once it accepts one."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._open()
                return
            except pika.exceptions.AMQPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def drain(self):
        """Every message waiting now, acknowledged, appended to `seen`."""
        got = []
        while True:
            method, properties, body = self.channel.basic_get(self.name, auto_ack=True)
            if method is None:
                break
            got.append(Event(method, properties, body))
        self.seen.extend(got)
        return got

    def wait_for(self, predicate, timeout=30, what="events"):
        """Polls until predicate(seen) holds; returns `seen`."""
        deadline = time.monotonic() + timeout
        while True:
            self.drain()
            if predicate(self.seen):
                return self.seen
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; got {len(self.seen)}: "
                                     f"{self.seen[-5:]}")
            time.sleep(0.05)

    def close(self):
        try:
            if not self.connection.is_open:
                self._open()
            self.channel.queue_delete(self.name)
            self.connection.close()
        except pika.exceptions.AMQPError:
            pass
