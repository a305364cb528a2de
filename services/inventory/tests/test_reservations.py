"""Reservations: all-or-nothing holds, idempotency, commit/release, expiry,
and the race for the last units."""
import threading
import time
import uuid

import pytest

from oms_test import Service, query, raw_request


def order_id():
    return f"ord-{uuid.uuid4()}"


def levels(*skus):
    rows = query("SELECT sku, stock, reserved FROM inventory.products WHERE sku = ANY(%s)", list(skus))
    return {sku: (stock, reserved) for sku, stock, reserved in rows}


def reservation_count():
    return query("SELECT count(*) FROM inventory.reservations")[0][0]


def reserve(inventory, oid, items):
    return inventory.post("/api/inventory/reservations", {"order_id": oid, "items": items})


def test_hold_commit_flow(inventory, product):
    a, b = product(stock=10), product(stock=5)
    oid = order_id()
    res = reserve(inventory, oid, [{"sku": a, "qty": 3}, {"sku": b, "qty": 5}])
    assert res.status == 201, res
    doc = res.json
    assert doc["status"] == "held" and doc["order_id"] == oid
    assert sorted((i["sku"], i["qty"]) for i in doc["items"]) == sorted([(a, 3), (b, 5)])
    assert levels(a, b) == {a: (7, 3), b: (0, 5)}
    # the API reflects the hold at once (cache invalidated before the answer)
    assert inventory.get(f"/api/inventory/products/{a}").json["stock"] == 7

    commit = inventory.post(f"/api/inventory/reservations/{doc['id']}/commit")
    assert commit.status == 200 and commit.json["status"] == "committed"
    assert levels(a, b) == {a: (7, 0), b: (0, 0)}
    # idempotent: the same answer again, no further change
    again = inventory.post(f"/api/inventory/reservations/{doc['id']}/commit")
    assert again.status == 200 and again.json["status"] == "committed"
    assert levels(a, b) == {a: (7, 0), b: (0, 0)}
    # a committed reservation cannot be released
    release = inventory.post(f"/api/inventory/reservations/{doc['id']}/release")
    assert release.status == 409 and release.error_code() == "reservation_committed"
    assert levels(a, b) == {a: (7, 0), b: (0, 0)}


def test_hold_release_flow(inventory, product):
    a = product(stock=10)
    res = reserve(inventory, order_id(), [{"sku": a, "qty": 4}])
    rid = res.json["id"]
    release = inventory.post(f"/api/inventory/reservations/{rid}/release")
    assert release.status == 200 and release.json["status"] == "released"
    assert levels(a) == {a: (10, 0)}
    again = inventory.post(f"/api/inventory/reservations/{rid}/release")
    assert again.status == 200 and again.json["status"] == "released"
    assert levels(a) == {a: (10, 0)}
    commit = inventory.post(f"/api/inventory/reservations/{rid}/commit")
    assert commit.status == 409 and commit.error_code() == "reservation_released"
    assert levels(a) == {a: (10, 0)}


def test_reserve_is_idempotent_on_order_id(inventory, product):
    a, b = product(stock=10), product(stock=10)
    oid = order_id()
    first = reserve(inventory, oid, [{"sku": a, "qty": 2}, {"sku": b, "qty": 1}])
    assert first.status == 201
    # the same items in another order are the same request
    second = reserve(inventory, oid, [{"sku": b, "qty": 1}, {"sku": a, "qty": 2}])
    assert second.status == 200 and second.json["id"] == first.json["id"]
    assert levels(a, b) == {a: (8, 2), b: (9, 1)}
    different = reserve(inventory, oid, [{"sku": a, "qty": 3}])
    assert different.status == 409 and different.error_code() == "idempotency_conflict"
    assert levels(a, b) == {a: (8, 2), b: (9, 1)}


def test_all_or_nothing(inventory, product):
    a, b = product(stock=10), product(stock=2)
    count = reservation_count()
    res = reserve(inventory, order_id(), [{"sku": a, "qty": 5}, {"sku": b, "qty": 3}])
    assert res.status == 409 and res.error_code() == "insufficient_stock"
    error = res.json["error"]
    assert error["sku"] == b and error["requested"] == 3 and error["available"] == 2
    assert b in error["message"]
    assert levels(a, b) == {a: (10, 0), b: (2, 0)}
    assert reservation_count() == count


def test_unknown_sku_changes_nothing(inventory, product):
    a = product(stock=10)
    count = reservation_count()
    res = reserve(inventory, order_id(), [{"sku": a, "qty": 1}, {"sku": "NOPE-9999", "qty": 1}])
    assert res.status == 422 and res.error_code() == "unknown_sku"
    assert res.json["error"]["sku"] == "NOPE-9999"
    assert levels(a) == {a: (10, 0)}
    assert reservation_count() == count


BAD_BODIES = [
    ("malformed json", b'{"order_id": "x", "items": [', "application/json", 400, None),
    ("not an object", b'[{"sku": "A-1", "qty": 1}]', "application/json", 400, None),
    ("empty body", b"", "application/json", 400, None),
    ("form content type", b'{"order_id":"x","items":[{"sku":"ELEC-HDPH-001","qty":1}]}',
     "application/x-www-form-urlencoded", 415, None),
    ("missing order_id", {"items": [{"sku": "ELEC-HDPH-001", "qty": 1}]}, None, 400, "order_id"),
    ("order_id wrong type", {"order_id": 42, "items": [{"sku": "ELEC-HDPH-001", "qty": 1}]}, None, 400,
     "order_id"),
    ("order_id with spaces", {"order_id": "a b", "items": [{"sku": "ELEC-HDPH-001", "qty": 1}]}, None, 400,
     "order_id"),
    ("no items", {"order_id": "x1", "items": []}, None, 400, "items"),
    ("items not a list", {"order_id": "x1", "items": {"sku": "ELEC-HDPH-001"}}, None, 400, "items"),
    ("item not an object", {"order_id": "x1", "items": ["ELEC-HDPH-001"]}, None, 400, "items[0]"),
    ("zero qty", {"order_id": "x1", "items": [{"sku": "ELEC-HDPH-001", "qty": 0}]}, None, 400, "items[0].qty"),
    ("negative qty", {"order_id": "x1", "items": [{"sku": "ELEC-HDPH-001", "qty": -2}]}, None, 400,
     "items[0].qty"),
    ("fractional qty", {"order_id": "x1", "items": [{"sku": "ELEC-HDPH-001", "qty": 1.5}]}, None, 400,
     "items[0].qty"),
    ("string qty", {"order_id": "x1", "items": [{"sku": "ELEC-HDPH-001", "qty": "1"}]}, None, 400,
     "items[0].qty"),
    ("huge qty", {"order_id": "x1", "items": [{"sku": "ELEC-HDPH-001", "qty": 10**12}]}, None, 400,
     "items[0].qty"),
    ("malformed sku", {"order_id": "x1", "items": [{"sku": "elec'; drop", "qty": 1}]}, None, 400,
     "items[0].sku"),
    ("duplicate sku", {"order_id": "x1", "items": [{"sku": "ELEC-HDPH-001", "qty": 1},
                                                   {"sku": "ELEC-HDPH-001", "qty": 1}]}, None, 400,
     "items[1].sku"),
    ("unknown field", {"order_id": "x1", "items": [{"sku": "ELEC-HDPH-001", "qty": 1}], "coupon": "X"}, None, 400,
     "coupon"),
    ("unknown item field", {"order_id": "x1", "items": [{"sku": "ELEC-HDPH-001", "quantity": 1}]}, None, 400,
     "items[0].quantity"),
]


@pytest.mark.parametrize("name,body,content_type,status,field", BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_reservation_input_changes_nothing(inventory, name, body, content_type, status, field):
    before_levels = query("SELECT sku, stock, reserved FROM inventory.products ORDER BY sku")
    before_count = reservation_count()
    if isinstance(body, dict):
        res = inventory.post("/api/inventory/reservations", body)
    else:
        res = inventory.post("/api/inventory/reservations", raw=body, headers={"Content-Type": content_type})
    assert res.status == status, res
    res.error_code()
    if field is not None:
        assert res.json["error"]["field"] == field, res
    assert reservation_count() == before_count
    assert query("SELECT sku, stock, reserved FROM inventory.products ORDER BY sku") == before_levels


def test_oversized_body_is_refused(inventory):
    """A body over MAX_BODY_BYTES (1 MiB) is refused from its Content-Length,
    before it is read, with DESIGN's JSON error."""
    import json
    before_count = reservation_count()
    status, head, body = raw_request(inventory.port, b"POST /api/inventory/reservations HTTP/1.1\r\nHost: x\r\n"
                                     b"Content-Type: application/json\r\nContent-Length: 1048586\r\n\r\n{")
    assert status == 413
    assert b"content-type: application/json" in head
    assert json.loads(body)["error"]["code"] == "payload_too_large"
    assert reservation_count() == before_count


@pytest.mark.parametrize("rid,status", [("not-a-uuid", 400), ("00000000-0000-0000-0000-000000000000", 404)])
def test_commit_and_release_of_unknown_reservations(inventory, rid, status):
    for action in ("commit", "release"):
        res = inventory.post(f"/api/inventory/reservations/{rid}/{action}")
        assert res.status == status, res
        res.error_code()


def test_fifty_concurrent_reservations_sell_exactly_the_stock(inventory, product):
    sku = product(stock=10)
    results = []
    lock = threading.Lock()
    start = threading.Barrier(50)

    def attempt():
        start.wait()
        res = reserve(inventory, order_id(), [{"sku": sku, "qty": 1}])
        with lock:
            results.append(res)

    threads = [threading.Thread(target=attempt) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r.status for r in results)
    assert statuses.count(201) == 10, statuses
    assert statuses.count(409) == 40, statuses
    assert all(r.error_code() == "insufficient_stock" for r in results if r.status == 409)
    assert levels(sku) == {sku: (0, 10)}
    held = query("SELECT coalesce(sum(i.qty), 0) FROM inventory.reservation_items i "
                 "JOIN inventory.reservations r ON r.id = i.reservation_id "
                 "WHERE i.sku = %s AND r.status = 'held'", sku)[0][0]
    assert held == 10


def test_held_reservations_expire_and_stock_returns(product):
    # A second instance with a one-second hold, so this test does not wait 15 minutes.
    short = Service("inventory", RESERVATION_TTL_SECONDS=1, RESERVATION_SWEEP_INTERVAL_MS=100).start()
    try:
        sku = product(stock=10)
        res = short.post("/api/inventory/reservations", {"order_id": order_id(), "items": [{"sku": sku, "qty": 6}]})
        assert res.status == 201
        assert levels(sku) == {sku: (4, 6)}
        deadline = time.monotonic() + 10
        while query("SELECT status FROM inventory.reservations WHERE id = %s", res.json["id"])[0][0] != "expired":
            assert time.monotonic() < deadline, "reservation did not expire"
            time.sleep(0.1)
        assert levels(sku) == {sku: (10, 0)}
        commit = short.post(f"/api/inventory/reservations/{res.json['id']}/commit")
        assert commit.status == 409 and commit.error_code() == "reservation_expired"
        assert levels(sku) == {sku: (10, 0)}
        assert short.get(f"/api/inventory/products/{sku}").json["stock"] == 10
    finally:
        assert short.stop() == 0


def test_commit_of_an_expired_hold_is_refused_even_before_the_sweep(product):
    # No sweep for ten minutes: commit itself must notice the hold is over.
    slow_sweep = Service("inventory", RESERVATION_TTL_SECONDS=1, RESERVATION_SWEEP_INTERVAL_MS=600000).start()
    try:
        sku = product(stock=5)
        res = slow_sweep.post("/api/inventory/reservations",
                              {"order_id": order_id(), "items": [{"sku": sku, "qty": 5}]})
        assert res.status == 201
        time.sleep(1.3)
        commit = slow_sweep.post(f"/api/inventory/reservations/{res.json['id']}/commit")
        assert commit.status == 409 and commit.error_code() == "reservation_expired"
        assert levels(sku) == {sku: (5, 0)}
    finally:
        assert slow_sweep.stop() == 0
