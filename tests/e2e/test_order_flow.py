"""The order saga end to end, as a learner drives it: through the native
gateway, a lab customer logs in at the user service, places an order (the
order service reserves at inventory and charges at payment with service
tokens), reads it back, and the events arrive on RabbitMQ in order."""
import os
import uuid

import pytest
from events import EventQueue

from oms_test import STACK_DIR, TEST_CARDS, Service, admin_headers, client_ip, query, request, unique, wait_until
from test_native_gateway import Gateway


@pytest.fixture(scope="module")
def lab(stack_sh, private_ports):
    inventory = Service("inventory").start()
    payment = Service("payment").start()
    user = Service("user").start()
    order = Service("order", INVENTORY_URL=f"http://127.0.0.1:{inventory.port}",
                    PAYMENT_URL=f"http://127.0.0.1:{payment.port}").start()
    (port,) = private_ports(1)
    gateway = Gateway(stack_sh, os.path.join(STACK_DIR, "order-flow-gateway"), port, inventory.port, user.port)
    gateway.env.update(ORDER_PORT=order.port, PAYMENT_PORT=payment.port)
    gateway.start()
    yield {"gateway": gateway, "inventory": inventory, "order": order, "payment": payment, "user": user}
    gateway.stop()
    for service in (order, user, payment, inventory):
        assert service.stop() == 0, service.read_log()[-3000:]


def test_a_lab_customer_orders_through_the_gateway_and_the_events_follow_in_order(lab):
    gw = lab["gateway"]
    sku = unique("E2E-")
    created = request(lab["inventory"].port, "POST", "/api/inventory/products",
                      {"sku": sku, "name": "End-to-end widget", "category": "lab-tests", "price_cents": 2599,
                       "stock": 5}, admin_headers())
    assert created.status == 201, created
    login = request(gw.port, "POST", "/api/users/login",
                    {"email": "customer007@oms.example.com", "password": "LabCustomer-007"},
                    {"X-Forwarded-For": client_ip()})
    assert login.status == 200, login
    auth = {"Authorization": f"Bearer {login.json['token']}"}
    queue = EventQueue("order.*", "payment.*")
    try:
        res = request(gw.port, "POST", "/api/orders",
                      {"items": [{"sku": sku, "qty": 2}], "payment": {"method": "card", "card": TEST_CARDS["ok"]}},
                      dict(auth, **{"Idempotency-Key": str(uuid.uuid4())}), timeout=30)
        assert res.status == 201, res
        order = res.json
        assert order["status"] == "CONFIRMED" and order["total_cents"] == 2 * 2599
        got = request(gw.port, "GET", f"/api/orders/{order['id']}", headers=auth)
        assert got.status == 200 and got.json["status"] == "CONFIRMED"
        assert [h["status"] for h in got.json["history"]][-1] == "CONFIRMED"
        mine = request(gw.port, "GET", "/api/orders?limit=5", headers=auth).json
        assert order["id"] in [o["id"] for o in mine["items"]]
        assert query("SELECT stock, reserved FROM inventory.products WHERE sku = %s", sku) == [(3, 0)]

        def order_events(seen):
            return [e for e in seen if e.body["data"].get("order_id") == order["id"]]

        queue.wait_for(lambda seen: {e.routing_key for e in order_events(seen)} >=
                       {"order.created", "payment.succeeded", "order.confirmed"}, what="the order's events")
        keys = [e.routing_key for e in order_events(queue.seen) if e.routing_key.startswith("order.")]
        assert keys == ["order.created", "order.confirmed"], keys
        # every event carries the trace of the request that caused it
        trace_id = res.headers["traceparent"].split("-")[1]
        assert all(e.headers.get("traceparent", "").split("-")[1] == trace_id for e in order_events(queue.seen))
    finally:
        queue.close()
    # payments are internal: the gateway routes them, the service refuses a customer
    assert request(gw.port, "GET", f"/api/payments?order_id={order['id']}", headers=auth).status == 403
