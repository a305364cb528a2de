"""user.registered through the outbox: one event per registration, with
DESIGN's body and headers, none lost whatever happens to RabbitMQ or to
the service itself."""
import os
import signal
from concurrent.futures import ThreadPoolExecutor

import pytest

from events import EventQueue
from oms_test import (TEST_PASSWORD, Service, clear_faults, query, rabbitmq_pid, running, stack, unique,
                      wait_until)

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


def register(service, email, headers=None):
    return service.post("/api/users/register", {"email": email, "password": TEST_PASSWORD, "name": "Evented"},
                        headers)


def emails(prefix, n):
    return [f"{prefix}-{i}@example.com" for i in range(n)]


def by_email(events, wanted):
    """{email: [event ids]} of the user.registered events for `wanted`."""
    found = {}
    for e in events:
        email = e.body["data"].get("email")
        if e.routing_key == "user.registered" and email in wanted:
            found.setdefault(email, []).append(e.message_id)
    return found


def all_arrived(wanted):
    return lambda seen: set(by_email(seen, wanted)) == set(wanted)


def outbox_seq(emails_):
    rows = query("SELECT payload->'data'->>'email', seq FROM users.outbox WHERE payload->'data'->>'email' = ANY(%s)",
                 list(emails_))
    return dict(rows)


def assert_each_once_in_order(queue, wanted):
    """Every registration's event arrived; a duplicate only with the same
    id; first arrivals in the order the rows were written (seq)."""
    found = by_email(queue.seen, wanted)
    assert set(found) == set(wanted)
    for email, ids in found.items():
        assert len(set(ids)) == 1, (email, ids)
    rows = query("SELECT payload->>'id', payload->'data'->>'email' FROM users.outbox"
                 " WHERE payload->'data'->>'email' = ANY(%s)", list(wanted))
    assert len(rows) == len(wanted)
    assert {email: event_id for event_id, email in rows} == {email: ids[0] for email, ids in found.items()}
    seq = outbox_seq(wanted)
    first = []
    for e in queue.seen:
        email = e.body["data"].get("email")
        if email in seq and email not in first:
            first.append(email)
    assert [seq[email] for email in first] == sorted(seq[email] for email in first)


@pytest.fixture
def registered_queue():
    queue = EventQueue("user.registered")
    yield queue
    queue.close()


def test_a_registration_publishes_one_user_registered_with_the_request_trace(user_service, registered_queue):
    email = f"{unique('ev-').lower()}@example.com"
    res = register(user_service, email, {"traceparent": f"00-{TRACE_ID}-b7ad6b7169203331-01"})
    assert res.status == 201, res
    registered_queue.wait_for(all_arrived([email]), what="the user.registered event")
    wait_until(lambda: query("SELECT published_at IS NOT NULL FROM users.outbox WHERE payload->'data'->>'email' = %s",
                             email)[0][0], 15, what="the event to be marked published")
    registered_queue.drain()  # anything sent twice is here by now: a published row is not sent again
    events = [e for e in registered_queue.seen if e.body["data"].get("email") == email]
    assert len(events) == 1, events
    event = events[0]
    assert set(event.body) == {"id", "type", "occurred_at", "data"}
    assert event.body["type"] == "user.registered" and event.type == "user.registered"
    assert event.body["data"] == {"user_id": res.json["id"], "email": email, "name": "Evented"}
    assert event.message_id == event.body["id"]
    assert event.delivery_mode == 2 and event.content_type == "application/json"
    version, trace_id, span_id, flags = event.headers["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", TRACE_ID, "01")
    assert span_id != "b7ad6b7169203331"  # the service's own span within the caller's trace


def test_a_refused_registration_publishes_nothing(user_service, registered_queue):
    email = f"{unique('ev-dup-').lower()}@example.com"
    assert register(user_service, email).status == 201
    assert register(user_service, email.upper()).status == 409
    registered_queue.wait_for(all_arrived([email]), what="the first registration's event")
    assert query("SELECT count(*) FROM users.outbox WHERE lower(payload->'data'->>'email') = %s", email)[0][0] == 1


@pytest.fixture
def broker_restored():
    """Whatever the test did to RabbitMQ, it runs again afterwards."""
    yield
    try:
        os.kill(rabbitmq_pid(), signal.SIGCONT)
    except (OSError, AssertionError):
        pass
    stack("start-rabbitmq")


def test_registrations_succeed_while_rabbitmq_is_down_and_every_event_arrives_after(user_service, broker_restored):
    queue = EventQueue("user.registered", durable=True)  # survives the restart
    try:
        wanted = emails(unique("down").lower(), 200)
        stack("stop-rabbitmq")
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda email: register(user_service, email).status, wanted))
        assert statuses == [201] * 200
        assert user_service.get("/health/ready").status == 200  # RabbitMQ is optional
        wait_until(lambda: (user_service.metric("oms_outbox_pending") or 0) >= 200, 30,
                   what="oms_outbox_pending to count the waiting events")
        assert query("SELECT count(*) FROM users.outbox WHERE published_at IS NULL"
                     " AND payload->'data'->>'email' = ANY(%s)", wanted)[0][0] == 200

        stack("start-rabbitmq")
        queue.reconnect()
        queue.wait_for(all_arrived(wanted), timeout=90, what="all 200 events after RabbitMQ returned")
        assert_each_once_in_order(queue, wanted)
        wait_until(lambda: user_service.metric("oms_outbox_pending") == 0, 30, what="the backlog to be gone")
    finally:
        queue.close()


def test_a_frozen_broker_loses_nothing(user_service, broker_restored):
    """SIGSTOP while events are being published: the connection stays open
    but nothing answers, so confirms never come; after SIGCONT every event
    arrives."""
    queue = EventQueue("user.registered")
    try:
        before = emails(unique("frozen-before").lower(), 20)
        for email in before:
            assert register(user_service, email).status == 201
        os.kill(rabbitmq_pid(), signal.SIGSTOP)
        during = emails(unique("frozen-during").lower(), 30)
        for email in during:
            assert register(user_service, email).status == 201
        # the relay gives up on the unconfirmed batch (AMQP_CONFIRM_TIMEOUT_MS)
        wait_until(lambda: (user_service.metric("messaging_messages_total", destination="oms.events",
                                                operation="publish", outcome="failed") or 0) > 0, 60,
                   what="a publish to the frozen broker to fail")
        os.kill(rabbitmq_pid(), signal.SIGCONT)
        queue.wait_for(all_arrived(before + during), timeout=90, what="every event after the thaw")
        assert_each_once_in_order(queue, before + during)
    finally:
        os.kill(rabbitmq_pid(), signal.SIGCONT)
        queue.close()


def hold_lease(holder):
    query("INSERT INTO users.outbox_relay (holder, lease_until) VALUES (%s, now() + interval '1 hour')"
          " ON CONFLICT (singleton) DO UPDATE SET holder = excluded.holder, lease_until = excluded.lease_until",
          holder)


def test_the_relay_killed_mid_batch_loses_nothing():
    """A backlog published in small, slowed batches; the relay's process is
    killed with SIGKILL while some events are out and some not; after the
    restart the rest arrive (and perhaps a batch again: same ids).

    Other user processes of the session relay too (one at a time, by the
    lease in users.outbox_relay), so the test hands the lease to the
    process it is going to kill."""
    prefix = unique("killed").lower()
    wanted = emails(prefix, 600)
    queue = EventQueue("user.registered")
    first = None
    try:
        hold_lease("test:hold:0")  # nobody relays while the backlog is written
        query("SELECT users.outbox_emit('user.registered', jsonb_build_object('email', e, 'name', 'Backlog'))"
              " FROM unnest(%s::text[]) AS e", wanted)

        def published():
            return query("SELECT count(*) FROM users.outbox WHERE published_at IS NOT NULL"
                         " AND payload->'data'->>'email' LIKE %s", prefix + "-%")[0][0]

        first = Service("user", OUTBOX_BATCH_SIZE="20").start()
        first.apply_faults({"user.slow_db_ms": 40})  # each claim and mark waits: batches take a while
        started = wait_until(lambda: [l for l in first.log_lines() if l["msg"] == "outbox relay started"], 15,
                             what="the relay to start")
        hold_lease(started[-1]["holder"])
        wait_until(lambda: published() >= 60, 60, what="some batches to go out")
        first.process.kill()
        first.process.wait()
        done = published()
        assert 0 < done < len(wanted), done  # killed with work left
        clear_faults()
        # the dead holder's lease would run out by itself (30 s); as if it had:
        query("UPDATE users.outbox_relay SET lease_until = now() - interval '1 second'")
        with running("user"):
            queue.wait_for(all_arrived(wanted), timeout=90, what="the rest after the restart")
        assert_each_once_in_order(queue, wanted)
    finally:
        if first is not None and first.process.poll() is None:
            first.process.kill()
            first.process.wait()
        if first is not None:
            first.log.close()
        query("UPDATE users.outbox_relay SET lease_until = now() - interval '1 second' WHERE holder = 'test:hold:0'")
        queue.close()
