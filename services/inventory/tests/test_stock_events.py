"""inventory.low_stock and inventory.out_of_stock: written with the change
that takes a product across its threshold (a reservation, its release or
expiry, an admin's adjustment), once per crossing, and published."""
import uuid

import pytest

from events import EventQueue
from oms_test import admin_headers, query, service_headers

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


def reserve(inventory, sku, qty, traceparent=None):
    headers = dict(service_headers(), **({"traceparent": traceparent} if traceparent else {}))
    res = inventory.post("/api/inventory/reservations",
                         {"order_id": f"ord-{uuid.uuid4()}", "items": [{"sku": sku, "qty": qty}]}, headers)
    assert res.status == 201, res
    return res.json["id"]


def stock_events(sku):
    """The outbox's events for `sku`, in the order they were written."""
    return [(key, data) for key, data in query(
        "SELECT routing_key, payload->'data' FROM inventory.outbox WHERE payload->'data'->>'sku' = %s ORDER BY seq",
        sku)]


@pytest.fixture
def stock_queue():
    queue = EventQueue("inventory.*")
    yield queue
    queue.close()


def arrived(queue, sku, count):
    return queue.wait_for(lambda seen: len([e for e in seen if e.body["data"].get("sku") == sku]) >= count,
                          what=f"{count} stock events for {sku}")


def test_a_reservation_below_the_threshold_then_to_zero_publishes_one_event_each(inventory, product, stock_queue):
    sku = product(stock=15, threshold=10)
    reserve(inventory, sku, 3)  # 12: still above the threshold
    assert stock_events(sku) == []
    reserve(inventory, sku, 4)  # 8: low
    reserve(inventory, sku, 2)  # 6: still low, no second event
    assert [key for key, _ in stock_events(sku)] == ["inventory.low_stock"]
    reserve(inventory, sku, 6, f"00-{TRACE_ID}-b7ad6b7169203331-01")  # 0: out
    events = stock_events(sku)
    assert [key for key, _ in events] == ["inventory.low_stock", "inventory.out_of_stock"]
    assert events[0][1] == {"sku": sku, "name": f"Test product {sku}", "stock": 8, "reserved": 7, "threshold": 10}
    assert events[1][1]["stock"] == 0

    arrived(stock_queue, sku, 2)
    mine = [e for e in stock_queue.seen if e.body["data"].get("sku") == sku]
    assert [e.routing_key for e in mine] == ["inventory.low_stock", "inventory.out_of_stock"]
    assert [e.body["type"] for e in mine] == ["inventory.low_stock", "inventory.out_of_stock"]
    assert all(e.message_id == e.body["id"] for e in mine)
    assert set(mine[0].body) == {"id", "type", "occurred_at", "data"}
    # the event carries the trace of the reservation that caused it
    assert mine[1].headers["traceparent"].split("-")[1] == TRACE_ID
    assert "traceparent" in mine[0].headers  # its own request's (a new trace)


def test_straight_to_zero_is_one_out_of_stock(inventory, product):
    sku = product(stock=5, threshold=3)
    reserve(inventory, sku, 5)
    assert [key for key, _ in stock_events(sku)] == ["inventory.out_of_stock"]


def test_coming_back_above_the_threshold_rearms_the_event(inventory, product):
    sku = product(stock=12, threshold=10)
    reservation = reserve(inventory, sku, 4)  # 8: low
    res = inventory.post(f"/api/inventory/reservations/{reservation}/release", None, service_headers())
    assert res.status == 200, res  # 12 again: no event for getting better
    assert [key for key, _ in stock_events(sku)] == ["inventory.low_stock"]
    reserve(inventory, sku, 5)  # 7: low again, a new crossing
    assert [key for key, _ in stock_events(sku)] == ["inventory.low_stock", "inventory.low_stock"]


def test_an_admin_adjustment_or_threshold_change_is_a_crossing_too(inventory, product):
    sku = product(stock=20, threshold=5)
    res = inventory.request("PATCH", f"/api/inventory/products/{sku}", {"stock_adjustment": -16},
                            dict(admin_headers(), traceparent=f"00-{TRACE_ID}-b7ad6b7169203331-01"))
    assert res.status == 200, res  # 4: low
    assert [key for key, _ in stock_events(sku)] == ["inventory.low_stock"]
    assert query("SELECT split_part(traceparent, '-', 2) FROM inventory.outbox WHERE payload->'data'->>'sku' = %s",
                 sku) == [(TRACE_ID,)]
    res = inventory.request("PATCH", f"/api/inventory/products/{sku}", {"stock_adjustment": 26}, admin_headers())
    assert res.status == 200, res  # 30
    res = inventory.request("PATCH", f"/api/inventory/products/{sku}", {"low_stock_threshold": 40}, admin_headers())
    assert res.status == 200, res  # 30 <= 40: low by the new threshold
    assert [key for key, _ in stock_events(sku)] == ["inventory.low_stock", "inventory.low_stock"]


def test_a_refused_change_writes_no_event(inventory, product):
    sku = product(stock=4, threshold=2)
    res = inventory.post("/api/inventory/reservations",
                         {"order_id": f"ord-{uuid.uuid4()}", "items": [{"sku": sku, "qty": 9}]}, service_headers())
    assert res.status == 409, res  # insufficient stock: nothing changes
    res = inventory.request("PATCH", f"/api/inventory/products/{sku}", {"stock_adjustment": -9}, admin_headers())
    assert res.status == 422, res
    assert stock_events(sku) == []
