"""Whatever dies when, every order reaches a final state and agrees with
its payment, its stock and its events: the order service killed mid-saga,
RabbitMQ stopped while orders are placed."""
import signal
import threading

import pytest
from events import EventQueue
from order_support import Customer, order_env, payments_of, reconcile, stock_of

from oms_test import Service, query, stack, wait_until


def saga_step(order_id):
    rows = query("SELECT status, step FROM orders.orders WHERE id = %s", order_id)
    return rows[0] if rows else None


def only_order_of(customer):
    rows = query("SELECT id::text FROM orders.orders WHERE user_id = %s", customer.id)
    return rows[0][0] if len(rows) == 1 else None


def place_in_background(service, customer, sku):
    """Places an order on a thread that does not wait for the answer (the
    service is killed under it)."""
    def place():
        try:
            customer.place(service, [{"sku": sku, "qty": 2}], timeout=30)
        except OSError:
            pass  # the connection dies with the service

    thread = threading.Thread(target=place, daemon=True)
    thread.start()
    return thread


def kill_at_step(service, customer, step):
    """Waits until the customer's order is at `step`, then SIGKILLs the
    order service and returns the order's id."""
    order_id = wait_until(lambda: only_order_of(customer), 20, interval=0.02, what="the order written")
    wait_until(lambda: saga_step(order_id) == ("PENDING", step), 20, interval=0.01, what=f"the saga at {step}")
    service.process.send_signal(signal.SIGKILL)
    service.process.wait(10)
    service.log.close()
    assert saga_step(order_id) == ("PENDING", step)
    return order_id


def restart_and_settle(peers, port, order_id):
    """A new order process on the same port: recovery drives the order on."""
    service = Service("order", port=port, **order_env(peers)).start()
    try:
        wait_until(lambda: saga_step(order_id)[1] == "done", 40, interval=0.1, what="the recovered saga to finish")
        history = query("SELECT step FROM orders.order_history WHERE order_id = %s ORDER BY seq", order_id)
        wait_until(lambda: query("SELECT count(*) FROM orders.outbox WHERE published_at IS NULL")[0][0] == 0, 30,
                   what="the recovered order's events published")
        status, out = reconcile()
        assert status == 0, out
        return saga_step(order_id)[0], [h[0] for h in history]
    finally:
        assert service.stop() == 0, service.read_log()[-3000:]


def test_killed_between_reserve_and_charge(peers, product):
    sku = product(stock=10)
    customer = Customer()
    service = Service("order", **order_env(peers)).start()
    peers["payment"].apply_faults({"payment.latency_ms": 2500})  # the charge call is in flight
    try:
        place_in_background(service, customer, sku)
        order_id = kill_at_step(service, customer, "charge")
    finally:
        peers["payment"].apply_faults({"payment.latency_ms": 0})
    assert stock_of(sku) == (8, 2)  # held, not yet charged
    status, steps = restart_and_settle(peers, service.port, order_id)
    assert status in ("CONFIRMED", "FAILED"), steps
    charged = [p for p in payments_of(order_id) if p[0] == "succeeded" and p[1] > p[2]]
    if status == "CONFIRMED":
        assert len(charged) == 1 and stock_of(sku) == (8, 0)
    else:
        assert charged == [] and stock_of(sku) == (10, 0)


def test_killed_between_charge_and_confirm(peers, product):
    sku = product(stock=10)
    customer = Customer()
    service = Service("order", **order_env(peers)).start()
    peers["payment"].apply_faults({"payment.latency_ms": 2500})
    try:
        place_in_background(service, customer, sku)
        order_id = wait_until(lambda: only_order_of(customer), 20, interval=0.02, what="the order written")
        wait_until(lambda: saga_step(order_id) == ("PENDING", "charge"), 20, interval=0.01, what="the charge")
        peers["inventory"].apply_faults({"inventory.latency_ms": 5000})  # the commit call will hang
        order_id = kill_at_step(service, customer, "commit")
    finally:
        peers["payment"].apply_faults({"payment.latency_ms": 0})
        peers["inventory"].apply_faults({"inventory.latency_ms": 0})
    assert [p[0] for p in payments_of(order_id)] == ["succeeded"]  # charged, not confirmed
    status, steps = restart_and_settle(peers, service.port, order_id)
    assert status == "CONFIRMED", steps  # the commit is retried: nothing else is needed
    assert stock_of(sku) == (8, 0)
    assert [p[0] for p in payments_of(order_id)] == ["succeeded"]


@pytest.fixture
def broker_restored():
    yield
    stack("start-rabbitmq")


def test_orders_placed_while_rabbitmq_is_down_lose_no_event(orders, product, broker_restored):
    sku = product(stock=20)
    queue = EventQueue("order.*", durable=True)  # survives the restart
    try:
        stack("stop-rabbitmq")
        placed = []
        for _ in range(5):
            res = Customer().place(orders, [{"sku": sku, "qty": 1}])
            assert res.status == 201, res  # RabbitMQ is optional: the events wait in the outbox
            placed.append(res.json["id"])
        assert query("SELECT count(*) FROM orders.outbox WHERE published_at IS NULL"
                     " AND payload->'data'->>'order_id' = ANY(%s)", placed)[0][0] == 10
        stack("start-rabbitmq")
        queue.reconnect()

        def arrived(seen):
            got = {(e.body["data"]["order_id"], e.routing_key) for e in seen}
            return all((o, k) in got for o in placed for k in ("order.created", "order.confirmed"))

        queue.wait_for(arrived, timeout=90, what="every order's events after RabbitMQ returned")
        for order_id in placed:
            keys = [e.routing_key for e in queue.seen if e.body["data"]["order_id"] == order_id]
            assert keys.index("order.created") < keys.index("order.confirmed"), keys
    finally:
        queue.close()
