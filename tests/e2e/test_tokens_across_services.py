"""A token issued by the user service is verified by another service on
its own: admin tokens open inventory's admin endpoints, and every kind of
bad token is refused there exactly as at the user service."""
import time

from oms_test import admin_headers, bearer, client_ip, make_token, query, token_claims, unique


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
    assert inventory.get("/admin/faults", bearer(token)).status == 200
    # ADMIN_TOKEN keeps working for scripts
    assert inventory.get("/admin/faults", admin_headers()).status == 200


def test_customer_token_is_forbidden_at_inventory_admin(services):
    user, inventory = services["user"], services["inventory"]
    token = log_in(user, "customer020@oms.example.com", "LabCustomer-020")
    sku = unique("E2E-")
    res = inventory.post("/api/inventory/products", new_product(sku), bearer(token))
    assert res.status == 403 and res.error_code() == "forbidden", res
    assert inventory.request("PUT", "/admin/faults", {"inventory.latency_ms": 1}, bearer(token)).status == 403
    assert query("SELECT count(*) FROM inventory.products WHERE sku = %s", sku)[0][0] == 0
    # public reads need no token at all
    assert inventory.get("/api/inventory/products?limit=1").status == 200


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

    for name, token in bad.items():
        expected = "token_revoked" if name == "logged out" else "invalid_token"
        for service, method, path, body in [
                (user, "GET", "/api/users", None),
                (inventory, "POST", "/api/inventory/products", new_product(unique("E2E-"))),
                (inventory, "GET", "/admin/faults", None)]:
            res = service.request(method, path, body, bearer(token))
            assert res.status == 401, (name, service.name, path, res)
            assert res.error_code() == expected, (name, service.name, path)
    # the good token still works at both
    assert user.get("/api/users?limit=1", bearer(good)).status == 200
    assert inventory.get("/admin/faults", bearer(good)).status == 200
    refused = inventory.metric("oms_auth_verifications_total", outcome="revoked")
    assert refused >= 2
