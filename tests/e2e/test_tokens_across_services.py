"""A token issued by the user service is verified by another service on
its own: admin tokens open inventory's admin endpoints, and every kind of
bad token is refused there exactly as at the user service. Inventory's
internal endpoints take service tokens, which open nothing at the user
service, and refuse a logged-in customer."""
import time
import uuid

from oms_test import (TEST_PASSWORD, admin_headers, bearer, client_ip, make_token, query, redis_cli, service_headers,
                      stack, token_claims, unique, wait_until)


def log_in(user, email, password):
    res = user.post("/api/users/login", {"email": email, "password": password}, {"X-Forwarded-For": client_ip()})
    assert res.status == 200, res
    return res.json["token"]


def new_product(sku):
    return {"sku": sku, "name": f"E2E {sku}", "category": "lab-tests", "price_cents": 100, "stock": 5}


def test_admin_token_from_the_user_service_opens_inventory_admin(services):
    user, inventory = services["user"], services["inventory"]
    token = log_in(user, "admin@oms.example.com", "LabAdmin-Password-1")
    sku = unique("E2E-")
    res = inventory.post("/api/inventory/products", new_product(sku), bearer(token))
    assert res.status == 201, res
    res = inventory.request("PATCH", f"/api/inventory/products/{sku}", {"stock_adjustment": 3}, bearer(token))
    assert res.status == 200 and res.json["stock"] == 8
    assert query("SELECT name, stock FROM inventory.products WHERE sku = %s", sku) == [(f"E2E {sku}", 8)]
    faults = inventory.get("/admin/faults", bearer(token))
    assert faults.status == 200 and faults.json == {}
    # ADMIN_TOKEN keeps working for scripts
    faults = inventory.get("/admin/faults", admin_headers())
    assert faults.status == 200 and faults.json == {}


def test_customer_token_is_forbidden_at_inventory_admin(services):
    user, inventory = services["user"], services["inventory"]
    token = log_in(user, "customer020@oms.example.com", "LabCustomer-020")
    sku = unique("E2E-")
    res = inventory.post("/api/inventory/products", new_product(sku), bearer(token))
    assert res.status == 403 and res.error_code() == "forbidden", res
    res = inventory.request("PUT", "/admin/faults", {"inventory.latency_ms": 1}, bearer(token))
    assert res.status == 403 and res.error_code() == "forbidden", res
    assert redis_cli("EXISTS", "oms:faults") == "0"  # nothing was set
    assert query("SELECT count(*) FROM inventory.products WHERE sku = %s", sku)[0][0] == 0
    before = query("SELECT name, price_cents, stock FROM inventory.products WHERE sku = 'ELEC-HDPH-001'")
    res = inventory.request("PATCH", "/api/inventory/products/ELEC-HDPH-001",
                            {"name": "Renamed by a customer", "price_cents": 1, "stock_adjustment": 5}, bearer(token))
    assert res.status == 403 and res.error_code() == "forbidden", res
    assert query("SELECT name, price_cents, stock FROM inventory.products WHERE sku = 'ELEC-HDPH-001'") == before
    # public reads need no token at all
    page = inventory.get("/api/inventory/products?limit=1")
    assert page.status == 200 and len(page.json["items"]) == 1


def test_bad_tokens_are_refused_by_user_and_inventory(services):
    user, inventory = services["user"], services["inventory"]
    good = log_in(user, "admin@oms.example.com", "LabAdmin-Password-1")
    claims = token_claims(good)
    header, _, signature = good.split(".")
    now = int(time.time())
    bad = {
        "tampered": header + "." + make_token(dict(claims, sub="someone-else")).split(".")[1] + "." + signature,
        "expired": make_token(dict(claims, iat=now - 7200, exp=now - 10)),
        "alg none": make_token(claims, header={"alg": "none", "typ": "JWT"}, sign=False),
        "other key": make_token(claims, secret="some-other-secret-0123456789abcdefgh"),
    }
    # logged out at the user service: refused everywhere from then on
    logged_out = log_in(user, "admin@oms.example.com", "LabAdmin-Password-1")
    assert user.post("/api/users/logout", headers=bearer(logged_out)).status == 200
    bad["logged out"] = logged_out

    revoked = inventory.metric("oms_auth_verifications_total", outcome="revoked")
    attempted = [unique("E2E-") for _ in bad]
    for (name, token), sku in zip(bad.items(), attempted):
        expected = "token_revoked" if name == "logged out" else "invalid_token"
        for service, method, path, body in [
                (user, "GET", "/api/users", None),
                (inventory, "POST", "/api/inventory/products", new_product(sku)),
                (inventory, "GET", "/admin/faults", None)]:
            res = service.request(method, path, body, bearer(token))
            assert res.status == 401, (name, service.name, path, res)
            assert res.error_code() == expected, (name, service.name, path)
    assert query("SELECT count(*) FROM inventory.products WHERE sku = ANY(%s)", attempted)[0][0] == 0
    # the good token still works at both
    assert user.get("/api/users?limit=1", bearer(good)).status == 200
    assert inventory.get("/admin/faults", bearer(good)).status == 200
    # the logged-out token was refused at inventory by its deny-list check: twice
    assert inventory.metric("oms_auth_verifications_total", outcome="revoked") == revoked + 2


def test_reservations_take_services_and_admins_not_customers(services):
    user, inventory = services["user"], services["inventory"]
    order = f"e2e-{uuid.uuid4()}"
    body = {"order_id": order, "items": [{"sku": "ELEC-HDPH-001", "qty": 1}]}
    before = query("SELECT stock, reserved FROM inventory.products WHERE sku = 'ELEC-HDPH-001'")
    customer = log_in(user, "customer021@oms.example.com", "LabCustomer-021")
    res = inventory.post("/api/inventory/reservations", body, bearer(customer))
    assert res.status == 403 and res.error_code() == "forbidden", res
    res = inventory.post("/api/inventory/reservations", body)
    assert res.status == 401 and res.error_code() == "unauthorized", res
    assert query("SELECT count(*) FROM inventory.reservations WHERE order_id = %s", order)[0][0] == 0
    assert query("SELECT stock, reserved FROM inventory.products WHERE sku = 'ELEC-HDPH-001'") == before

    held = inventory.post("/api/inventory/reservations", body, service_headers("order"))
    assert held.status == 201, held
    admin = log_in(user, "admin@oms.example.com", "LabAdmin-Password-1")
    released = inventory.post(f"/api/inventory/reservations/{held.json['id']}/release", headers=bearer(admin))
    assert released.status == 200 and released.json["status"] == "released", released
    assert query("SELECT stock, reserved FROM inventory.products WHERE sku = 'ELEC-HDPH-001'") == before

    # a service token is no user: the user service's endpoints refuse it
    for method, path, body in [("GET", "/api/users/me", None), ("GET", "/api/users", None),
                               ("POST", "/api/users/logout", None)]:
        res = user.request(method, path, body, service_headers("order"))
        assert res.status == 403 and res.error_code() == "forbidden", (path, res)


def next_second():
    now = int(time.time())
    wait_until(lambda: int(time.time()) > now, 2, interval=0.01, what="the next second")


def test_inventory_refuses_a_token_issued_before_a_role_change(services):
    user, inventory = services["user"], services["inventory"]
    email = f"{unique('e2e-role-').lower()}@example.com"
    res = user.post("/api/users/register", {"email": email, "password": TEST_PASSWORD, "name": "Role"})
    assert res.status == 201, res
    user_id = res.json["id"]
    customer = log_in(user, email, TEST_PASSWORD)
    assert inventory.get("/admin/faults", bearer(customer)).status == 403

    # promoted: the customer token carries the old role and gains nothing
    assert user.request("PATCH", f"/api/users/{user_id}", {"role": "admin"}, admin_headers()).status == 200
    res = inventory.get("/admin/faults", bearer(customer))
    assert res.status == 403 and res.error_code() == "forbidden", res
    next_second()
    admin = log_in(user, email, TEST_PASSWORD)
    assert token_claims(admin)["role"] == "admin"
    res = inventory.get("/admin/faults", bearer(admin))
    assert res.status == 200 and res.json == {}

    # demoted: the admin token no longer opens inventory's admin endpoints
    assert user.request("PATCH", f"/api/users/{user_id}", {"role": "customer"}, admin_headers()).status == 200
    sku = unique("E2E-")
    res = inventory.post("/api/inventory/products", new_product(sku), bearer(admin))
    assert res.status == 401 and res.error_code() == "token_revoked", res
    assert query("SELECT count(*) FROM inventory.products WHERE sku = %s", sku)[0][0] == 0


def test_inventory_answers_503_when_redis_cannot_confirm_a_token(services):
    """Redis holds the deny-list: without it a token might be revoked, so
    inventory refuses to act on it (503) rather than trust it."""
    user, inventory = services["user"], services["inventory"]
    token = log_in(user, "admin@oms.example.com", "LabAdmin-Password-1")
    sku = unique("E2E-")
    stack("stop-redis")
    try:
        wait_until(lambda: inventory.get("/health/ready").status == 503, 10, what="inventory to see redis down")
        res = inventory.post("/api/inventory/products", new_product(sku), bearer(token))
        assert res.status == 503 and res.error_code() == "dependency_unavailable", res
        assert "redis" in res.json["error"]["message"]
        res = inventory.request("PATCH", "/api/inventory/products/ELEC-HDPH-001", {"stock_adjustment": 1},
                                bearer(token))
        assert res.status == 503 and res.error_code() == "dependency_unavailable", res
    finally:
        stack("start-redis")
    assert query("SELECT count(*) FROM inventory.products WHERE sku = %s", sku)[0][0] == 0
    inventory.wait_ready_everywhere()
    user.wait_ready_everywhere()
    res = inventory.post("/api/inventory/products", new_product(sku), bearer(token))
    assert res.status == 201, res  # confirmed again once Redis is back
