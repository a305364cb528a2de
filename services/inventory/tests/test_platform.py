"""What every service gets from services/common: health, errors, trace
context, logs, metrics, fault flags, configuration checks and graceful
shutdown, exercised through the inventory service."""
import os
import re
import subprocess
import threading
import time

import pytest

from oms_test import BIN_DIR, Service, admin_headers, raw_request, request, running

TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


def test_health_endpoints(inventory):
    live = inventory.get("/health/live")
    assert live.status == 200 and live.json == {"status": "ok"}
    ready = inventory.get("/health/ready")
    assert ready.status == 200
    assert ready.json["checks"] == {"postgres": {"status": "up"}, "redis": {"status": "up"}}


def test_unknown_route_and_wrong_method(inventory):
    res = inventory.get("/api/inventory/nothing-here")
    assert res.status == 404 and res.error_code() == "not_found"
    res = inventory.request("DELETE", "/api/inventory/products/ELEC-HDPH-001")
    assert res.status == 405 and res.error_code() == "method_not_allowed"
    assert res.headers["allow"] == "GET, PATCH"


def test_traceparent_is_continued(inventory):
    incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    res = inventory.get("/api/inventory/products/ELEC-SPKR-002", headers={"traceparent": incoming})
    assert res.status == 200
    out = res.headers["traceparent"]
    assert TRACEPARENT.match(out)
    assert out.split("-")[1] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert out.split("-")[2] != "00f067aa0ba902b7"  # our own span
    access = [line for line in inventory.log_lines()
              if line["msg"] == "request" and line["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"]
    assert access, "no access log line carries the incoming trace id"
    line = access[-1]
    assert line["span_id"] == out.split("-")[2]
    assert line["route"] == "/api/inventory/products/{sku}"
    assert line["method"] == "GET" and line["status"] == 200
    assert isinstance(line["duration_ms"], (int, float))
    assert line["service"] == "inventory" and line["level"] == "info"
    assert line["client"] == "127.0.0.1"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", line["ts"])


@pytest.mark.parametrize("bad", ["garbage", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                                 "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "ff-" + "a" * 32 + "-" +
                                 "b" * 16 + "-01"])
def test_bad_traceparent_starts_a_new_trace(inventory, bad):
    res = inventory.get("/api/inventory/products/ELEC-SPKR-002", headers={"traceparent": bad})
    assert res.status == 200
    out = res.headers["traceparent"]
    assert TRACEPARENT.match(out)
    assert out.split("-")[1] not in bad.lower()


def test_access_log_names_the_forwarded_client(inventory):
    # The test client is on loopback, a trusted proxy by default.
    inventory.get("/health/live", headers={"X-Forwarded-For": "203.0.113.7, 172.18.0.4"})
    inventory.get("/health/live", headers={"X-Forwarded-For": "203.0.113.7, 198.51.100.2"})
    inventory.get("/health/live", headers={"X-Forwarded-For": "<script>"})
    clients = [l["client"] for l in inventory.log_lines() if l["msg"] == "request" and l["route"] == "/health/live"]
    # trusted hops are skipped from the right; junk is ignored and the peer is used
    assert clients[-3:] == ["203.0.113.7", "198.51.100.2", "127.0.0.1"]


def test_forwarded_for_from_an_untrusted_peer_is_ignored():
    with running("inventory", TRUSTED_PROXIES="192.0.2.1") as service:
        service.get("/health/live", headers={"X-Forwarded-For": "203.0.113.7"})
        clients = [l["client"] for l in service.log_lines() if l["msg"] == "request"]
        assert clients[-1] == "127.0.0.1"


def test_every_log_line_is_json_with_design_fields(inventory):
    inventory.get("/api/inventory/products?limit=3")
    lines = inventory.log_lines()
    assert lines
    for line in lines:
        assert {"ts", "level", "service", "msg", "trace_id", "span_id"} <= set(line), line


def promtool_check(text):
    return subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)


def test_metrics_pass_promtool_and_cover_design(inventory, product):
    sku = product(stock=7)
    inventory.get(f"/api/inventory/products/{sku}")
    inventory.post("/api/inventory/reservations", {"order_id": f"m-{sku}", "items": [{"sku": sku, "qty": 1}]})
    time.sleep(5.5)  # the stock gauges refresh every 5 s
    res = inventory.get("/metrics")
    assert res.status == 200
    assert res.headers["content-type"].startswith("text/plain; version=0.0.4")
    check = promtool_check(res.body)
    assert check.returncode == 0, check.stdout + check.stderr
    text = res.body
    for needle in [
        'http_server_request_duration_seconds_bucket{method="GET",route="/api/inventory/products/{sku}",'
        'status_code="200",le="0.005"}',
        "# TYPE http_server_active_requests gauge",
        'db_client_connections{state="idle"}',
        'db_client_operation_duration_seconds_count{system="postgresql",operation="product_get"}',
        'db_client_operation_duration_seconds_count{system="redis",operation="GET"}',
        f'oms_inventory_stock{{sku="{sku}"}} 6',
        "oms_inventory_low_stock_products ",
        'oms_inventory_reservations_total{outcome="held"}',
        'oms_inventory_cache_requests_total{result="miss"}',
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "process_max_fds ",
        "process_start_time_seconds ",
        'oms_build_info{version="',
    ]:
        assert needle in text, f"missing {needle!r}"
    # labels stay low-cardinality: no raw paths or ids
    assert sku not in "".join(l for l in text.splitlines() if l.startswith("http_server"))


def test_fault_admin_requires_token_and_validates(inventory):
    assert inventory.get("/admin/faults").status == 401
    assert inventory.get("/admin/faults", headers={"Authorization": "Bearer nope-nope-nope-nope"}).status == 401
    for body, field in [({"Inventory.Latency": 1}, "Inventory.Latency"), ({"inventory.latency_ms": "slow"},
                                                                           "inventory.latency_ms"),
                        ({"inventory.latency_ms": -5}, "inventory.latency_ms"), ({"nodot": 1}, "nodot")]:
        res = inventory.request("PUT", "/admin/faults", body, admin_headers())
        assert res.status == 400 and res.json["error"]["field"] == field
    assert inventory.get("/admin/faults", headers=admin_headers()).json == {}


def test_faults_merge_and_clear(inventory):
    assert inventory.set_faults({"payment.failure_rate": 0.2, "inventory.latency_ms": 1}) == \
        {"payment.failure_rate": 0.2, "inventory.latency_ms": 1}
    assert inventory.set_faults({"payment.unreachable": True}) == \
        {"payment.failure_rate": 0.2, "inventory.latency_ms": 1, "payment.unreachable": 1}
    assert inventory.set_faults({"payment.failure_rate": 0, "payment.unreachable": False,
                                 "inventory.latency_ms": None}) == {}


def test_error_rate_fault(inventory):
    inventory.set_faults({"inventory.error_rate": 1})
    time.sleep(1.5)
    res = inventory.get("/api/inventory/products/ELEC-SPKR-002")
    assert res.status == 500 and res.error_code() == "fault_injected"
    assert inventory.get("/health/ready").status == 200  # only business routes fail
    metrics = inventory.get("/metrics").body
    assert 'oms_fault_active{fault="inventory.error_rate"} 1' in metrics
    assert any(line["msg"] == "fault active" and line.get("fault") == "inventory.error_rate"
               for line in inventory.log_lines())
    inventory.set_faults({"inventory.error_rate": None})
    time.sleep(1.5)
    assert inventory.get("/api/inventory/products/ELEC-SPKR-002").status == 200
    assert 'oms_fault_active{fault="inventory.error_rate"} 0' in inventory.get("/metrics").body


def test_latency_fault(inventory):
    inventory.set_faults({"inventory.latency_ms": 400})
    time.sleep(1.5)
    started = time.monotonic()
    assert inventory.get("/api/inventory/products/ELEC-SPKR-002").status == 200
    assert time.monotonic() - started >= 0.4
    inventory.set_faults({"inventory.latency_ms": None})


@pytest.mark.parametrize("env,variable", [
    ({"PORT": "eighty"}, "PORT"), ({"PORT": "70000"}, "PORT"), ({"THREADS": "0"}, "THREADS"),
    ({"REDIS_URL": "http://localhost"}, "REDIS_URL"), ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
    ({"ADMIN_TOKEN": "short"}, "ADMIN_TOKEN"), ({"RESERVATION_TTL_SECONDS": "-1"}, "RESERVATION_TTL_SECONDS"),
    ({"LISTEN_ADDRESS": "localhost:80"}, "LISTEN_ADDRESS"),
    ({"DATABASE_URL": "postgresql://u@h:5432/db?nonsense_option=1"}, "DATABASE_URL"),
    ({"DATABASE_URL": "host=127.0.0.1 port"}, "DATABASE_URL"),
])
def test_bad_configuration_stops_startup_naming_the_variable(env, variable):
    full_env = dict(os.environ, **env)
    run = subprocess.run([os.path.join(BIN_DIR, "inventory")], env=full_env, capture_output=True, text=True,
                         timeout=10)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and variable in lines[0], run.stderr


def test_graceful_shutdown_finishes_in_flight_requests():
    service = Service("inventory", SHUTDOWN_TIMEOUT_MS=10000).start()
    service.set_faults({"inventory.latency_ms": 1500})
    time.sleep(1.5)
    results = []
    worker = threading.Thread(target=lambda: results.append(service.get("/api/inventory/products/ELEC-SPKR-002")))
    worker.start()
    time.sleep(0.3)
    service.process.send_signal(15)  # SIGTERM while the request is in flight
    time.sleep(0.2)
    with pytest.raises(OSError):
        request(service.port, "GET", "/health/live", timeout=2)  # no longer accepting
    worker.join(10)
    assert results and results[0].status == 200
    assert service.process.wait(10) == 0
    lines = service.log_lines()
    assert [l["msg"] for l in lines if l["msg"] in ("shutting down", "service stopped")] == \
        ["shutting down", "service stopped"]


def test_hostile_paths_get_well_formed_errors(inventory):
    import json
    for raw_path in (b"/api/inventory/\xff\xfe", b"/api/inventory/products/%FF%00", b"/" + b"a/" * 40,
                     b"/api/inventory/products/" + b"A" * 5000):
        status, head, body = raw_request(inventory.port, b"GET " + raw_path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status in (400, 404), head
        error = json.loads(body)["error"]
        assert error["code"] in ("not_found", "invalid_request")
    assert inventory.get("/health/live").status == 200
    for line in inventory.log_lines():  # every line still parses (log_lines() loads each)
        assert "msg" in line


def test_faults_script(inventory):
    import json
    from oms_test import ADMIN_TOKEN, ROOT
    env = dict(os.environ, FAULTS_URL=f"http://127.0.0.1:{inventory.port}", ADMIN_TOKEN=ADMIN_TOKEN)
    script = os.path.join(ROOT, "scripts", "faults.sh")

    def run(*args):
        return subprocess.run([script, *args], env=env, capture_output=True, text=True, timeout=10)

    out = run("set", "inventory.latency_ms=5", "inventory.error_rate=0.05")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"inventory.latency_ms": 5, "inventory.error_rate": 0.05}
    assert json.loads(run("clear", "inventory.latency_ms").stdout) == {"inventory.error_rate": 0.05}
    bad = run("set", "inventory.latency_ms=5;rm")
    assert bad.returncode == 2 and "bad value" in bad.stderr
    assert json.loads(run("list").stdout) == {"inventory.error_rate": 0.05}  # nothing sent for the bad one
    assert json.loads(run("clear").stdout) == {}


def test_client_that_gives_up_is_logged_as_499(inventory):
    """Over HTTP/2 h2o tells us when a client resets a stream; the request
    is recorded with status 499 and its resources are released (the
    session's leak-checked exit covers the latter)."""
    inventory.set_faults({"inventory.latency_ms": 3000})
    time.sleep(1.5)
    run = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "--max-time", "0.5",
                          f"http://127.0.0.1:{inventory.port}/api/inventory/products/ELEC-SPKR-002"],
                         capture_output=True, timeout=10)
    assert run.returncode == 28  # curl's "operation timed out"
    inventory.set_faults({"inventory.latency_ms": None})
    wait_until_logged = time.monotonic() + 3
    while time.monotonic() < wait_until_logged:
        gone = [l for l in inventory.log_lines() if l["msg"] == "request" and l["status"] == 499]
        if gone:
            break
        time.sleep(0.1)
    assert gone and gone[-1]["route"] == "/api/inventory/products/{sku}"
    assert 'status_code="499"' in inventory.get("/metrics").body
