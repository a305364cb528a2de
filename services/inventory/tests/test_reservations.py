"""Reservations: who may call them (services and admins), all-or-nothing
holds, idempotency, commit/release, expiry, and the race for the last
units."""
import json
import os
import subprocess
import threading
import time
import uuid

import pytest

from oms_test import (JWT_SECRET, ROOT, Service, admin_headers, bearer, customer_headers, make_token, query,
                      raw_request, redis_cli, running, service_headers, signed_token, token_claims, unique, wait_until)


def order_id():
    return f"ord-{uuid.uuid4()}"


def levels(*skus):
    rows = query("SELECT sku, stock, reserved FROM inventory.products WHERE sku = ANY(%s)", list(skus))
    return {sku: (stock, reserved) for sku, stock, reserved in rows}


def reservation_count():
    return query("SELECT count(*) FROM inventory.reservations")[0][0]


def reserve(inventory, oid, items):
    return inventory.post("/api/inventory/reservations", {"order_id": oid, "items": items}, service_headers())


def status_of(reservation_id):
    return query("SELECT status FROM inventory.reservations WHERE id = %s", reservation_id)[0][0]


def force_expiry(reservation_id):
    """Moves a held reservation's end into the past, as if its TTL ran out."""
    query("UPDATE inventory.reservations SET expires_at = now() - interval '1 second' WHERE id = %s",
          reservation_id)


def wait_expired(reservation_id, timeout=15):
    wait_until(lambda: status_of(reservation_id) == "expired", timeout, interval=0.1,
               what=f"reservation {reservation_id} to expire")


def unique_category():
    return f"c-{uuid.uuid4().hex[:10]}"


def cache_keys(sku, category):
    return f"inventory:product:{sku}", f"inventory:list:{category}:20:0"


def read_into_cache(inventory, sku, category):
    """Reads the product and its category's first page, and waits until
    both documents are in the cache (the write follows the answer)."""
    doc = inventory.get(f"/api/inventory/products/{sku}").json
    page = inventory.get(f"/api/inventory/products?category={category}").json
    for key in cache_keys(sku, category):
        wait_until(lambda: redis_cli("EXISTS", key) == "1", 5, what=f"{key} cached")
    return (doc["stock"], doc["reserved"]), [(p["stock"], p["reserved"]) for p in page["items"] if p["sku"] == sku]


def served(inventory, sku, category):
    """(stock, reserved) as the product endpoint and the list page serve them."""
    doc = inventory.get(f"/api/inventory/products/{sku}").json
    page = inventory.get(f"/api/inventory/products?category={category}").json
    return (doc["stock"], doc["reserved"]), [(p["stock"], p["reserved"]) for p in page["items"] if p["sku"] == sku]


# --- who may call: the reservation endpoints are internal, for services
# (the order saga) and admins; anyone else is refused before anything is
# read or written

def refused_callers():
    """(name, headers, status, code) of callers the internal endpoints refuse."""
    revoked = unique("svc-").lower()  # a service of its own: revoking it touches no other test
    now = int(time.time())
    redis_cli("SET", f"oms:auth:revoked:{revoked}", str(now), "EX", "60")
    return [
        ("no token", {}, 401, "unauthorized"),
        ("customer", customer_headers(), 403, "forbidden"),
        ("another key", bearer(signed_token("service", "order", secret="not-the-lab-secret-0123456789abcdef")), 401,
         "invalid_token"),
        ("expired", bearer(make_token({"sub": "order", "role": "service", "iat": now - 900, "exp": now - 600,
                                       "jti": uuid.uuid4().hex})), 401, "invalid_token"),
        ("revoked service", bearer(make_token({"sub": revoked, "role": "service", "iat": now - 5, "exp": now + 295,
                                               "jti": uuid.uuid4().hex})), 401, "token_revoked"),
    ]


def assert_refused(res, name, status, code):
    assert res.status == status, (name, res)
    assert res.error_code() == code, (name, res)
    if status == 401:
        assert res.headers["www-authenticate"].startswith("Bearer"), (name, res.headers)


def test_reserving_needs_a_service_token_and_a_refusal_writes_nothing(inventory, product):
    sku = product(stock=10)
    count = reservation_count()
    for name, headers, status, code in refused_callers():
        oid = order_id()
        res = inventory.post("/api/inventory/reservations", {"order_id": oid, "items": [{"sku": sku, "qty": 2}]},
                             headers)
        assert_refused(res, name, status, code)
        assert query("SELECT count(*) FROM inventory.reservations WHERE order_id = %s", oid)[0][0] == 0, name
    assert reservation_count() == count
    assert levels(sku) == {sku: (10, 0)}
    # the same body with a service token: held as before
    oid = order_id()
    res = inventory.post("/api/inventory/reservations", {"order_id": oid, "items": [{"sku": sku, "qty": 2}]},
                         service_headers("order"))
    assert res.status == 201 and res.json["status"] == "held", res
    assert levels(sku) == {sku: (8, 2)}
    held = wait_until(lambda: [l for l in inventory.log_lines()
                               if l["msg"] == "reservation held" and l.get("order_id") == oid], 5,
                      what="the reservation's log line")
    assert held[0]["caller"] == "order"  # which service asked


@pytest.mark.parametrize("action", ["commit", "release", "restock"])
def test_commit_and_release_need_a_service_token_and_a_refusal_changes_nothing(inventory, product, action):
    sku = product(stock=10)
    held = reserve(inventory, order_id(), [{"sku": sku, "qty": 3}])
    assert held.status == 201, held
    rid = held.json["id"]
    for name, headers, status, code in refused_callers():
        res = inventory.post(f"/api/inventory/reservations/{rid}/{action}", headers=headers)
        assert_refused(res, name, status, code)
        assert status_of(rid) == "held", name
        assert levels(sku) == {sku: (7, 3)}, name
    # an unknown id is refused the same way: whether it exists is not told
    res = inventory.post(f"/api/inventory/reservations/{uuid.uuid4()}/{action}", headers=customer_headers())
    assert_refused(res, "customer, unknown id", 403, "forbidden")
    if action == "restock":  # only a committed reservation can be restocked
        assert inventory.post(f"/api/inventory/reservations/{rid}/commit", headers=service_headers()).status == 200
        for name, headers, status, code in refused_callers():
            assert_refused(inventory.post(f"/api/inventory/reservations/{rid}/restock", headers=headers),
                           name, status, code)
            assert status_of(rid) == "committed" and levels(sku) == {sku: (7, 0)}, name
    res = inventory.post(f"/api/inventory/reservations/{rid}/{action}", headers=service_headers())
    expected = {"commit": ("committed", (7, 0)), "release": ("released", (10, 0)), "restock": ("restocked", (10, 0))}
    assert res.status == 200 and res.json["status"] == expected[action][0], res
    assert levels(sku) == {sku: expected[action][1]}


def test_the_service_token_script_mints_what_inventory_accepts(inventory, product):
    """scripts/service-token.py, for curl and the benchmarks."""
    sku = product(stock=5)
    script = os.path.join(ROOT, "scripts", "service-token.py")
    out = subprocess.run([script, "order", "60"], env=dict(os.environ, JWT_SECRET=JWT_SECRET), check=True,
                         capture_output=True, text=True)
    token = out.stdout.strip()
    claims = token_claims(token)
    assert claims["role"] == "service" and claims["sub"] == "order" and claims["exp"] - claims["iat"] == 60
    res = inventory.post("/api/inventory/reservations", {"order_id": order_id(), "items": [{"sku": sku, "qty": 1}]},
                         bearer(token))
    assert res.status == 201, res
    assert levels(sku) == {sku: (4, 1)}


@pytest.mark.parametrize("credential", ["admin token", "static admin token"])
def test_admins_may_reserve_commit_and_release(inventory, product, credential):
    """An operator can repair a stuck saga by hand."""
    headers = bearer(signed_token("admin", str(uuid.uuid4()))) if credential == "admin token" else admin_headers()
    a, b = product(stock=10), product(stock=10)
    first = inventory.post("/api/inventory/reservations", {"order_id": order_id(), "items": [{"sku": a, "qty": 4}]},
                           headers)
    second = inventory.post("/api/inventory/reservations", {"order_id": order_id(), "items": [{"sku": b, "qty": 4}]},
                            headers)
    assert first.status == 201 and second.status == 201, (first, second)
    commit = inventory.post(f"/api/inventory/reservations/{first.json['id']}/commit", headers=headers)
    release = inventory.post(f"/api/inventory/reservations/{second.json['id']}/release", headers=headers)
    assert commit.status == 200 and commit.json["status"] == "committed", commit
    assert release.status == 200 and release.json["status"] == "released", release
    assert levels(a, b) == {a: (6, 0), b: (10, 0)}


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

    commit = inventory.post(f"/api/inventory/reservations/{doc['id']}/commit", headers=service_headers())
    assert commit.status == 200 and commit.json["status"] == "committed"
    assert levels(a, b) == {a: (7, 0), b: (0, 0)}
    # idempotent: the same answer again, no further change
    again = inventory.post(f"/api/inventory/reservations/{doc['id']}/commit", headers=service_headers())
    assert again.status == 200 and again.json["status"] == "committed"
    assert levels(a, b) == {a: (7, 0), b: (0, 0)}
    # a committed reservation cannot be released
    release = inventory.post(f"/api/inventory/reservations/{doc['id']}/release", headers=service_headers())
    assert release.status == 409 and release.error_code() == "reservation_committed"
    assert levels(a, b) == {a: (7, 0), b: (0, 0)}


def test_restock_returns_a_committed_reservations_goods_once(inventory, product):
    """A cancelled order's goods go back on the shelf: once, and only after
    they left it (a commit)."""
    a, b = product(stock=10), product(stock=5)
    rid = reserve(inventory, order_id(), [{"sku": a, "qty": 3}, {"sku": b, "qty": 5}]).json["id"]
    early = inventory.post(f"/api/inventory/reservations/{rid}/restock", headers=service_headers())
    assert early.status == 409 and early.error_code() == "reservation_not_committed", early
    assert early.json["error"]["reservation"]["status"] == "held"
    assert levels(a, b) == {a: (7, 3), b: (0, 5)}
    assert inventory.post(f"/api/inventory/reservations/{rid}/commit", headers=service_headers()).status == 200
    assert levels(a, b) == {a: (7, 0), b: (0, 0)}
    for _ in range(2):  # idempotent
        res = inventory.post(f"/api/inventory/reservations/{rid}/restock", headers=service_headers())
        assert res.status == 200 and res.json["status"] == "restocked", res
        assert levels(a, b) == {a: (10, 0), b: (5, 0)}
    # the product documents show the stock at once
    assert inventory.get(f"/api/inventory/products/{b}").json["stock"] == 5
    for action in ("commit", "release"):
        res = inventory.post(f"/api/inventory/reservations/{rid}/{action}", headers=service_headers())
        assert res.status == 409, (action, res)
    assert levels(a, b) == {a: (10, 0), b: (5, 0)}
    missing = inventory.post(f"/api/inventory/reservations/{uuid.uuid4()}/restock", headers=service_headers())
    assert missing.status == 404 and missing.error_code() == "not_found"


def test_hold_release_flow(inventory, product):
    a = product(stock=10)
    res = reserve(inventory, order_id(), [{"sku": a, "qty": 4}])
    rid = res.json["id"]
    release = inventory.post(f"/api/inventory/reservations/{rid}/release", headers=service_headers())
    assert release.status == 200 and release.json["status"] == "released"
    assert levels(a) == {a: (10, 0)}
    again = inventory.post(f"/api/inventory/reservations/{rid}/release", headers=service_headers())
    assert again.status == 200 and again.json["status"] == "released"
    assert levels(a) == {a: (10, 0)}
    commit = inventory.post(f"/api/inventory/reservations/{rid}/commit", headers=service_headers())
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
        res = inventory.post("/api/inventory/reservations", body, service_headers())
    else:
        res = inventory.post("/api/inventory/reservations", raw=body,
                             headers=dict(service_headers(), **{"Content-Type": content_type}))
    assert res.status == status, res
    assert res.error_code() == ("unsupported_media_type" if status == 415 else "invalid_request"), res
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


def chunked(body, size):
    """`body` in chunks of `size` bytes (Transfer-Encoding: chunked)."""
    out = b""
    for i in range(0, len(body), size):
        out += b"%x\r\n" % len(body[i:i + size]) + body[i:i + size] + b"\r\n"
    return out + b"0\r\n\r\n"


def chunked_head():
    """The head of a chunked reservation, with a service token minted now."""
    return (b"POST /api/inventory/reservations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: " + service_headers()["Authorization"].encode() + b"\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")


def test_chunked_bodies_over_max_body_bytes_are_refused(product):
    """A chunked body has no Content-Length to refuse it by: it is counted
    as it arrives, and refused with 413 once it passes MAX_BODY_BYTES."""
    with running("inventory", MAX_BODY_BYTES=2048) as service:
        sku = product(stock=10)
        small = json.dumps({"order_id": order_id(), "items": [{"sku": sku, "qty": 1}]}).encode()
        status, head, body = raw_request(service.port, chunked_head() + chunked(small, 16))
        assert status == 201, body  # chunked bodies within the limit are read
        assert json.loads(body)["status"] == "held"
        assert levels(sku) == {sku: (9, 1)}

        count = reservation_count()
        big = json.dumps({"order_id": order_id(), "items": [{"sku": sku, "qty": 1}], "pad": "x" * 4000}).encode()
        for chunk_size in (512, len(big)):  # many small chunks, or one over the limit by itself
            status, head, body = raw_request(service.port, chunked_head() + chunked(big, chunk_size))
            assert status == 413, (chunk_size, head, body)
            assert b"content-type: application/json" in head
            assert json.loads(body)["error"]["code"] == "payload_too_large"
        assert reservation_count() == count
        assert levels(sku) == {sku: (9, 1)}
        assert service.get("/health/live").status == 200


@pytest.mark.parametrize("rid,status", [("not-a-uuid", 400), ("00000000-0000-0000-0000-000000000000", 404)])
def test_commit_and_release_of_unknown_reservations(inventory, rid, status):
    count = reservation_count()
    for action in ("commit", "release"):
        res = inventory.post(f"/api/inventory/reservations/{rid}/{action}", headers=service_headers())
        assert res.status == status, res
        if status == 400:
            assert res.error_code() == "invalid_request" and res.json["error"]["field"] == "id"
        else:
            assert res.error_code() == "not_found" and rid in res.json["error"]["message"]
    assert reservation_count() == count


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


def test_concurrent_reservations_with_the_same_order_id_hold_once(inventory, product):
    """Retries of one order racing each other: one hold, and every request
    answers with it (the losers of the insert race ask again)."""
    a, b = product(stock=20), product(stock=20)
    oid = order_id()
    items = [{"sku": a, "qty": 3}, {"sku": b, "qty": 2}]
    results = []
    lock = threading.Lock()
    start = threading.Barrier(12)

    def attempt():
        start.wait()
        res = reserve(inventory, oid, items)
        with lock:
            results.append(res)

    threads = [threading.Thread(target=attempt) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r.status for r in results)
    assert statuses == [200] * 11 + [201], results
    assert len({r.json["id"] for r in results}) == 1
    assert all(r.json["order_id"] == oid and r.json["status"] == "held" for r in results)
    assert levels(a, b) == {a: (17, 3), b: (18, 2)}  # held once
    assert query("SELECT count(*) FROM inventory.reservations WHERE order_id = %s", oid)[0][0] == 1


def test_a_repeated_order_id_after_release_returns_the_released_reservation(inventory, product):
    a = product(stock=10)
    oid = order_id()
    first = reserve(inventory, oid, [{"sku": a, "qty": 4}])
    assert first.status == 201
    released = inventory.post(f"/api/inventory/reservations/{first.json['id']}/release", headers=service_headers())
    assert released.status == 200
    assert levels(a) == {a: (10, 0)}
    again = reserve(inventory, oid, [{"sku": a, "qty": 4}])
    assert again.status == 200, again
    assert again.json["id"] == first.json["id"] and again.json["status"] == "released"
    assert levels(a) == {a: (10, 0)}  # nothing held again
    different = reserve(inventory, oid, [{"sku": a, "qty": 1}])
    assert different.status == 409 and different.error_code() == "idempotency_conflict"
    assert levels(a) == {a: (10, 0)}
    assert query("SELECT count(*) FROM inventory.reservations WHERE order_id = %s", oid)[0][0] == 1


def test_a_repeated_order_id_after_expiry_returns_the_expired_reservation(inventory, product):
    a = product(stock=10)
    oid = order_id()
    first = reserve(inventory, oid, [{"sku": a, "qty": 4}])
    assert first.status == 201
    force_expiry(first.json["id"])
    wait_expired(first.json["id"])  # the session service's sweeper, once a second
    assert levels(a) == {a: (10, 0)}
    again = reserve(inventory, oid, [{"sku": a, "qty": 4}])
    assert again.status == 200, again
    assert again.json["id"] == first.json["id"] and again.json["status"] == "expired"
    assert levels(a) == {a: (10, 0)}
    assert query("SELECT count(*) FROM inventory.reservations WHERE order_id = %s", oid)[0][0] == 1


def test_releasing_an_expired_hold_returns_its_stock_once(inventory, product):
    a = product(stock=10)
    res = reserve(inventory, order_id(), [{"sku": a, "qty": 6}])
    assert res.status == 201
    force_expiry(res.json["id"])
    wait_expired(res.json["id"])
    assert levels(a) == {a: (10, 0)}
    for _ in range(2):  # the order service's release, and its retry
        release = inventory.post(f"/api/inventory/reservations/{res.json['id']}/release", headers=service_headers())
        assert release.status == 200, release
        assert release.json["id"] == res.json["id"] and release.json["status"] == "expired"
        assert levels(a) == {a: (10, 0)}  # not returned a second time
    assert status_of(res.json["id"]) == "expired"


def test_releasing_a_hold_past_its_time_before_the_sweep(product):
    # No sweep for ten minutes: release itself meets the hold whose time is up.
    with running("inventory", RESERVATION_SWEEP_INTERVAL_MS=600000) as service:
        a = product(stock=5)
        res = service.post("/api/inventory/reservations", {"order_id": order_id(), "items": [{"sku": a, "qty": 5}]},
                           service_headers())
        assert res.status == 201
        force_expiry(res.json["id"])
        release = service.post(f"/api/inventory/reservations/{res.json['id']}/release", headers=service_headers())
        assert release.status == 200 and release.json["status"] == "released", release
        assert levels(a) == {a: (5, 0)}
        again = service.post(f"/api/inventory/reservations/{res.json['id']}/release", headers=service_headers())
        assert again.status == 200 and again.json["status"] == "released"
        assert levels(a) == {a: (5, 0)}
        commit = service.post(f"/api/inventory/reservations/{res.json['id']}/commit", headers=service_headers())
        assert commit.status == 409 and commit.error_code() == "reservation_released"
        assert levels(a) == {a: (5, 0)}


# --- the product cache: every reservation path that changes stock drops the
# cached copies of its products and every cached list page, before it answers

# (stock, reserved) before and after each path, for a product of 10 with a
# hold of 4 made first for commit and release
CACHE_PATHS = {"hold": ((10, 0), (6, 4)), "commit": ((6, 4), (6, 0)), "release": ((6, 4), (10, 0))}


@pytest.mark.parametrize("path", list(CACHE_PATHS))
def test_reservations_invalidate_cached_products_and_list_pages(inventory, product, path):
    category = unique_category()
    sku = product(stock=10, category=category)
    before, after = CACHE_PATHS[path]
    if path != "hold":
        held = reserve(inventory, order_id(), [{"sku": sku, "qty": 4}])
        assert held.status == 201
    assert read_into_cache(inventory, sku, category) == (before, [before])
    if path == "hold":
        res = reserve(inventory, order_id(), [{"sku": sku, "qty": 4}])
        assert res.status == 201, res
    else:
        res = inventory.post(f"/api/inventory/reservations/{held.json['id']}/{path}", headers=service_headers())
        assert res.status == 200, res
    # gone before the answer: nothing stale can be served after it
    assert [redis_cli("EXISTS", key) for key in cache_keys(sku, category)] == ["0", "0"]
    assert redis_cli("EXISTS", "inventory:list-keys") == "0"
    assert levels(sku) == {sku: after}
    assert served(inventory, sku, category) == (after, [after])


def test_the_expiry_sweep_invalidates_cached_products_and_list_pages(inventory, product):
    category = unique_category()
    sku = product(stock=10, category=category)
    res = reserve(inventory, order_id(), [{"sku": sku, "qty": 6}])
    assert res.status == 201
    assert read_into_cache(inventory, sku, category) == ((4, 6), [(4, 6)])
    force_expiry(res.json["id"])
    wait_expired(res.json["id"])
    # the sweep drops the cached copies right after its transaction; without
    # that they would be served for CACHE_TTL_SECONDS (30 s)
    for key in cache_keys(sku, category):
        wait_until(lambda: redis_cli("EXISTS", key) == "0", 10, what=f"{key} invalidated by the sweep")
    assert levels(sku) == {sku: (10, 0)}
    assert served(inventory, sku, category) == ((10, 0), [(10, 0)])


def test_a_commit_that_expires_a_hold_invalidates_the_cache(product):
    with running("inventory", RESERVATION_SWEEP_INTERVAL_MS=600000) as service:
        category = unique_category()
        sku = product(stock=5, category=category)
        res = service.post("/api/inventory/reservations", {"order_id": order_id(), "items": [{"sku": sku, "qty": 5}]},
                           service_headers())
        assert res.status == 201
        assert read_into_cache(service, sku, category) == ((0, 5), [(0, 5)])
        force_expiry(res.json["id"])
        commit = service.post(f"/api/inventory/reservations/{res.json['id']}/commit", headers=service_headers())
        assert commit.status == 409 and commit.error_code() == "reservation_expired"
        assert levels(sku) == {sku: (5, 0)}  # the commit expired it and the stock came back
        assert served(service, sku, category) == ((5, 0), [(5, 0)])


def test_held_reservations_expire_and_stock_returns(product):
    # A second instance with a one-second hold, so this test does not wait 15 minutes.
    short = Service("inventory", RESERVATION_TTL_SECONDS=1, RESERVATION_SWEEP_INTERVAL_MS=100).start()
    try:
        sku = product(stock=10)
        res = short.post("/api/inventory/reservations", {"order_id": order_id(), "items": [{"sku": sku, "qty": 6}]},
                         service_headers())
        assert res.status == 201
        assert levels(sku) == {sku: (4, 6)}
        wait_expired(res.json["id"], timeout=10)
        assert levels(sku) == {sku: (10, 0)}
        commit = short.post(f"/api/inventory/reservations/{res.json['id']}/commit", headers=service_headers())
        assert commit.status == 409 and commit.error_code() == "reservation_expired"
        assert commit.json["error"]["reservation"]["id"] == res.json["id"]
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
                              {"order_id": order_id(), "items": [{"sku": sku, "qty": 5}]}, service_headers())
        assert res.status == 201
        wait_until(lambda: query("SELECT expires_at <= now() FROM inventory.reservations WHERE id = %s",
                                 res.json["id"])[0][0], 10, what="the hold's time to run out")
        commit = slow_sweep.post(f"/api/inventory/reservations/{res.json['id']}/commit", headers=service_headers())
        assert commit.status == 409 and commit.error_code() == "reservation_expired"
        assert commit.json["error"]["reservation"]["status"] == "expired"
        assert status_of(res.json["id"]) == "expired"
        assert levels(sku) == {sku: (5, 0)}
    finally:
        assert slow_sweep.stop() == 0
