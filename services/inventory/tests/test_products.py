"""The product catalogue: listing, reading, admin create and update, and the
Redis cache in front of PostgreSQL."""
import pytest

from oms_test import admin_headers, query, redis_cli, unique


def stock_of(sku):
    rows = query("SELECT stock, reserved, price_cents FROM inventory.products WHERE sku = %s", sku)
    return rows[0] if rows else None


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


def test_get_product(inventory):
    res = inventory.get("/api/inventory/products/ELEC-HDPH-001")
    assert res.status == 200
    assert res.headers["content-type"] == "application/json"
    assert res.json["sku"] == "ELEC-HDPH-001"
    assert res.json["price_cents"] == 19999


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
    again = inventory.post("/api/inventory/products", body, admin_headers())
    assert again.status == 409 and again.error_code() == "already_exists"


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


@pytest.mark.parametrize("headers,status", [
    ({}, 401),
    ({"Authorization": "Bearer wrong-token-wrong-token"}, 401),  # neither ADMIN_TOKEN nor a valid JWT
    ({"Authorization": "Basic dXNlcjpwYXNz"}, 401),
])
def test_admin_endpoints_require_the_admin_token(inventory, product, headers, status):
    sku = product()
    create = inventory.post("/api/inventory/products",
                            {"sku": unique("AUTH-"), "name": "x", "category": "books", "price_cents": 1,
                             "stock": 1}, headers)
    assert create.status == status and create.error_code() in ("unauthorized", "invalid_token")
    patch = inventory.request("PATCH", f"/api/inventory/products/{sku}", {"stock_adjustment": 5}, headers)
    assert patch.status == status
    assert stock_of(sku)[0] == 10


def test_update_price_and_adjust_stock(inventory, product):
    sku = product(stock=10)
    res = inventory.request("PATCH", f"/api/inventory/products/{sku}", {"price_cents": 999, "stock_adjustment": -4},
                            admin_headers())
    assert res.status == 200, res
    assert res.json["price_cents"] == 999 and res.json["stock"] == 6
    assert stock_of(sku) == (6, 0, 999)
    res = inventory.request("PATCH", f"/api/inventory/products/{sku}", {"stock_adjustment": 14}, admin_headers())
    assert res.json["stock"] == 20


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
    assert stock_of(sku) == (10, 0, 1250)


def test_update_unknown_product(inventory):
    res = inventory.request("PATCH", "/api/inventory/products/NOPE-1234", {"price_cents": 5}, admin_headers())
    assert res.status == 404 and res.error_code() == "not_found"


def test_reads_are_cached_and_writes_invalidate(inventory, product):
    sku = product(stock=10)
    key = f"inventory:product:{sku}"
    assert inventory.get(f"/api/inventory/products/{sku}").json["stock"] == 10
    cached = redis_cli("GET", key)
    assert '"stock": 10' in cached
    assert 0 < int(redis_cli("TTL", key)) <= 30

    # A cached document is served as is: prove it by planting one.
    redis_cli("SET", key, cached.replace('"stock": 10', '"stock": 777'))
    assert inventory.get(f"/api/inventory/products/{sku}").json["stock"] == 777

    # A write drops the cached copy before it answers, so the next read is fresh.
    inventory.request("PATCH", f"/api/inventory/products/{sku}", {"stock_adjustment": 1}, admin_headers())
    assert redis_cli("EXISTS", key) == "0"
    assert inventory.get(f"/api/inventory/products/{sku}").json["stock"] == 11


def test_list_pages_are_invalidated_by_any_change(inventory, product):
    sku = product(stock=10, category="cache-lists")
    page = inventory.get("/api/inventory/products?category=cache-lists").json
    assert [p["stock"] for p in page["items"] if p["sku"] == sku] == [10]
    assert redis_cli("EXISTS", "inventory:list:cache-lists:20:0") == "1"
    inventory.request("PATCH", f"/api/inventory/products/{sku}", {"stock_adjustment": -1}, admin_headers())
    page = inventory.get("/api/inventory/products?category=cache-lists").json
    assert [p["stock"] for p in page["items"] if p["sku"] == sku] == [9]


def test_cache_failure_fault_bypasses_redis(inventory, product):
    sku = product(stock=10)
    key = f"inventory:product:{sku}"
    inventory.get(f"/api/inventory/products/{sku}")
    redis_cli("SET", key, redis_cli("GET", key).replace('"stock": 10', '"stock": 555'))
    inventory.set_faults({"inventory.cache_failure": True})
    import time
    time.sleep(1.5)  # every worker re-reads the flags within a second
    assert inventory.get(f"/api/inventory/products/{sku}").json["stock"] == 10
