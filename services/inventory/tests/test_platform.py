"""What every service gets from services/common: health, errors, trace
context, logs, metrics, fault flags, configuration checks and graceful
shutdown, exercised through the inventory service."""
import json
import os
import re
import subprocess
import threading
import time

import pytest

from oms_test import (BIN_DIR, ROOT, Service, admin_headers, connection_refused, query, raw_request, redis_cli,
                      request, running, service_headers, wait_until)

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
    assert query("SELECT count(*) FROM inventory.products WHERE sku = 'ELEC-HDPH-001'")[0][0] == 1


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
    assert out.split("-")[1] != "0" * 32
    access = [line for line in inventory.log_lines()
              if line["msg"] == "request" and line["span_id"] == out.split("-")[2]]
    assert [line["trace_id"] for line in access] == [out.split("-")[1]]  # the log line carries the new trace


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
        assert service.get("/health/live", headers={"X-Forwarded-For": "203.0.113.7"}).status == 200
        clients = [l["client"] for l in service.log_lines() if l["msg"] == "request"]
        assert clients[-1] == "127.0.0.1"
        assert "203.0.113.7" not in service.read_log()


def test_every_log_line_is_json_with_design_fields(inventory):
    inventory.get("/api/inventory/products?limit=3")
    lines = inventory.log_lines()
    assert lines
    for line in lines:
        assert {"ts", "level", "service", "msg", "trace_id", "span_id"} <= set(line), line
        assert line["service"] == "inventory" and line["level"] in ("debug", "info", "warn", "error"), line
    assert any(l["msg"] == "request" and l["path"] == "/api/inventory/products" for l in lines)


def promtool_check(text):
    return subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)


def sample(text, series):
    """The value of one series (name with its labels, as rendered) in a
    /metrics text, or None when it is absent."""
    for line in text.splitlines():
        key, _, value = line.rpartition(" ")
        if key == series:
            return float(value)
    return None


def test_metrics_pass_promtool_and_cover_design(product):
    # A service of its own: nobody else's requests move its counters, and
    # its stock gauges refresh every 100 ms instead of every 5 s.
    with running("inventory", STOCK_METRICS_INTERVAL_MS=100) as inventory:
        sku = product(stock=7)
        route = 'method="GET",route="/api/inventory/products/{sku}",status_code="200"'
        counted = {
            "requests": f"http_server_request_duration_seconds_count{{{route}}}",
            "product_get": 'db_client_operation_duration_seconds_count{system="postgresql",operation="product_get"}',
            "redis_get": 'db_client_operation_duration_seconds_count{system="redis",operation="GET"}',
            "miss": 'oms_inventory_cache_requests_total{result="miss"}',
            "hit": 'oms_inventory_cache_requests_total{result="hit"}',
            "held": 'oms_inventory_reservations_total{outcome="held"}',
        }
        text = inventory.get("/metrics").body
        before = {name: sample(text, series) or 0 for name, series in counted.items()}

        assert inventory.get(f"/api/inventory/products/{sku}").status == 200  # a miss, then cached
        wait_until(lambda: redis_cli("EXISTS", f"inventory:product:{sku}") == "1", 5, what="product cached")
        assert inventory.get(f"/api/inventory/products/{sku}").status == 200  # a hit
        res = inventory.post("/api/inventory/reservations",
                             {"order_id": f"m-{sku}", "items": [{"sku": sku, "qty": 1}]}, service_headers())
        assert res.status == 201

        def low_in_database():
            return query("SELECT count(*) FROM inventory.products WHERE stock <= low_stock_threshold")[0][0]

        wait_until(lambda: inventory.metric("oms_inventory_stock", sku=sku) == 6 and
                   inventory.metric("oms_inventory_low_stock_products") == low_in_database(), 10,
                   what="the stock gauges to refresh")

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
        # the values say what happened: two reads (one miss that queried
        # PostgreSQL, one hit), one hold
        after = {name: sample(text, series) for name, series in counted.items()}
        assert after["requests"] == before["requests"] + 2, (before, after)
        assert after["miss"] == before["miss"] + 1 and after["hit"] == before["hit"] + 1, (before, after)
        assert after["product_get"] == before["product_get"] + 1, (before, after)
        assert after["redis_get"] == before["redis_get"] + 2, (before, after)
        assert after["held"] == before["held"] + 1, (before, after)
        assert sample(text, f'oms_inventory_stock{{sku="{sku}"}}') == 6
        assert sample(text, "http_server_active_requests") == 1  # this scrape
        connections = sample(text, 'db_client_connections{state="idle"}') + \
            (sample(text, 'db_client_connections{state="used"}') or 0)
        assert 1 <= connections <= 2 * 4  # THREADS x PG_POOL_SIZE
        assert 0 < sample(text, "process_cpu_seconds_total") < 600
        assert sample(text, "process_resident_memory_bytes") > 1 << 20
        assert 0 < sample(text, "process_open_fds") < sample(text, "process_max_fds")
        assert abs(sample(text, "process_start_time_seconds") - time.time()) < 600
        with open(os.path.join(ROOT, "VERSION")) as f:
            version = f.read().strip()
        build = [l for l in text.splitlines() if l.startswith("oms_build_info{")]
        assert len(build) == 1 and build[0].startswith(f'oms_build_info{{version="{version}",') and \
            build[0].endswith(" 1"), build
        # labels stay low-cardinality: no raw paths or ids
        assert sku not in "".join(l for l in text.splitlines() if l.startswith("http_server"))


def test_fault_admin_requires_token_and_validates(inventory):
    res = inventory.get("/admin/faults")
    assert res.status == 401 and res.error_code() == "unauthorized"
    res = inventory.get("/admin/faults", headers={"Authorization": "Bearer nope-nope-nope-nope"})
    assert res.status == 401 and res.error_code() == "invalid_token"
    for headers, code in [({}, "unauthorized"), ({"Authorization": "Bearer nope-nope-nope-nope"}, "invalid_token")]:
        res = inventory.request("PUT", "/admin/faults", {"inventory.latency_ms": 5}, headers)
        assert res.status == 401 and res.error_code() == code
    assert redis_cli("HGETALL", "oms:faults") == ""  # nothing written without the token
    for body, field in [({"Inventory.Latency": 1}, "Inventory.Latency"), ({"inventory.latency_ms": "slow"},
                                                                           "inventory.latency_ms"),
                        ({"inventory.latency_ms": -5}, "inventory.latency_ms"), ({"nodot": 1}, "nodot"),
                        ({"inventory.error_rate": 0.5, "inventory.latency_ms": "slow"}, "inventory.latency_ms")]:
        res = inventory.request("PUT", "/admin/faults", body, admin_headers())
        assert res.status == 400 and res.json["error"]["field"] == field
        assert res.error_code() == "invalid_request"
    assert inventory.get("/admin/faults", headers=admin_headers()).json == {}
    assert redis_cli("HGETALL", "oms:faults") == ""  # the valid half of a bad request was not written either


def test_faults_merge_and_clear(inventory):
    assert inventory.set_faults({"payment.failure_rate": 0.2, "inventory.latency_ms": 1}) == \
        {"payment.failure_rate": 0.2, "inventory.latency_ms": 1}
    assert inventory.set_faults({"payment.unreachable": True}) == \
        {"payment.failure_rate": 0.2, "inventory.latency_ms": 1, "payment.unreachable": 1}
    assert inventory.get("/admin/faults", headers=admin_headers()).json == \
        {"payment.failure_rate": 0.2, "inventory.latency_ms": 1, "payment.unreachable": 1}
    assert redis_cli("HGET", "oms:faults", "payment.failure_rate") == "0.2"
    assert inventory.set_faults({"payment.failure_rate": 0, "payment.unreachable": False,
                                 "inventory.latency_ms": None}) == {}
    assert redis_cli("EXISTS", "oms:faults") == "0"


def test_error_rate_fault(inventory):
    try:
        inventory.apply_faults({"inventory.error_rate": 1})
        for _ in range(4):  # whichever worker answers
            res = inventory.get("/api/inventory/products/ELEC-SPKR-002")
            assert res.status == 500 and res.error_code() == "fault_injected"
        assert inventory.get("/health/ready").status == 200  # only business routes fail
        metrics = inventory.get("/metrics").body
        assert 'oms_fault_active{fault="inventory.error_rate"} 1' in metrics
        assert any(line["msg"] == "fault active" and line.get("fault") == "inventory.error_rate"
                   for line in inventory.log_lines())
    finally:
        inventory.apply_faults({"inventory.error_rate": None})
    for _ in range(4):
        assert inventory.get("/api/inventory/products/ELEC-SPKR-002").status == 200
    assert 'oms_fault_active{fault="inventory.error_rate"} 0' in inventory.get("/metrics").body
    assert any(line["msg"] == "fault cleared" and line.get("fault") == "inventory.error_rate"
               for line in inventory.log_lines())


def test_an_error_rate_between_0_and_1_fails_that_share_of_requests(inventory):
    try:
        inventory.apply_faults({"inventory.error_rate": 0.5})
        statuses = [inventory.get("/api/inventory/products/ELEC-SPKR-002").status for _ in range(100)]
    finally:
        inventory.apply_faults({"inventory.error_rate": None})
    assert set(statuses) == {200, 500}, statuses
    # binomial(100, 0.5): outside 20..80 once in a billion runs
    assert 20 <= statuses.count(500) <= 80, statuses.count(500)


def test_latency_fault(inventory):
    try:
        inventory.apply_faults({"inventory.latency_ms": 400})
        for _ in range(3):  # whichever worker answers
            started = time.monotonic()
            assert inventory.get("/api/inventory/products/ELEC-SPKR-002").status == 200
            assert time.monotonic() - started >= 0.39  # the loop's clock counts whole milliseconds
        # only business routes wait
        started = time.monotonic()
        assert inventory.get("/health/live").status == 200
        live = time.monotonic() - started
    finally:
        inventory.apply_faults({"inventory.latency_ms": None})
    assert live < 0.4


@pytest.mark.parametrize("env,variable", [
    ({"PORT": "eighty"}, "PORT"), ({"PORT": "70000"}, "PORT"), ({"THREADS": "0"}, "THREADS"),
    ({"REDIS_URL": "http://localhost"}, "REDIS_URL"), ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
    ({"ADMIN_TOKEN": "short"}, "ADMIN_TOKEN"), ({"RESERVATION_TTL_SECONDS": "-1"}, "RESERVATION_TTL_SECONDS"),
    ({"LISTEN_ADDRESS": "localhost:80"}, "LISTEN_ADDRESS"),
    ({"DATABASE_URL": "postgresql://u@h:5432/db?nonsense_option=1"}, "DATABASE_URL"),
    ({"DATABASE_URL": "host=127.0.0.1 port"}, "DATABASE_URL"),
    ({"STOCK_METRICS_INTERVAL_MS": "50"}, "STOCK_METRICS_INTERVAL_MS"),
    ({"STOCK_METRICS_INTERVAL_MS": "fast"}, "STOCK_METRICS_INTERVAL_MS"),
    ({"RESERVATION_SWEEP_INTERVAL_MS": "0"}, "RESERVATION_SWEEP_INTERVAL_MS"),
    ({"SHUTDOWN_TIMEOUT_MS": "-1"}, "SHUTDOWN_TIMEOUT_MS"),
    ({"MAX_BODY_BYTES": "10"}, "MAX_BODY_BYTES"),
])
def test_bad_configuration_stops_startup_naming_the_variable(env, variable):
    full_env = dict(os.environ, **env)
    run = subprocess.run([os.path.join(BIN_DIR, "inventory")], env=full_env, capture_output=True, text=True,
                         timeout=10)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and variable in lines[0], run.stderr
    assert lines[0].startswith("inventory: configuration error: "), lines[0]
    assert run.stdout == ""  # nothing started, nothing logged


def test_configuration_error_reads_as_the_readme_shows():
    run = subprocess.run([os.path.join(BIN_DIR, "inventory")], env=dict(os.environ, PORT="70000"),
                         capture_output=True, text=True, timeout=10)
    assert (run.returncode, run.stderr) == (2, "inventory: configuration error: invalid PORT: 70000 is outside "
                                                "1..65535\n")


def refused(port):
    """True once the port no longer accepts connections."""
    with pytest.raises(OSError):
        request(port, "GET", "/health/live", timeout=2)
    return True


def start_slow_request(service, path="/api/inventory/products/ELEC-SPKR-002"):
    """Sends a request from a thread and waits until the service is serving
    it; returns (thread, result dict with response or error and times)."""
    result = {}

    def send():
        result["sent"] = time.monotonic()
        try:
            result["response"] = service.get(path, timeout=30)
        except OSError as error:
            result["error"] = error
        result["done"] = time.monotonic()

    thread = threading.Thread(target=send)
    thread.start()
    service.wait_in_flight()
    return thread, result


def test_graceful_shutdown_finishes_in_flight_requests():
    service = Service("inventory", SHUTDOWN_TIMEOUT_MS=10000).start()
    try:
        service.apply_faults({"inventory.latency_ms": 1500})
        worker, result = start_slow_request(service)
        service.process.send_signal(15)  # SIGTERM while the request is in flight
        terminated = time.monotonic()
        wait_until(lambda: connection_refused(service.port), 5, interval=0.02, what="the listener to close")
        assert refused(service.port)  # no longer accepting...
        assert worker.is_alive(), "the request finished before SIGTERM: nothing was in flight"  # ...while it runs
        worker.join(15)
        assert "response" in result, result
        assert result["response"].status == 200, result["response"]
        assert result["done"] - result["sent"] >= 1.49  # it did wait out the injected delay
        assert result["done"] > terminated  # and was answered after SIGTERM
        assert service.process.wait(10) == 0
    finally:
        if service.process.poll() is None:
            service.process.kill()
            service.process.wait()
        pass  # the no_faults fixture clears the flags and waits for the session's services
    lines = service.log_lines()
    assert [l["msg"] for l in lines if l["msg"] in ("shutting down", "service stopped")] == \
        ["shutting down", "service stopped"]
    assert not any(l["msg"] == "shutdown deadline reached" for l in lines)
    served = [l for l in lines if l["msg"] == "request" and l["route"] == "/api/inventory/products/{sku}"]
    assert served and served[-1]["status"] == 200 and served[-1]["duration_ms"] >= 1490


def test_requests_longer_than_the_shutdown_timeout_are_cut_off():
    """SHUTDOWN_TIMEOUT_MS bounds the drain: a request still running at the
    deadline is dropped (its connection closed), and the process still
    exits 0, leak-free."""
    service = Service("inventory", SHUTDOWN_TIMEOUT_MS=500).start()
    try:
        service.apply_faults({"inventory.latency_ms": 8000})
        worker, result = start_slow_request(service)
        terminated = time.monotonic()
        service.process.send_signal(15)
        assert service.process.wait(15) == 0
        exited = time.monotonic() - terminated
        worker.join(15)
    finally:
        if service.process.poll() is None:
            service.process.kill()
            service.process.wait()
        pass  # the no_faults fixture clears the flags and waits for the session's services
    assert 0.5 <= exited < 6, exited  # the deadline, not the 8 s request
    assert "error" in result, result  # closed without an answer
    assert result["done"] - result["sent"] < 6
    warnings = [l for l in service.log_lines() if l["msg"] == "shutdown deadline reached"]
    assert warnings and warnings[0]["level"] == "warn" and warnings[0]["active_requests"] == 1, warnings
    assert service.log_lines()[-1]["msg"] == "service stopped"


def test_hostile_paths_get_well_formed_errors(inventory):
    for raw_path, status_wanted, code, field in (
            (b"/api/inventory/\xff\xfe", 404, "not_found", None),
            (b"/api/inventory/products/%FF%00", 400, "invalid_request", "sku"),
            (b"/" + b"a/" * 40, 404, "not_found", None),
            (b"/api/inventory/products/" + b"A" * 5000, 400, "invalid_request", "sku")):
        status, head, body = raw_request(inventory.port, b"GET " + raw_path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status == status_wanted, (raw_path[:40], head)
        assert b"content-type: application/json" in head
        error = json.loads(body)["error"]
        assert error["code"] == code and error.get("field") == field, (raw_path[:40], error)
        assert error["message"]
    assert inventory.get("/health/live").status == 200
    for line in inventory.log_lines():  # every line still parses (log_lines() loads each)
        assert "msg" in line


def test_faults_script(inventory):
    from oms_test import ADMIN_TOKEN
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
    assert inventory.get("/admin/faults", headers=admin_headers()).json == {"inventory.error_rate": 0.05}
    assert json.loads(run("clear").stdout) == {}
    assert redis_cli("EXISTS", "oms:faults") == "0"


def test_client_that_gives_up_is_logged_as_499(inventory):
    """Over HTTP/2 h2o tells us when a client resets a stream; the request
    is recorded with status 499 and its resources are released (the
    session's leak-checked exit covers the latter)."""
    try:
        inventory.apply_faults({"inventory.latency_ms": 3000})
        run = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "--max-time", "0.5",
                              f"http://127.0.0.1:{inventory.port}/api/inventory/products/ELEC-SPKR-002"],
                             capture_output=True, timeout=10)
        assert run.returncode == 28  # curl's "operation timed out"
    finally:
        inventory.apply_faults({"inventory.latency_ms": None})
    gone = wait_until(lambda: [l for l in inventory.log_lines() if l["msg"] == "request" and l["status"] == 499],
                      5, what="the 499 access line")
    assert gone[-1]["route"] == "/api/inventory/products/{sku}"
    assert gone[-1]["duration_ms"] < 3000  # recorded when the client left, not when the delay ended
    assert 'status_code="499"' in inventory.get("/metrics").body
