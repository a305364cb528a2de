"""The product catalogue: listing, reading, admin create and update, and the
Redis cache in front of PostgreSQL."""
import uuid

import pytest

from oms_test import admin_headers, query, redis_cli, unique, wait_until


def stock_of(sku):
    rows = query("SELECT stock, reserved, price_cents FROM inventory.products WHERE sku = %s", sku)
    return rows[0] if rows else None


def row_of(sku):
    rows = query("SELECT name, description, category, price_cents, currency, stock, reserved, low_stock_threshold"
                 " FROM inventory.products WHERE sku = %s", sku)
    return rows[0] if rows else None


def cached(key):
    """Waits for the cache-aside write that follows a read (it is sent
    without waiting for Redis) and returns the cached document."""
    return wait_until(lambda: redis_cli("GET", key), 5, what=f"{key} cached")


def unique_category():
    return f"c-{uuid.uuid4().hex[:10]}"


def test_seeded_catalogue_is_listed_with_total(inventory):
    res = inventory.get("/api/inventory/products?limit=100")
    assert res.status == 200
    doc = res.json
    assert doc["total"] >= 50
    assert doc["limit"] == 100 and doc["offset"] == 0
    categories = {p["category"] for p in doc["items"]}
    assert len(categories) >= 5
    sample = doc["items"][0]
    assert set(sample) >= {"sku", "name", "category", "price_cents", "stock", "reserved", "low_stock_threshold",
                           "low_stock"}


def test_paging_and_category_filter(inventory):
    first = inventory.get("/api/inventory/products?limit=5&offset=0").json
    second = inventory.get("/api/inventory/products?limit=5&offset=5").json
    assert len(first["items"]) == 5 and len(second["items"]) == 5
    assert not {p["sku"] for p in first["items"]} & {p["sku"] for p in second["items"]}
    books = inventory.get("/api/inventory/products?category=books&limit=100").json
    assert books["total"] == len(books["items"]) >= 5
    assert all(p["category"] == "books" for p in books["items"])
    none = inventory.get("/api/inventory/products?category=no-such-category").json
    assert none == {"items": [], "total": 0, "limit": 20, "offset": 0}


@pytest.mark.parametrize("query_string,field", [
    ("limit=0", "limit"), ("limit=101", "limit"), ("limit=abc", "limit"), ("limit=", "limit"),
    ("offset=-1", "offset"), ("offset=1.5", "offset"), ("category=Books", "category"),
    ("category=a%20b", "category"),
])
def test_bad_list_parameters_are_rejected(inventory, query_string, field):
    res = inventory.get(f"/api/inventory/products?{query_string}")
    assert res.status == 400
    assert res.error_code() == "invalid_request"
    assert res.json["error"]["field"] == field


def test_lookup_by_skus_returns_the_products_that_exist(inventory, product):
    """What the order service prices an order with: fresh from PostgreSQL,
    unknown SKUs simply absent."""
    a, b = product(stock=4, price=999), product(stock=7, price=12345)
    missing = "NO-SUCH-" + a[2:]
    res = inventory.get(f"/api/inventory/products?skus={b},{missing},{a}")
    assert res.status == 200, res
    doc = res.json
    assert doc["total"] == 2 and [p["sku"] for p in doc["items"]] == sorted([a, b])
    assert {p["sku"]: (p["price_cents"], p["stock"]) for p in doc["items"]} == {a: (999, 4), b: (12345, 7)}
    assert inventory.get(f"/api/inventory/products?skus={missing}").json == {"items": [], "total": 0}
    # a price change shows at once (never a cached copy)
    assert inventory.request("PATCH", f"/api/inventory/products/{a}", {"price_cents": 1001},
                             admin_headers()).status == 200
    assert inventory.get(f"/api/inventory/products?skus={a}").json["items"][0]["price_cents"] == 1001


@pytest.mark.parametrize("skus", ["", ",", "A", "ABC,", ",ABC", "ABC,,DEF", "abc", "ABC;DEF", "X" * 33,
                                  ",".join(f"SKU-{i}" for i in range(51))])
def test_lookup_rejects_malformed_sku_lists(inventory, skus):
    res = inventory.get(f"/api/inventory/products?skus={skus}")
    assert res.status == 400 and res.error_code() == "invalid_request", res
    assert res.json["error"]["field"] == "skus"


def test_get_product(inventory):
    res = inventory.get("/api/inventory/products/ELEC-HDPH-001")
    assert res.status == 200
    assert res.headers["content-type"] == "application/json"
    assert res.json["sku"] == "ELEC-HDPH-001"
    assert res.json["price_cents"] == 19999
    name, _, category, price, currency, _, _, threshold = row_of("ELEC-HDPH-001")
    assert (res.json["name"], res.json["category"], res.json["price_cents"], res.json["currency"],
            res.json["low_stock_threshold"]) == (name, category, price, currency, threshold)


def test_unknown_and_malformed_sku(inventory):
    res = inventory.get("/api/inventory/products/NOPE-0000")
    assert res.status == 404 and res.error_code() == "not_found"
    res = inventory.get("/api/inventory/products/bad%20sku")
    assert res.status == 400 and res.json["error"]["field"] == "sku"


def test_create_product(inventory):
    sku = unique("NEW-")
    body = {"sku": sku, "name": "Lab mug", "description": "Holds coffee.", "category": "home-kitchen",
            "price_cents": 1299, "currency": "EUR", "stock": 40, "low_stock_threshold": 5}
    res = inventory.post("/api/inventory/products", body, admin_headers())
    assert res.status == 201, res
    assert res.json["sku"] == sku and res.json["stock"] == 40 and res.json["currency"] == "EUR"
    assert inventory.get(f"/api/inventory/products/{sku}").json["name"] == "Lab mug"
    assert stock_of(sku) == (40, 0, 1299)
    assert row_of(sku) == ("Lab mug", "Holds coffee.", "home-kitchen", 1299, "EUR", 40, 0, 5)
    again = inventory.post("/api/inventory/products", dict(body, name="Another mug", stock=1), admin_headers())
    assert again.status == 409 and again.error_code() == "already_exists"
    assert row_of(sku) == ("Lab mug", "Holds coffee.", "home-kitchen", 1299, "EUR", 40, 0, 5)  # not overwritten


@pytest.mark.parametrize("body,field", [
    ({"name": "x", "category": "books", "price_cents": 1, "stock": 1}, "sku"),
    ({"sku": "lower-case", "name": "x", "category": "books", "price_cents": 1, "stock": 1}, "sku"),
    ({"sku": "{sku}", "category": "books", "price_cents": 1, "stock": 1}, "name"),
    ({"sku": "{sku}", "name": "", "category": "books", "price_cents": 1, "stock": 1}, "name"),
    ({"sku": "{sku}", "name": "x", "category": "Books!", "price_cents": 1, "stock": 1}, "category"),
    ({"sku": "{sku}", "name": "x", "category": "books", "price_cents": -1, "stock": 1}, "price_cents"),
    ({"sku": "{sku}", "name": "x", "category": "books", "price_cents": "12", "stock": 1}, "price_cents"),
    ({"sku": "{sku}", "name": "x", "category": "books", "price_cents": 1.5, "stock": 1}, "price_cents"),
    ({"sku": "{sku}", "name": "x", "category": "books", "price_cents": 1, "stock": -3}, "stock"),
    ({"sku": "{sku}", "name": "x", "category": "books", "price_cents": 1, "stock": 1, "currency": "usd"},
     "currency"),
    ({"sku": "{sku}", "name": "x", "category": "books", "price_cents": 1, "stock": 1, "colour": "red"}, "colour"),
])
def test_create_rejects_bad_input_and_writes_nothing(inventory, body, field):
    sku = unique("BAD-")
    body = {k: (sku if v == "{sku}" else v) for k, v in body.items()}
    before = query("SELECT count(*) FROM inventory.products")[0][0]
    res = inventory.post("/api/inventory/products", body, admin_headers())
    assert res.status == 400, res
    assert res.error_code() == "invalid_request"
    assert res.json["error"]["field"] == field
    assert query("SELECT count(*) FROM inventory.products")[0][0] == before


@pytest.mark.parametrize("headers,status,code", [
    ({}, 401, "unauthorized"),
    ({"Authorization": "Bearer wrong-token-wrong-token"}, 401, "invalid_token"),  # neither ADMIN_TOKEN nor a JWT
    ({"Authorization": "Basic dXNlcjpwYXNz"}, 401, "unauthorized"),
])
def test_admin_endpoints_require_the_admin_token(inventory, product, headers, status, code):
    sku = product()
    new_sku = unique("AUTH-")
    count = query("SELECT count(*) FROM inventory.products")[0][0]
    create = inventory.post("/api/inventory/products",
                            {"sku": new_sku, "name": "x", "category": "books", "price_cents": 1,
                             "stock": 1}, headers)
    assert create.status == status and create.error_code() == code, create
    assert create.headers["www-authenticate"].startswith("Bearer")
    assert stock_of(new_sku) is None  # no row was written
    assert query("SELECT count(*) FROM inventory.products")[0][0] == count
    patch = inventory.request("PATCH", f"/api/inventory/products/{sku}", {"stock_adjustment": 5}, headers)
    assert patch.status == status and patch.error_code() == code, patch
    assert stock_of(sku) == (10, 0, 1250)


def test_update_price_and_adjust_stock(inventory, product):
    sku = product(stock=10)
    res = inventory.request("PATCH", f"/api/inventory/products/{sku}", {"price_cents": 999, "stock_adjustment": -4},
                            admin_headers())
    assert res.status == 200, res
    assert res.json["price_cents"] == 999 and res.json["stock"] == 6
    assert stock_of(sku) == (6, 0, 999)
    res = inventory.request("PATCH", f"/api/inventory/products/{sku}", {"stock_adjustment": 14}, admin_headers())
    assert res.status == 200, res
    assert res.json["stock"] == 20 and res.json["price_cents"] == 999  # the earlier price stays
    assert stock_of(sku) == (20, 0, 999)


def test_update_name_and_threshold(inventory, product):
    sku = product(stock=10, threshold=3)
    key = f"inventory:product:{sku}"
    before = inventory.get(f"/api/inventory/products/{sku}").json
    assert before["low_stock"] is False
    cached(key)
    res = inventory.request("PATCH", f"/api/inventory/products/{sku}",
                            {"name": "Renamed product", "low_stock_threshold": 12}, admin_headers())
    assert res.status == 200, res
    doc = res.json
    assert doc["name"] == "Renamed product" and doc["low_stock_threshold"] == 12
    assert doc["low_stock"] is True  # 10 in stock is now at or below the threshold
    assert (doc["stock"], doc["price_cents"], doc["category"]) == (10, 1250, "lab-tests")  # the rest unchanged
    assert row_of(sku) == ("Renamed product", "", "lab-tests", 1250, "USD", 10, 0, 12)
    assert redis_cli("EXISTS", key) == "0"  # the cached copy went with the change
    assert inventory.get(f"/api/inventory/products/{sku}").json == doc
    res = inventory.request("PATCH", f"/api/inventory/products/{sku}", {"low_stock_threshold": 0}, admin_headers())
    assert res.status == 200 and res.json["low_stock"] is False and res.json["name"] == "Renamed product", res
    assert row_of(sku)[7] == 0


def test_update_cannot_make_stock_negative(inventory, product):
    sku = product(stock=3)
    res = inventory.request("PATCH", f"/api/inventory/products/{sku}", {"stock_adjustment": -4, "price_cents": 1},
                            admin_headers())
    assert res.status == 422 and res.error_code() == "insufficient_stock"
    assert stock_of(sku) == (3, 0, 1250)  # neither change was applied


@pytest.mark.parametrize("body,field", [
    ({}, ""), ({"stock": 5}, "stock"), ({"stock_adjustment": "5"}, "stock_adjustment"),
    ({"price_cents": None}, "price_cents"), ({"name": "y" * 201}, "name"),
])
def test_update_rejects_bad_input(inventory, product, body, field):
    sku = product()
    res = inventory.request("PATCH", f"/api/inventory/products/{sku}", body, admin_headers())
    assert res.status == 400 and res.json["error"].get("field", "") == field
    assert res.error_code() == "invalid_request"
    assert stock_of(sku) == (10, 0, 1250)
    assert row_of(sku)[0] == f"Test product {sku}"


def test_update_unknown_product(inventory):
    res = inventory.request("PATCH", "/api/inventory/products/NOPE-1234", {"price_cents": 5}, admin_headers())
    assert res.status == 404 and res.error_code() == "not_found"
    assert stock_of("NOPE-1234") is None  # an update never creates


def test_reads_are_cached_and_writes_invalidate(inventory, product):
    sku = product(stock=10)
    key = f"inventory:product:{sku}"
    assert inventory.get(f"/api/inventory/products/{sku}").json["stock"] == 10
    document = cached(key)
    assert '"stock": 10' in document
    assert 0 < int(redis_cli("TTL", key)) <= 30

    # A cached document is served as is: prove it by planting one.
    redis_cli("SET", key, document.replace('"stock": 10', '"stock": 777'))
    assert inventory.get(f"/api/inventory/products/{sku}").json["stock"] == 777

    # A write drops the cached copy before it answers, so the next read is fresh.
    res = inventory.request("PATCH", f"/api/inventory/products/{sku}", {"stock_adjustment": 1}, admin_headers())
    assert res.status == 200 and res.json["stock"] == 11, res
    assert redis_cli("EXISTS", key) == "0"
    assert inventory.get(f"/api/inventory/products/{sku}").json["stock"] == 11


def test_list_pages_are_invalidated_by_any_change(inventory, product):
    category = unique_category()
    sku = product(stock=10, category=category)
    page = inventory.get(f"/api/inventory/products?category={category}").json
    assert [p["stock"] for p in page["items"] if p["sku"] == sku] == [10]
    inventory.get("/api/inventory/products?category=lab-tests&limit=100")  # another category's page goes too
    cached(f"inventory:list:{category}:20:0")
    cached("inventory:list:lab-tests:100:0")
    res = inventory.request("PATCH", f"/api/inventory/products/{sku}", {"stock_adjustment": -1}, admin_headers())
    assert res.status == 200 and res.json["stock"] == 9, res
    assert redis_cli("EXISTS", f"inventory:list:{category}:20:0", "inventory:list:lab-tests:100:0") == "0"
    page = inventory.get(f"/api/inventory/products?category={category}").json
    assert [p["stock"] for p in page["items"] if p["sku"] == sku] == [9]


def test_cache_failure_fault_bypasses_redis(inventory, product):
    sku = product(stock=10)
    key = f"inventory:product:{sku}"
    inventory.get(f"/api/inventory/products/{sku}")
    planted = cached(key).replace('"stock": 10', '"stock": 555')
    redis_cli("SET", key, planted)
    assert inventory.get(f"/api/inventory/products/{sku}").json["stock"] == 555
    try:
        inventory.apply_faults({"inventory.cache_failure": True})
        bypassed = inventory.metric("oms_inventory_cache_requests_total", result="bypass")
        for _ in range(4):  # whichever worker answers
            assert inventory.get(f"/api/inventory/products/{sku}").json["stock"] == 10
        assert inventory.metric("oms_inventory_cache_requests_total", result="bypass") == bypassed + 4
        assert redis_cli("GET", key) == planted  # bypassed, neither read nor rewritten
    finally:
        inventory.apply_faults({"inventory.cache_failure": None})
    assert inventory.get(f"/api/inventory/products/{sku}").json["stock"] == 555  # the cache is back in use
