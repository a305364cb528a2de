"""The order saga through the order service, with the real inventory and
payment services beside it: outcomes, idempotency, cancel, concurrency,
and input that must change nothing."""
import json
import threading
import uuid

import pytest
from events import EventQueue
from order_support import TEST_CARDS, Customer, payments_of, reconcile, stock_of

from oms_test import admin_headers, bearer, query, service_headers, signed_token, wait_until


def order_count(user_id):
    return query("SELECT count(*) FROM orders.orders WHERE user_id = %s", user_id)[0][0]


def failed_order(res, reason, status):
    assert res.status == status, res
    assert res.error_code() == reason, res
    order = res.json["error"]["order"]
    assert order["status"] == "FAILED" and order["reason"] == reason
    return order


def test_an_order_is_confirmed_priced_by_inventory_charged_once_and_its_events_follow(orders, product, customer):
    a, b = product(stock=10, price=1250), product(stock=5, price=399)
    queue = EventQueue("order.*", "payment.*")
    try:
        res = customer.place(orders, [{"sku": b, "qty": 2}, {"sku": a, "qty": 3}])
        assert res.status == 201, res
        order = res.json
        assert order["status"] == "CONFIRMED" and order["reason"] is None
        assert order["user_id"] == customer.id
        assert order["total_cents"] == 3 * 1250 + 2 * 399 and order["currency"] == "USD"
        assert {i["sku"]: (i["qty"], i["unit_price_cents"]) for i in order["items"]} == {a: (3, 1250), b: (2, 399)}
        assert order["payment"] == {"method": "card", "card_last4": "4242"}
        assert [h["step"] for h in order["history"]] == ["reserve", "charge", "commit", "done"]
        assert [h["status"] for h in order["history"]][-1] == "CONFIRMED"
        assert stock_of(a) == (7, 0) and stock_of(b) == (3, 0)  # committed
        assert payments_of(order["id"]) == [("succeeded", order["total_cents"], 0)]
        # the card is forgotten once the order has settled
        assert query("SELECT payment_card FROM orders.orders WHERE id = %s", order["id"]) == [(None,)]
        mine = [e for e in queue.wait_for(
            lambda seen: {"order.created", "order.confirmed", "payment.succeeded"} <= {
                e.routing_key for e in seen if e.body["data"].get("order_id") == order["id"]}, what="the events")
            if e.body["data"].get("order_id") == order["id"]]
        keys = [e.routing_key for e in mine]
        assert keys.index("order.created") < keys.index("order.confirmed")
        assert all(e.message_id == e.body["id"] for e in mine)
        confirmed = next(e for e in mine if e.routing_key == "order.confirmed")
        assert confirmed.body["data"]["total_cents"] == order["total_cents"]
        assert "card" not in json.dumps(confirmed.body["data"])
    finally:
        queue.close()
    # the owner reads it back with the same history
    got = orders.get(f"/api/orders/{order['id']}", customer.headers)
    assert got.status == 200 and got.json["history"] == order["history"]
    assert orders.metric("oms_orders_total", status="CONFIRMED") >= 1


def test_out_of_stock_fails_the_order_and_charges_nothing(orders, product, customer):
    sku = product(stock=2)
    order = failed_order(customer.place(orders, [{"sku": sku, "qty": 3}]), "insufficient_stock", 409)
    assert stock_of(sku) == (2, 0)
    assert payments_of(order["id"]) == []


def test_a_declined_card_fails_the_order_and_gives_the_stock_back(orders, product, customer):
    sku = product(stock=5)
    order = failed_order(customer.place(orders, [{"sku": sku, "qty": 2}], card=TEST_CARDS["insufficient_funds"]),
                         "payment_declined", 402)
    wait_until(lambda: stock_of(sku) == (5, 0), 15, what="the reservation released")
    assert [p[0] for p in payments_of(order["id"])] == ["declined"]
    final = wait_until(lambda: (o := orders.get(f"/api/orders/{order['id']}", customer.headers).json)["step"] == "done"
                       and o, 15, what="the compensation to finish")
    assert [h["step"] for h in final["history"]] == ["reserve", "charge", "release", "done"]


def test_a_card_declined_above_an_amount(orders, product, customer):
    cheap, dear = product(stock=5, price=5000), product(stock=5, price=20000)
    assert customer.place(orders, [{"sku": cheap, "qty": 1}], card=TEST_CARDS["limit"]).status == 201
    failed_order(customer.place(orders, [{"sku": dear, "qty": 1}], card=TEST_CARDS["limit"]), "payment_declined", 402)


def test_a_timing_out_card_fails_the_order_in_time_and_charges_nothing(orders, product, customer):
    sku = product(stock=5)
    order = failed_order(customer.place(orders, [{"sku": sku, "qty": 1}], card=TEST_CARDS["timeout"]), "timeout", 504)
    wait_until(lambda: stock_of(sku) == (5, 0), 15, what="the reservation released")
    assert all(p[0] != "succeeded" for p in payments_of(order["id"]))


def test_payment_unreachable_fails_the_order_within_the_bound_and_never_charges(orders, peers, product, customer):
    sku = product(stock=5)
    peers["payment"].apply_faults({"payment.unreachable": 1})
    res = customer.place(orders, [{"sku": sku, "qty": 1}])
    peers["payment"].apply_faults({"payment.unreachable": 0})
    order = failed_order(res, "payment_unavailable", 503)
    assert "void" in [h["step"] for h in order["history"]]  # the fence against a late charge
    wait_until(lambda: stock_of(sku) == (5, 0), 15, what="the reservation released")
    # a charge for the order can no longer succeed
    late = peers["payment"].post("/api/payments", {"order_id": order["id"], "amount_cents": order["total_cents"],
                                                   "currency": "USD", "method": "wallet"}, service_headers())
    assert late.status == 409 and late.error_code() == "payment_voided", late
    assert all(p[0] != "succeeded" for p in payments_of(order["id"]))


def test_the_same_key_replayed_and_raced_makes_one_order_and_one_charge(orders, product, customer):
    sku = product(stock=50)
    key = str(uuid.uuid4())
    results = [None] * 20
    barrier = threading.Barrier(20)

    def place(i):
        barrier.wait()
        results[i] = customer.place(orders, [{"sku": sku, "qty": 1}], key=key)

    threads = [threading.Thread(target=place, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(r is not None for r in results)
    assert {r.status for r in results} <= {201, 202}, results
    ids = {r.json["id"] for r in results}
    assert len(ids) == 1, ids
    order_id = ids.pop()
    wait_until(lambda: orders.get(f"/api/orders/{order_id}", customer.headers).json["status"] == "CONFIRMED", 15,
               what="the order confirmed")
    assert order_count(customer.id) == 1
    assert [p[0] for p in payments_of(order_id)] == ["succeeded"]
    assert stock_of(sku) == (49, 0)
    # a later replay gets the same order; the same key with another body is refused
    again = customer.place(orders, [{"sku": sku, "qty": 1}], key=key)
    assert again.status == 201 and again.json["id"] == order_id
    other = customer.place(orders, [{"sku": sku, "qty": 2}], key=key)
    assert other.status == 422 and other.error_code() == "idempotency_key_reused", other
    assert order_count(customer.id) == 1 and stock_of(sku) == (49, 0)
    # keys belong to their customer: another one's same key is a new order
    assert Customer().place(orders, [{"sku": sku, "qty": 1}], key=key).json["id"] != order_id


def test_cancel_refunds_and_restocks_once(orders, product, customer):
    sku = product(stock=5, price=1000)
    order = customer.place(orders, [{"sku": sku, "qty": 2}]).json
    assert stock_of(sku) == (3, 0)
    res = orders.post(f"/api/orders/{order['id']}/cancel", headers=customer.headers)
    assert res.status == 200 and res.json["status"] == "CANCELLED", res
    assert [h["step"] for h in res.json["history"]][-3:] == ["cancel_refund", "cancel_restock", "done"]
    assert stock_of(sku) == (5, 0)
    assert payments_of(order["id"]) == [("succeeded", 2000, 2000)]
    again = orders.post(f"/api/orders/{order['id']}/cancel", headers=customer.headers)  # idempotent
    assert again.status == 200 and again.json["status"] == "CANCELLED"
    assert stock_of(sku) == (5, 0) and payments_of(order["id"]) == [("succeeded", 2000, 2000)]


def test_only_confirmed_orders_can_be_cancelled_and_only_by_their_owner_or_an_admin(orders, product, customer):
    sku = product(stock=1)
    failed = customer.place(orders, [{"sku": sku, "qty": 2}]).json["error"]["order"]
    res = orders.post(f"/api/orders/{failed['id']}/cancel", headers=customer.headers)
    assert res.status == 409 and res.error_code() == "order_not_cancellable", res
    confirmed = customer.place(orders, [{"sku": sku, "qty": 1}]).json
    stranger = Customer()
    res = orders.post(f"/api/orders/{confirmed['id']}/cancel", headers=stranger.headers)
    assert res.status == 404 and res.error_code() == "not_found"
    assert stock_of(sku) == (0, 0)
    admin = bearer(signed_token("admin", str(uuid.uuid4())))
    res = orders.post(f"/api/orders/{confirmed['id']}/cancel", headers=admin)
    assert res.status == 200 and res.json["status"] == "CANCELLED"
    assert stock_of(sku) == (1, 0)


def test_fifty_concurrent_orders_for_the_last_ten_units_confirm_exactly_ten(orders, product):
    sku = product(stock=10)
    results = [None] * 50
    barrier = threading.Barrier(50)

    def place(i):
        barrier.wait()
        results[i] = Customer().place(orders, [{"sku": sku, "qty": 1}], timeout=60)

    threads = [threading.Thread(target=place, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    statuses = sorted(r.status for r in results)
    assert statuses.count(201) == 10, statuses
    assert statuses.count(409) == 40, statuses
    assert all(r.error_code() == "insufficient_stock" for r in results if r.status == 409)
    assert stock_of(sku) == (0, 0)
    confirmed = {r.json["id"] for r in results if r.status == 201}
    charged = query("SELECT count(*) FROM payments.payments WHERE order_id = ANY(%s) AND status = 'succeeded'",
                    list(confirmed))[0][0]
    assert charged == 10


def test_customers_see_their_own_orders_and_admins_everyones(orders, product, customer):
    sku = product(stock=10)
    mine = [customer.place(orders, [{"sku": sku, "qty": 1}]).json["id"] for _ in range(3)]
    other = Customer()
    theirs = other.place(orders, [{"sku": sku, "qty": 1}]).json["id"]
    page = orders.get("/api/orders?limit=2", customer.headers).json
    assert page["total"] == 3 and [o["id"] for o in page["items"]] == mine[::-1][:2]
    assert "history" not in page["items"][0]
    rest = orders.get("/api/orders?limit=2&offset=2", customer.headers).json
    assert [o["id"] for o in rest["items"]] == [mine[0]]
    # someone else's order is not found, not forbidden
    res = orders.get(f"/api/orders/{theirs}", customer.headers)
    assert res.status == 404 and res.error_code() == "not_found"
    admin = bearer(signed_token("admin", str(uuid.uuid4())))
    assert orders.get(f"/api/orders/{theirs}", admin).status == 200
    everyone = orders.get("/api/orders?status=CONFIRMED&limit=100", admin).json
    assert {theirs, *mine} <= {o["id"] for o in everyone["items"]}
    assert all(o["status"] == "CONFIRMED" for o in everyone["items"])


@pytest.mark.parametrize("headers, status, code", [
    ({}, 401, "unauthorized"),
    ({"Authorization": "Bearer not-a-token"}, 401, "invalid_token"),
    ("service", 403, "forbidden"),
    ("static admin", 401, "invalid_token"),  # scripts' credential: no user to own an order
])
def test_orders_need_a_customer_or_admin_token(orders, product, headers, status, code):
    sku = product(stock=5)
    if headers == "service":
        headers = service_headers("payment")
    elif headers == "static admin":
        headers = admin_headers()  # scripts' credential: no user to own an order
    before = query("SELECT count(*) FROM orders.orders")[0][0]
    body = {"items": [{"sku": sku, "qty": 1}], "payment": {"method": "wallet"}}
    res = orders.request("POST", "/api/orders", body, dict(headers, **{"Idempotency-Key": "k-1"}))
    assert res.status == status and res.error_code() == code, res
    for path in ("/api/orders", f"/api/orders/{uuid.uuid4()}"):
        res = orders.get(path, headers)
        assert res.status == status, (path, res)
    assert query("SELECT count(*) FROM orders.orders")[0][0] == before
    assert stock_of(sku) == (5, 0)


BAD_ORDERS = [
    ("malformed json", b'{"items": [', None, None),
    ("not an object", b'[1, 2]', None, None),
    ("no items", {"payment": {"method": "wallet"}}, "items", None),
    ("empty items", {"items": [], "payment": {"method": "wallet"}}, "items", None),
    ("qty 0", {"items": [{"sku": "SKU", "qty": 0}], "payment": {"method": "wallet"}}, "items[0].qty", None),
    ("qty too big", {"items": [{"sku": "SKU", "qty": 1001}], "payment": {"method": "wallet"}}, "items[0].qty", None),
    ("qty text", {"items": [{"sku": "SKU", "qty": "1"}], "payment": {"method": "wallet"}}, "items[0].qty", None),
    ("bad sku", {"items": [{"sku": "no spaces!", "qty": 1}], "payment": {"method": "wallet"}}, "items[0].sku", None),
    ("a price from the client", {"items": [{"sku": "SKU", "qty": 1, "price_cents": 1}],
                                 "payment": {"method": "wallet"}}, "items[0].price_cents", None),
    ("1000 items", {"items": [{"sku": f"SKU-{i}", "qty": 1} for i in range(1000)],
                    "payment": {"method": "wallet"}}, "items", None),
    ("twice the same sku", {"items": [{"sku": "SKU", "qty": 1}, {"sku": "SKU", "qty": 1}],
                            "payment": {"method": "wallet"}}, "items[1].sku", None),
    ("no payment", {"items": [{"sku": "SKU", "qty": 1}]}, "payment", None),
    ("unknown method", {"items": [{"sku": "SKU", "qty": 1}], "payment": {"method": "cash"}}, "payment.method", None),
    ("card without number", {"items": [{"sku": "SKU", "qty": 1}], "payment": {"method": "card"}},
     "payment.card", None),
    ("card failing luhn", {"items": [{"sku": "SKU", "qty": 1}],
                           "payment": {"method": "card", "card": "4242424242424241"}}, "payment.card", None),
    ("unknown field", {"items": [{"sku": "SKU", "qty": 1}], "payment": {"method": "wallet"}, "total": 1},
     "total", None),
]


@pytest.mark.parametrize("name, body, field, code", BAD_ORDERS, ids=[b[0] for b in BAD_ORDERS])
def test_bad_orders_are_refused_and_write_nothing(orders, product, customer, name, body, field, code):
    sku = product(stock=5)
    if isinstance(body, dict):
        body = json.loads(json.dumps(body).replace('"SKU"', f'"{sku}"'))
        raw = json.dumps(body).encode()
    else:
        raw = body
    headers = dict(customer.headers, **{"Idempotency-Key": str(uuid.uuid4()), "Content-Type": "application/json"})
    res = orders.request("POST", "/api/orders", raw=raw, headers=headers)
    assert res.status == 400, (name, res)
    if code:
        assert res.error_code() == code
    else:
        assert res.error_code() == "invalid_request"
    if field:
        assert res.json["error"]["field"] == field, res.json
    assert order_count(customer.id) == 0
    assert stock_of(sku) == (5, 0)


def test_an_unknown_sku_or_a_missing_key_writes_nothing(orders, product, customer):
    sku = product(stock=5)
    res = customer.place(orders, [{"sku": sku, "qty": 1}, {"sku": "NO-SUCH-SKU-1", "qty": 1}])
    assert res.status == 422 and res.error_code() == "unknown_sku" and res.json["error"]["sku"] == "NO-SUCH-SKU-1"
    body = {"items": [{"sku": sku, "qty": 1}], "payment": {"method": "wallet"}}
    for key in (None, "", "x" * 129, "has space"):
        headers = dict(customer.headers)
        if key is not None:
            headers["Idempotency-Key"] = key
        res = orders.request("POST", "/api/orders", body, headers)
        assert res.status == 400 and res.json["error"]["field"] == "Idempotency-Key", (key, res)
    assert order_count(customer.id) == 0 and stock_of(sku) == (5, 0)


@pytest.mark.parametrize("path", ["/api/orders/not-a-uuid", "/api/orders/not-a-uuid/cancel",
                                  "/api/orders?status=SHIPPED", "/api/orders?limit=0", "/api/orders?offset=-1"])
def test_bad_paths_and_parameters_are_400(orders, customer, path):
    method = "POST" if path.endswith("cancel") else "GET"
    res = orders.request(method, path, headers=customer.headers)
    assert res.status == 400 and res.error_code() == "invalid_request", res


def test_unknown_orders_are_404(orders, customer):
    for method, path in (("GET", f"/api/orders/{uuid.uuid4()}"), ("POST", f"/api/orders/{uuid.uuid4()}/cancel")):
        res = orders.request(method, path, headers=customer.headers)
        assert res.status == 404 and res.error_code() == "not_found", res


def test_reconcile_passes_after_the_suite_and_catches_a_broken_order(orders, product, customer):
    """Runs last in this file: every order placed above must agree."""
    sku = product(stock=5)
    order = customer.place(orders, [{"sku": sku, "qty": 1}]).json
    wait_until(lambda: query("SELECT count(*) FROM orders.outbox WHERE published_at IS NULL")[0][0] == 0, 30,
               what="the outbox published")
    wait_until(lambda: query("SELECT count(*) FROM orders.orders WHERE step <> 'done'")[0][0] == 0, 30,
               what="every saga finished")
    status, out = reconcile()
    assert status == 0, out
    # a confirmed order whose charge is refunded behind its back is a mismatch
    query("UPDATE payments.payments SET refunded_cents = amount_cents WHERE order_id = %s", order["id"])
    try:
        status, out = reconcile()
        assert status == 1 and order["id"] in out and "charge" in out, out
    finally:
        query("UPDATE payments.payments SET refunded_cents = 0 WHERE order_id = %s", order["id"])
    assert reconcile()[0] == 0
