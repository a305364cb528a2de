"""The native gateway (scripts/stack.sh start-gateway: the framing guard in
front of Debian's h2o, infrastructure/h2o/) in front of the user and
inventory services: routing by prefix, DESIGN's JSON errors for what the
gateway answers itself, refusal of requests whose length is ambiguous
(RFC 9112 §6.3), and well over h2o's default 1,024 connections."""
import json
import os
import resource
import socket
import time

import pytest

from oms_test import STACK_DIR, request

# The Makefile's sanitizer flavour, for the guard (stack.sh builds it).
SANITIZER_CFLAGS = "-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined"


class Gateway:
    def __init__(self, stack_sh, stack_dir, port, inventory_port, user_port):
        self.stack_sh = stack_sh
        self.port = port
        self.env = {"STACK_DIR": stack_dir, "GATEWAY_PORT": port, "INVENTORY_PORT": inventory_port,
                    "USER_PORT": user_port, "GUARD_CFLAGS": SANITIZER_CFLAGS}
        self.log_dir = os.path.join(stack_dir, "logs")

    def start(self):
        self.stack_sh(self.env, "start-gateway", timeout=120)
        return self

    def stop(self):
        self.stack_sh(self.env, "stop-gateway", timeout=60)
        with open(os.path.join(self.log_dir, "gateway-guard.log"), errors="replace") as f:
            log = f.read()
        for problem in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            assert problem not in log, log[-4000:]

    def get(self, path, headers=None):
        return request(self.port, "GET", path, headers=headers)

    def post(self, path, body, headers=None):
        return request(self.port, "POST", path, body, headers)


@pytest.fixture(scope="module")
def gateway(services, stack_sh, private_ports):
    (port,) = private_ports(1)
    gw = Gateway(stack_sh, os.path.join(STACK_DIR, "native-gateway"), port, services["inventory"].port,
                 services["user"].port).start()
    yield gw
    gw.stop()


def exchange(port, data, timeout=5):
    """Sends raw bytes on one connection and reads until the server closes
    it or goes quiet for a second; returns ([(status, headers, body)], closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        sock.settimeout(1)
        received, closed, deadline = b"", False, time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                closed = True
                break
            received += chunk
    responses = []
    while received:
        head, _, rest = received.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        length = int(headers.get("content-length", 0))
        responses.append((int(lines[0].split(" ")[1]), headers, rest[:length]))
        received = rest[length:]
    return responses, closed


def assert_json_error(status, headers, body, expected_status, code):
    assert status == expected_status, (status, body)
    assert headers["content-type"] == "application/json", headers
    doc = json.loads(body)
    assert doc["error"]["code"] == code and doc["error"]["message"], doc
    return doc["error"]["message"]


# --- routing ---------------------------------------------------------------------------


def test_routes_each_prefix_to_its_service_unchanged(gateway, services):
    res = gateway.get("/api/inventory/products?limit=2")
    assert res.status == 200 and len(res.json["items"]) == 2, res
    assert res.json == services["inventory"].get("/api/inventory/products?limit=2").json

    res = gateway.post("/api/users/login", {"email": "customer003@oms.example.com", "password": "LabCustomer-003"})
    assert res.status == 200, res
    me = gateway.get("/api/users/me", {"Authorization": f"Bearer {res.json['token']}"})
    assert me.status == 200 and me.json["email"] == "customer003@oms.example.com", me


def test_service_errors_pass_through_untouched(gateway, services):
    # the gateway's own error pages must not replace the services' answers
    through = gateway.get("/api/inventory/products/NO-SUCH-SKU")
    direct = services["inventory"].get("/api/inventory/products/NO-SUCH-SKU")
    assert through.status == direct.status == 404
    assert through.body == direct.body and through.error_code() == "not_found"
    bad = gateway.post("/api/users/login", {"email": "not an email"})
    assert bad.status == 400 and bad.body == services["user"].post("/api/users/login", {"email": "not an email"}).body


def test_unknown_paths_get_a_json_404(gateway):
    for method, path in [("GET", "/"), ("GET", "/nothing/here"), ("POST", "/api/ordersX"),
                         ("GET", "/api/inventoryX"), ("DELETE", "/api")]:
        res = request(gateway.port, method, path)
        assert_json_error(res.status, res.headers, res.body, 404, "not_found")


def test_a_service_that_is_down_gets_a_json_502_naming_it(stack_sh, private_ports):
    port, nothing_at_inventory, nothing_at_user = private_ports(3)
    gw = Gateway(stack_sh, os.path.join(STACK_DIR, "native-gateway-down"), port, nothing_at_inventory,
                 nothing_at_user).start()
    try:
        res = gw.get("/api/inventory/products")
        assert assert_json_error(res.status, res.headers, res.body, 502, "upstream_unavailable") \
            == "inventory is unavailable"
        res = gw.post("/api/users/login", {"email": "a@b.c", "password": "x"})
        assert assert_json_error(res.status, res.headers, res.body, 502, "upstream_unavailable") \
            == "user is unavailable"
    finally:
        gw.stop()


# --- framing (RFC 9112 §6.3) ---------------------------------------------------------------------

LOGIN = b'{"email":"customer004@oms.example.com","password":"LabCustomer-004"}'


def test_two_different_content_lengths_are_refused_and_the_connection_closed(gateway):
    # Content-Length 0 and 52: one reading sees an empty body and a second
    # request hidden in it, the other a 52-byte body.
    hidden = b"GET /api/inventory/products?limit=1 HTTP/1.1\r\nHost: x\r\n\r\n"
    data = (b"POST /api/users/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 0\r\nContent-Length: %d\r\n\r\n" % len(hidden)) + hidden
    responses, closed = exchange(gateway.port, data)
    assert len(responses) == 1 and closed, responses
    assert_json_error(*responses[0], 400, "invalid_request")


@pytest.mark.parametrize("framing", [
    b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
], ids=["length first", "transfer-encoding first"])
def test_transfer_encoding_with_content_length_is_refused_and_the_connection_closed(gateway, framing):
    body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(LOGIN), LOGIN)
    data = b"POST /api/users/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + framing + b"\r\n" + body
    responses, closed = exchange(gateway.port, data)
    assert len(responses) == 1 and closed, responses
    assert_json_error(*responses[0], 400, "invalid_request")


@pytest.mark.parametrize("data, status, code", [
    (b"NOT HTTP AT ALL\r\n\r\n", 400, "invalid_request"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n", 400, "invalid_request"),
    (b"POST /api/users/login HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello", 400, "invalid_request"),
    (b"POST /api/users/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400,
     "invalid_request"),
    (b"POST /api/users/login HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "invalid_request"),
    (b"POST /api/users/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501,
     "not_implemented"),
    (b"POST /api/users/login HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n", 413,
     "payload_too_large"),
    (b"POST /api/users/login HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nExpect: x\r\n\r\n{", 417,
     "expectation_failed"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", 431, "request_header_too_large"),
], ids=["not http", "folded header", "length list", "broken chunk", "chunked http/1.0", "unknown coding",
        "body too large", "unknown expectation", "head too large"])
def test_malformed_requests_get_json_errors_and_the_connection_closed(gateway, data, status, code):
    responses, closed = exchange(gateway.port, data)
    assert len(responses) == 1 and closed, responses
    assert_json_error(*responses[0], status, code)


def test_well_framed_requests_pass_chunked_pipelined_or_with_a_repeated_equal_length(gateway):
    chunked = (b"POST /api/users/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(LOGIN), LOGIN))
    repeated = (b"POST /api/users/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\nContent-Length: %d\r\n\r\n%s" % (len(LOGIN), len(LOGIN), LOGIN))
    listing = b"GET /api/inventory/products?limit=1 HTTP/1.1\r\nHost: x\r\n\r\n"
    responses, closed = exchange(gateway.port, chunked + listing + repeated + listing)
    assert [r[0] for r in responses] == [200, 200, 200, 200] and not closed, responses
    assert "token" in json.loads(responses[0][2]) and "token" in json.loads(responses[2][2])


def test_requests_before_a_refused_one_are_answered_first(gateway):
    listing = b"GET /api/inventory/products?limit=1 HTTP/1.1\r\nHost: x\r\n\r\n"
    refused = b"POST /api/users/login HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n{}"
    responses, closed = exchange(gateway.port, listing + listing + refused + listing)
    assert [r[0] for r in responses] == [200, 200, 400] and closed, responses


# --- connections ------------------------------------------------------------------------------


def test_1100_idle_keep_alive_connections_do_not_block_a_new_client(gateway):
    """h2o's default limit is 1,024 connections: above it, a new client waits
    until an idle one times out (h2o's 10-second keep-alive timeout). The
    bound below is generous for a request that normally takes milliseconds,
    yet well under that timeout."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2400:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    probe = b"GET /gateway-probe HTTP/1.1\r\nHost: x\r\n\r\n"  # answered by the gateway itself (404)
    idle = []
    try:
        for _ in range(1100):
            sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=15)
            sock.sendall(probe)
            idle.append(sock)
        time.sleep(0.5)

        started = time.monotonic()
        res = request(gateway.port, "GET", "/api/inventory/products?limit=1", timeout=8)
        elapsed = time.monotonic() - started
        assert res.status == 200 and elapsed < 5, (res, elapsed)

        # every one of the 1,100 was answered, and stays open for more (keep-alive)
        for sock in idle:
            sock.settimeout(10)
            answer = sock.recv(4096)
            assert answer.startswith(b"HTTP/1.1 404"), answer[:200]
        for sock in idle[::50]:
            sock.sendall(probe)
            assert sock.recv(4096).startswith(b"HTTP/1.1 404")
    finally:
        for sock in idle:
            sock.close()
