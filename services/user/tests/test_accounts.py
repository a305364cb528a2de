"""Registration, login, /me, logout and the admin endpoints of the user
service, against real PostgreSQL and Redis."""
import json
import time

import pytest

from oms_test import TEST_PASSWORD as PASSWORD, admin_headers, bearer, client_ip, make_token, query, token_claims, unique
from oms_test import wait_until

UUID_RE = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


def next_second():
    """Waits until the clock has moved into the next whole second: tokens
    issued in the second of a role change are void (README)."""
    now = int(time.time())
    wait_until(lambda: int(time.time()) > now, 2, interval=0.01, what="the next second")


def counts():
    return query("SELECT (SELECT count(*) FROM users.users), (SELECT count(*) FROM users.outbox),"
                 " (SELECT count(*) FROM users.login_attempts)")[0]


def test_register_returns_the_user_without_secrets_and_writes_an_event(user_service):
    email = f"{unique('Mixed.Case-')}@Example.COM"
    res = user_service.post("/api/users/register", {"email": email, "password": PASSWORD, "name": "Ada Lovelace"},
                            {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
    assert res.status == 201, res
    user = res.json
    assert set(user) == {"id", "email", "name", "role", "created_at", "last_login_at"}
    assert user["email"] == email and user["name"] == "Ada Lovelace" and user["role"] == "customer"
    assert user["last_login_at"] is None
    assert "argon2" not in res.body and PASSWORD not in res.body

    stored = query("SELECT password_hash FROM users.users WHERE id = %s", user["id"])[0][0]
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")

    payload, traceparent = query(
        "SELECT payload, traceparent FROM users.outbox WHERE payload->'data'->>'user_id' = %s", user["id"])[0]
    assert payload["type"] == "user.registered" and payload["data"]["email"] == email
    assert set(payload) == {"id", "type", "occurred_at", "data"}
    assert traceparent.split("-")[1] == "4bf92f3577b34da6a3ce929d0e0e4736"  # the request's trace goes on
    # (the relay publishes it: test_events.py)


def test_duplicate_email_in_any_case_is_refused(user_service, account):
    existing = account()
    before = counts()
    for email in (existing.email, existing.email.upper(), existing.email.capitalize()):
        res = user_service.post("/api/users/register", {"email": email, "password": PASSWORD, "name": "Again"})
        assert res.status == 409 and res.error_code() == "email_taken", res
    assert counts() == before


def test_concurrent_duplicate_registrations_create_one_account(user_service):
    from concurrent.futures import ThreadPoolExecutor
    email = f"{unique('race-')}@example.com"
    body = {"email": email, "password": PASSWORD, "name": "Racer"}
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: user_service.post("/api/users/register", body), range(8)))
    statuses = sorted(r.status for r in results)
    assert statuses == [201] + [409] * 7
    assert all(r.error_code() == "email_taken" for r in results if r.status == 409)
    assert query("SELECT count(*) FROM users.users WHERE lower(email) = lower(%s)", email)[0][0] == 1
    assert query("SELECT count(*) FROM users.outbox WHERE payload->'data'->>'email' = %s", email)[0][0] == 1


GOOD = {"email": "someone@example.com", "password": PASSWORD, "name": "Some One"}


@pytest.mark.parametrize("change,field", [
    ({"email": None}, "email"),
    ({"email": 42}, "email"),
    ({"email": "no-at-sign.example.com"}, "email"),
    ({"email": "two@@example.com"}, "email"),
    ({"email": "a@b@example.com"}, "email"),
    ({"email": "spaces in@example.com"}, "email"),
    ({"email": "user@localhost"}, "email"),
    ({"email": "user@example.c0m"}, "email"),
    ({"email": "user@-example.com"}, "email"),
    ({"email": ".user@example.com"}, "email"),
    ({"email": "us..er@example.com"}, "email"),
    ({"email": "ü@example.com"}, "email"),
    ({"email": "x" * 250 + "@example.com"}, "email"),
    ({"password": None}, "password"),
    ({"password": "short-pw9"}, "password"),  # 9 characters
    ({"password": "é" * 9}, "password"),  # 18 bytes, 9 characters
    ({"password": "p" * 129}, "password"),
    ({"password": 1234567890}, "password"),
    ({"name": None}, "name"),
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
    ({"name": "n" * 101}, "name"),
    ({"name": "tab\there"}, "name"),
    ({"name": ["list"]}, "name"),
    ({"role": "admin"}, "role"),  # nobody registers as admin
])
def test_bad_registrations_are_rejected_and_write_nothing(user_service, change, field):
    body = dict(GOOD, email=f"{unique('bad-')}@example.com")
    for key, value in change.items():
        if value is None:
            body.pop(key)
        else:
            body[key] = value
    before = counts()
    res = user_service.post("/api/users/register", body)
    assert res.status == 400, res
    assert res.error_code() == "invalid_request"
    assert res.json["error"]["field"] == field
    assert counts() == before


@pytest.mark.parametrize("raw,content_type,status", [
    (b"{", "application/json", 400),
    (b"[]", "application/json", 400),
    (b'{"email":"a@example.com","email":"b@example.com"}', "application/json", 400),
    (b"email=a@example.com", "application/x-www-form-urlencoded", 415),
    (b"\xff\xfe", "application/json", 400),
    (b'{"email":"a@example.com","password":"abc\\u0000defghijk","name":"N"}', "application/json", 400),
])
def test_malformed_bodies_are_rejected(user_service, raw, content_type, status):
    before = counts()
    for path in ("/api/users/register", "/api/users/login"):
        res = user_service.request("POST", path, raw=raw, headers={"Content-Type": content_type})
        assert res.status == status, (path, res)
        assert res.error_code() == ("unsupported_media_type" if status == 415 else "invalid_request"), (path, res)
    assert counts() == before


def test_multibyte_passwords_count_characters(user_service):
    email = f"{unique('utf8-')}@example.com"
    res = user_service.post("/api/users/register", {"email": email, "password": "é" * 10, "name": "Zoë Ünïcode"})
    assert res.status == 201, res
    assert res.json["name"] == "Zoë Ünïcode"
    assert query("SELECT name FROM users.users WHERE id = %s", res.json["id"])[0][0] == "Zoë Ünïcode"
    assert user_service.post("/api/users/login", {"email": email, "password": "é" * 10},
                             {"X-Forwarded-For": client_ip()}).status == 200
    wrong = user_service.post("/api/users/login", {"email": email, "password": "e" * 10},
                              {"X-Forwarded-For": client_ip()})
    assert wrong.status == 401 and wrong.error_code() == "invalid_credentials"


def test_register_login_me_logout_then_the_token_is_refused(user_service, account):
    acct = account()
    res = acct.login()
    assert res.status == 200, res
    body = res.json
    assert set(body) == {"token", "token_type", "expires_at", "expires_in", "user"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["user"]["id"] == acct.user["id"] and body["user"]["last_login_at"] is not None
    claims = token_claims(body["token"])
    assert claims["sub"] == acct.user["id"] and claims["role"] == "customer"
    assert claims["exp"] - claims["iat"] == 3600 and len(claims["jti"]) == 32
    assert abs(claims["iat"] - time.time()) < 5
    assert body["expires_at"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(claims["exp"]))

    hits = user_service.metric("oms_user_cache_requests_total", result="hit")
    me = user_service.get("/api/users/me", bearer(body["token"]))
    assert me.status == 200 and me.json["id"] == acct.user["id"] and me.json["email"] == acct.email
    assert me.json == body["user"]  # the login's fresh document, last_login_at included
    assert user_service.metric("oms_user_cache_requests_total", result="hit") == hits + 1
    assert "password" not in me.body and "argon2" not in me.body

    out = user_service.post("/api/users/logout", headers=bearer(body["token"]))
    assert out.status == 200 and out.json == {"status": "logged_out"}
    for res in (user_service.get("/api/users/me", bearer(body["token"])),
                user_service.post("/api/users/logout", headers=bearer(body["token"]))):
        assert res.status == 401 and res.error_code() == "token_revoked"
    # the deny-list entry lives exactly as long as the token would have
    ttl = int(__import__("oms_test").redis_cli("TTL", f"oms:auth:denied:{claims['jti']}"))
    assert 3500 < ttl <= 3600
    # other sessions of the same user are unaffected
    assert user_service.get("/api/users/me", bearer(acct.token())).status == 200


def test_login_records_the_attempt_with_the_forwarded_client(user_service, account):
    acct = account()
    ip = client_ip()
    assert acct.login(ip=ip).status == 200
    rows = query("SELECT outcome, host(client_ip) FROM users.login_attempts WHERE email = %s", acct.email)
    assert rows == [("success", ip)]


def user_id_claims(user_id, **extra):
    now = int(time.time())
    claims = {"sub": user_id, "role": "customer", "iat": now - 10, "exp": now + 600, "jti": unique("j").lower()}
    claims.update(extra)
    return claims


def test_bad_tokens_are_refused(user_service, account):
    acct = account()
    good = acct.token()
    header, payload, signature = good.split(".")
    claims = token_claims(good)
    now = int(time.time())
    cases = {
        "tampered payload": header + "." + make_token(dict(claims, role="admin")).split(".")[1] + "." + signature,
        "flipped signature": good[:-2] + ("A" if good[-2] != "A" else "B") + good[-1],
        "other key": make_token(claims, secret="not-the-secret-not-the-secret-0123456789"),
        "expired": make_token(dict(claims, iat=now - 7200, exp=now - 3600)),
        "alg none": make_token(claims, header={"alg": "none", "typ": "JWT"}, sign=False),
        "alg none, signed": make_token(claims, header={"alg": "none"}),
        "alg HS512": make_token(claims, header={"alg": "HS512", "typ": "JWT"}),
        "no exp": make_token({k: v for k, v in claims.items() if k != "exp"}),
        "unknown role": make_token(dict(claims, role="superuser")),
        "not a jwt": "definitely-not-a-token",
        "two parts": header + "." + payload,
    }
    for name, token in cases.items():
        res = user_service.get("/api/users/me", bearer(token))
        assert res.status == 401, (name, res)
        assert res.error_code() == "invalid_token", name
        assert res.headers["www-authenticate"].startswith("Bearer")
    # the real token still works, and a correctly signed foreign token works too
    me = user_service.get("/api/users/me", bearer(good))
    assert me.status == 200 and me.json["id"] == acct.user["id"]
    me = user_service.get("/api/users/me", bearer(make_token(user_id_claims(acct.user["id"]))))
    assert me.status == 200 and me.json["id"] == acct.user["id"]
    # missing or non-bearer credentials
    for headers in ({}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer "}):
        res = user_service.get("/api/users/me", headers)
        assert res.status == 401 and res.error_code() == "unauthorized"
    # the static admin token is for admin endpoints, not an identity
    res = user_service.get("/api/users/me", admin_headers())
    assert res.status == 401 and res.error_code() == "invalid_token", res


def test_admin_list_pages_and_filters(user_service, account):
    account()
    first = user_service.get("/api/users?limit=5", admin_headers())
    assert first.status == 200, first
    page = first.json
    assert page["limit"] == 5 and page["offset"] == 0 and len(page["items"]) == 5
    assert page["total"] >= 202  # 201 lab accounts + this test's
    assert page["total"] == query("SELECT count(*) FROM users.users")[0][0]
    assert page["items"][0]["email"] == "admin@oms.example.com"  # sign-up order
    assert page["items"][1]["email"] == "customer001@oms.example.com"
    second = user_service.get("/api/users?limit=5&offset=5", admin_headers()).json
    assert {u["id"] for u in second["items"]}.isdisjoint(u["id"] for u in page["items"])
    assert all("password" not in json.dumps(u) for u in page["items"])
    admins = user_service.get("/api/users?role=admin&limit=100", admin_headers()).json
    assert admins["items"] and all(u["role"] == "admin" for u in admins["items"])
    assert admins["total"] == query("SELECT count(*) FROM users.users WHERE role = 'admin'")[0][0]
    assert sorted(u["id"] for u in admins["items"]) == sorted(
        r[0] for r in query("SELECT id::text FROM users.users WHERE role = 'admin'"))
    for query_string, field in [("limit=0", "limit"), ("limit=101", "limit"), ("offset=-1", "offset"),
                                ("limit=ten", "limit"), ("role=root", "role"), ("role=service", "role")]:
        res = user_service.get(f"/api/users?{query_string}", admin_headers())
        assert res.status == 400 and res.json["error"]["field"] == field, res
        assert res.error_code() == "invalid_request"


def test_admin_endpoints_refuse_customers_and_strangers(user_service, account):
    acct = account()
    customer = acct.token()
    for method, path, body in [("GET", "/api/users", None),
                               ("PATCH", f"/api/users/{acct.user['id']}", {"role": "admin"})]:
        for headers, status, code in [(bearer(customer), 403, "forbidden"), ({}, 401, "unauthorized"),
                                      (bearer("wrong-token-wrong-token"), 401, "invalid_token")]:
            res = user_service.request(method, path, body, headers)
            assert res.status == status and res.error_code() == code, (method, res)
            assert "items" not in res.body
    assert query("SELECT role FROM users.users WHERE id = %s", acct.user["id"])[0][0] == "customer"
    # a refused role change revoked nothing
    assert user_service.get("/api/users/me", bearer(customer)).status == 200


def test_role_change_revokes_old_tokens_and_grants_admin(user_service, account):
    acct, other = account(), account()
    old_token = acct.token()
    res = user_service.request("PATCH", f"/api/users/{acct.user['id']}", {"role": "admin"}, admin_headers())
    assert res.status == 200 and res.json["role"] == "admin", res
    # the old token carries the old role: refused from now on
    res = user_service.get("/api/users/me", bearer(old_token))
    assert res.status == 401 and res.error_code() == "token_revoked"
    assert query("SELECT role FROM users.users WHERE id = %s", acct.user["id"])[0][0] == "admin"
    # tokens issued in the same second as the change are void too; wait for the next one
    next_second()
    admin_token = acct.token()
    assert token_claims(admin_token)["role"] == "admin"
    assert user_service.get("/api/users/me", bearer(admin_token)).json["role"] == "admin"  # cache rewritten
    listed = user_service.get("/api/users?limit=1", bearer(admin_token))
    assert listed.status == 200 and len(listed.json["items"]) == 1
    # an admin token may set roles; setting one always revokes that user's
    # tokens (a retried request must revoke as surely as the first), and
    # nobody else's
    other_token = other.token()
    res = user_service.request("PATCH", f"/api/users/{other.user['id']}", {"role": "customer"},
                               bearer(admin_token))
    assert res.status == 200 and res.json["role"] == "customer"
    res = user_service.get("/api/users/me", bearer(other_token))
    assert res.status == 401 and res.error_code() == "token_revoked"
    assert query("SELECT role FROM users.users WHERE id = %s", other.user["id"])[0][0] == "customer"
    assert user_service.get("/api/users/me", bearer(admin_token)).status == 200


def test_tokens_issued_in_the_second_of_a_role_change_are_void(user_service, account):
    """Revocation is recorded in whole seconds: a token issued in the same
    second as the change may carry the old role, so it is refused too; one
    issued a second later is not."""
    acct = account()
    while True:  # the PATCH must fall within one second, to know which
        before = int(time.time())
        res = user_service.request("PATCH", f"/api/users/{acct.user['id']}", {"role": "admin"}, admin_headers())
        assert res.status == 200, res
        if int(time.time()) == before:
            break
    same_second = make_token(user_id_claims(acct.user["id"], role="customer", iat=before))
    res = user_service.get("/api/users/me", bearer(same_second))
    assert res.status == 401 and res.error_code() == "token_revoked", res
    next_second()
    later = make_token(user_id_claims(acct.user["id"], role="admin", iat=before + 1))
    me = user_service.get("/api/users/me", bearer(later))
    assert me.status == 200 and me.json["role"] == "admin", me


def test_role_change_by_upper_case_id_still_revokes(user_service, account):
    acct = account()
    token = acct.token()
    res = user_service.request("PATCH", f"/api/users/{acct.user['id'].upper()}", {"role": "admin"},
                               admin_headers())
    assert res.status == 200 and res.json["id"] == acct.user["id"], res
    res = user_service.get("/api/users/me", bearer(token))
    assert res.status == 401 and res.error_code() == "token_revoked"
    next_second()
    assert user_service.get("/api/users/me", bearer(acct.token())).json["role"] == "admin"


@pytest.mark.parametrize("path,body,status,field", [
    ("/api/users/not-a-uuid", {"role": "admin"}, 400, "id"),
    ("/api/users/00000000-0000-4000-8000-000000000000", {"role": "admin"}, 404, None),
    (None, {"role": "root"}, 400, "role"),
    (None, {"role": "service"}, 400, "role"),  # a token role, never an account's
    (None, {"role": 1}, 400, "role"),
    (None, {}, 400, "role"),
    (None, {"role": "admin", "email": "x@example.com"}, 400, "email"),
])
def test_bad_role_changes_are_rejected(user_service, account, path, body, status, field):
    acct = account()
    token = acct.token()
    res = user_service.request("PATCH", path or f"/api/users/{acct.user['id']}", body, admin_headers())
    assert res.status == status, res
    assert res.error_code() == ("not_found" if status == 404 else "invalid_request")
    if field:
        assert res.json["error"]["field"] == field
    assert query("SELECT role FROM users.users WHERE id = %s", acct.user["id"])[0][0] == "customer"
    assert user_service.get("/api/users/me", bearer(token)).status == 200  # nothing revoked


def test_the_last_admin_cannot_be_demoted(user_service, account):
    acct = account()
    assert user_service.request("PATCH", f"/api/users/{acct.user['id']}", {"role": "admin"},
                                admin_headers()).status == 200
    others = [r[0] for r in query("SELECT id::text FROM users.users WHERE role = 'admin' AND id <> %s",
                                  acct.user["id"])]
    query("UPDATE users.users SET role = 'customer' WHERE id = ANY(%s::uuid[])", others)
    try:
        res = user_service.request("PATCH", f"/api/users/{acct.user['id']}", {"role": "customer"}, admin_headers())
        assert res.status == 409 and res.error_code() == "last_admin", res
        assert query("SELECT role FROM users.users WHERE id = %s", acct.user["id"])[0][0] == "admin"
    finally:
        query("UPDATE users.users SET role = 'admin' WHERE id = ANY(%s::uuid[])", others)
    res = user_service.request("PATCH", f"/api/users/{acct.user['id']}", {"role": "customer"}, admin_headers())
    assert res.status == 200 and res.json["role"] == "customer"


def test_two_admins_demoting_each_other_leave_one_admin(user_service, account):
    from concurrent.futures import ThreadPoolExecutor
    a, b = account(), account()
    for acct in (a, b):
        assert user_service.request("PATCH", f"/api/users/{acct.user['id']}", {"role": "admin"},
                                    admin_headers()).status == 200
    others = [r[0] for r in query("SELECT id::text FROM users.users WHERE role = 'admin' AND id NOT IN (%s, %s)",
                                  a.user["id"], b.user["id"])]
    query("UPDATE users.users SET role = 'customer' WHERE id = ANY(%s::uuid[])", others)
    try:
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(
                lambda acct: user_service.request("PATCH", f"/api/users/{acct.user['id']}", {"role": "customer"},
                                                  admin_headers()), (a, b)))
        assert sorted(r.status for r in results) == [200, 409], results
        assert [r.error_code() for r in results if r.status == 409] == ["last_admin"]
        assert query("SELECT count(*) FROM users.users WHERE role = 'admin' AND id IN (%s, %s)",
                     a.user["id"], b.user["id"])[0][0] == 1
    finally:
        query("UPDATE users.users SET role = 'admin' WHERE id = ANY(%s::uuid[])", others)


def test_seeded_lab_accounts_can_log_in(user_service):
    assert query("SELECT count(*) FROM users.users WHERE email LIKE 'customer___@oms.example.com'")[0][0] == 200
    for email, password, role in [("admin@oms.example.com", "LabAdmin-Password-1", "admin"),
                                  ("customer001@oms.example.com", "LabCustomer-001", "customer"),
                                  ("customer200@oms.example.com", "LabCustomer-200", "customer")]:
        res = user_service.post("/api/users/login", {"email": email, "password": password},
                                {"X-Forwarded-For": client_ip()})
        assert res.status == 200, (email, res)
        assert res.json["user"]["role"] == role and res.json["user"]["email"] == email
        assert token_claims(res.json["token"])["role"] == role
