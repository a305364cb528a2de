"""Hostile requests against the running service: bytes in paths and query
strings that would cut C strings short, bodies under a content type that
only looks like JSON, and request framing that two parsers could read two
ways. Each one gets a 4xx JSON error and changes nothing."""
import json
import os
import resource
import signal
import socket
import time

import pytest

from oms_test import admin_headers, query, raw_request, running, service_headers, stack, unique, wait_until


def read_until_closed(sock, timeout=10):
    """Reads until the server closes the connection; returns the bytes."""
    sock.settimeout(timeout)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def send_and_expect_close(port, data):
    """Sends raw bytes, returns (status, head, body) of the answer, and
    fails unless the server closed the connection after it."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        response = read_until_closed(sock)
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), head.lower(), body


@pytest.mark.parametrize("suffix", ["%00X", "%00", "%0a", "%1b[31m", "%7f", "%c2%85"])
def test_control_bytes_in_a_path_parameter_are_refused(inventory, suffix):
    res = inventory.get(f"/api/inventory/products/ELEC-HDPH-001{suffix}")
    assert res.status == 400, res
    assert res.error_code() == "invalid_request"
    assert res.json["error"]["field"] == "sku"


def test_a_path_parameter_is_decoded_once(inventory):
    """%2541 is the text %41, not the letter A (and %2500 is not a NUL)."""
    assert inventory.get("/api/inventory/products/ELEC-HDPH-001").status == 200
    for encoded in ("ELEC-HDPH-00%2531", "ELEC-HDPH-001%2500x"):
        res = inventory.get(f"/api/inventory/products/{encoded}")
        assert res.status == 400, res  # '%' is no sku character: never the product
        assert res.json["error"]["field"] == "sku"


def test_a_reservation_id_with_a_nul_is_refused(inventory, product):
    sku = product()
    res = inventory.post("/api/inventory/reservations", {"order_id": unique("ord-"), "items": [{"sku": sku, "qty": 1}]},
                         service_headers())
    assert res.status == 201, res
    reservation = res.json["id"]
    before = query("SELECT status FROM inventory.reservations WHERE id = %s", reservation)
    for action in ("commit", "release"):
        res = inventory.post(f"/api/inventory/reservations/{reservation}%00/{action}", headers=service_headers())
        assert res.status == 400, res
        assert res.json["error"]["field"] == "id"
    assert query("SELECT status FROM inventory.reservations WHERE id = %s", reservation) == before


@pytest.mark.parametrize("query_string", ["category=books%00x", "limit=5%00", "offset=0%0d%0a", "x%00=1"])
def test_control_bytes_in_the_query_string_are_refused(inventory, query_string):
    res = inventory.get(f"/api/inventory/products?{query_string}")
    assert res.status == 400, res
    assert res.error_code() == "invalid_request"


def product_body(sku):
    return ('{"sku":"%s","name":"n","category":"lab-tests","price_cents":1,"stock":1}' % sku).encode()


@pytest.mark.parametrize("content_type,status", [
    ("application/json-patch+json", 415), ("application/jsonx", 415), ("application/json5", 415),
    ("text/json", 415), ("application/x-www-form-urlencoded", 415),
    ("application/json", 201), ("Application/JSON", 201), ("application/json; charset=utf-8", 201),
    ("application/json ;charset=UTF-8", 201),
])
def test_only_application_json_is_accepted(inventory, content_type, status):
    """application/json, with parameters such as charset; nothing that
    merely starts like it."""
    sku = unique("CT-")
    headers = dict(admin_headers(), **{"Content-Type": content_type})
    res = inventory.request("POST", "/api/inventory/products", raw=product_body(sku), headers=headers)
    assert res.status == status, res
    if status == 415:
        assert res.error_code() == "unsupported_media_type"
    assert query("SELECT count(*) FROM inventory.products WHERE sku = %s", sku) == [(1 if status == 201 else 0,)]


def test_a_body_without_a_content_type_is_refused(inventory):
    sku = unique("CT-")
    body = product_body(sku)
    head = (f"POST /api/inventory/products HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin_headers()['Authorization'][7:]}"
            f"\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    status, _, payload = raw_request(inventory.port, head + body)
    assert status == 415, payload
    assert query("SELECT count(*) FROM inventory.products WHERE sku = %s", sku) == [(0,)]


def reservation_request(framing, body):
    return (b"POST /api/inventory/reservations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: " + service_headers()["Authorization"].encode() + b"\r\n" + framing + b"\r\n" + body)


@pytest.mark.parametrize("framing", [
    b"Content-Length: %d\r\nContent-Length: 3\r\n",
    b"Content-Length: 3\r\nContent-Length: %d\r\n",
    b"Transfer-Encoding: chunked\r\nContent-Length: %d\r\n",
    b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n",
])
def test_conflicting_framing_is_refused_and_the_connection_closed(inventory, product, framing):
    sku = product()
    order = unique("smuggle-")
    payload = ('{"order_id":"%s","items":[{"sku":"%s","qty":1}]}' % (order, sku)).encode()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload)
    body = chunked if b"chunked" in framing else payload
    status, head, reply = send_and_expect_close(inventory.port, reservation_request(framing % len(body), body))
    assert status == 400, reply
    assert b"content-type: application/json" in head
    assert b"connection: close" in head
    assert b'"invalid_request"' in reply
    assert query("SELECT count(*) FROM inventory.reservations WHERE order_id = %s", order) == [(0,)]


def test_repeated_identical_content_length_is_accepted(inventory, product):
    sku = product()
    order = unique("same-length-")
    payload = ('{"order_id":"%s","items":[{"sku":"%s","qty":1}]}' % (order, sku)).encode()
    framing = b"Content-Length: %d\r\nContent-Length: %d\r\nConnection: close\r\n" % (len(payload), len(payload))
    status, _, reply = raw_request(inventory.port, reservation_request(framing, payload))
    assert status == 201, reply
    assert query("SELECT count(*) FROM inventory.reservations WHERE order_id = %s", order) == [(1,)]


def cpu_seconds(pid):
    """User + system CPU time the process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_idle_connections(port, count):
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.settimeout(5)
        sock.connect(("127.0.0.1", port))  # the kernel completes it even while the service does not accept
        sockets.append(sock)
    return sockets


def pause_lines(service, reason):
    return [l for l in service.log_lines() if l["msg"] == "not accepting connections" and l["reason"] == reason]


@pytest.mark.parametrize("reason", ["limit", "descriptors"])
def test_a_connection_flood_neither_spins_the_workers_nor_outlasts_itself(reason):
    """Idle connections beyond what a worker may hold (MAX_CONNECTIONS), or
    beyond the process's file descriptors: the workers stop accepting
    instead of retrying accept() flat out, say so once, and serve again as
    soon as the flood leaves."""
    env = {"THREADS": "2", "MAX_CONNECTIONS": "20" if reason == "limit" else "100000"}
    with running("inventory", **env) as service:
        pid = service.process.pid
        if reason == "descriptors":
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (160, 160))
        flood = open_idle_connections(service.port, 300)
        try:
            wait_until(lambda: pause_lines(service, reason), 20, what="the workers to stop accepting")
            before = cpu_seconds(pid)
            window_started = time.monotonic()
            time.sleep(2)  # a measuring window, not a wait for a condition
            used = cpu_seconds(pid) - before
            window = time.monotonic() - window_started
            assert used < 0.25 * window, f"{used:.2f} s of CPU in {window:.2f} s while not accepting"
        finally:
            for sock in flood:
                sock.close()
        res = wait_until(lambda: service.get("/health/live", timeout=20), 30, what="a request to be served again")
        assert res.status == 200
        assert len(pause_lines(service, reason)) <= 2  # once per worker and episode, not once per accept()
        assert service.metric("http_server_accept_pauses_total", reason=reason) >= 1
        assert [l for l in service.log_lines() if l["msg"] == "accepting connections again"]
        started = [l for l in service.log_lines() if l["msg"] == "service started"][-1]
        assert started["max_connections"] == int(env["MAX_CONNECTIONS"])


def postmaster_pid():
    data_directory = query("SELECT setting FROM pg_settings WHERE name = 'data_directory'")[0][0]
    with open(os.path.join(data_directory, "postmaster.pid")) as f:
        return int(f.readline())


def pool_connections(service):
    return sum(service.metric("db_client_connections", state=s) for s in ("idle", "used"))


def test_readiness_turns_503_while_postgres_shuts_down_and_the_pool_lets_go():
    """SIGTERM asks PostgreSQL for a smart shutdown: no new sessions, but
    open ones work on, so a pool that keeps its connections keeps the
    server from ever stopping. Readiness sees the refusal with a fresh
    connection, and the pool closes its own."""
    with running("inventory", THREADS="2") as service:
        service.wait_ready_everywhere()
        assert pool_connections(service) > 0
        os.kill(postmaster_pid(), signal.SIGTERM)
        try:
            res = wait_until(lambda: (lambda r: r if r.status == 503 else None)(service.get("/health/ready")), 20,
                             what="readiness to report the shutdown")
            assert res.json["error"]["code"] == "dependency_unavailable"
            assert "postgres" in res.json["error"]["message"]
            assert "shutting down" in res.json["checks"]["postgres"]["reason"]
            wait_until(lambda: service.get("/health/ready").status == 503 and pool_connections(service) == 0, 20,
                       what="both workers' pools to close their connections")
            assert service.get("/api/inventory/products?limit=1").status == 503
            assert [l for l in service.log_lines() if l["msg"].startswith("postgres is shutting down")]
        finally:
            stack("stop-postgres")
            stack("start-postgres")
        service.wait_ready_everywhere(timeout=30)
        assert service.get("/api/inventory/products?limit=1").status == 200


@pytest.mark.parametrize("head", [
    b"GARBAGE\r\n\r\n",
    b"GET /health/live HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
    b"GET /health/live HTTP/9\r\n\r\n",
    b"GET /health/live HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(120)) + b"\r\n",
    b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 430000 + b"\r\n\r\n",
], ids=["garbage", "header-without-colon", "bad-version", "too-many-headers", "oversized-head"])
def test_a_malformed_request_head_gets_a_json_400(inventory, head):
    """h2o's own answer to an unparsable head is a fixed text/plain page."""
    status, reply_head, body = send_and_expect_close(inventory.port, head)
    assert status == 400, body
    assert b"content-type: application/json" in reply_head
    doc = json.loads(body)
    assert doc["error"]["code"] == "invalid_request" and doc["error"]["message"]


def test_a_request_head_arriving_in_pieces_is_served(inventory):
    with socket.create_connection(("127.0.0.1", inventory.port), timeout=10) as sock:
        for piece in (b"GET /health/li", b"ve HTTP/1.1\r\nHo", b"st: x\r\nConnection: close\r\n", b"\r\n"):
            sock.sendall(piece)
        response = read_until_closed(sock)
    assert response.startswith(b"HTTP/1.1 200"), response[:200]
