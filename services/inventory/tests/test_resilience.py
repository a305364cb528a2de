"""Dependencies failing: PostgreSQL stopped and restarted, Redis down, and a
slow query that must not hold up anything else."""
import threading
import time

from oms_test import stack, wait_until


def test_postgres_down_gives_fast_503_and_recovers_without_restart(inventory):
    assert inventory.get("/health/ready").status == 200
    stack("stop-postgres")
    try:
        stopped = time.monotonic()
        ready = wait_until(lambda: (lambda r: r if r.status == 503 else None)(inventory.get("/health/ready")),
                           timeout=1.0, what="ready to report postgres down")
        assert ready.json["error"]["code"] == "dependency_unavailable"
        assert "postgres" in ready.json["error"]["message"]
        assert ready.json["checks"]["postgres"]["status"] == "down"
        assert ready.json["checks"]["redis"]["status"] == "up"
        # an uncached read (no cache entry for this page) needs the database
        api = inventory.get("/api/inventory/products?limit=7&offset=3&category=books", timeout=2)
        assert api.status == 503 and api.error_code() == "dependency_unavailable"
        assert time.monotonic() - stopped < 1.0
        # while it is down, a write is refused and nothing hangs
        res = inventory.post("/api/inventory/reservations",
                             {"order_id": "pg-down-1", "items": [{"sku": "ELEC-HDPH-001", "qty": 1}]})
        assert res.status == 503
    finally:
        stack("start-postgres")
    inventory.wait_ready_everywhere(timeout=10)
    assert inventory.get("/api/inventory/products?limit=7&offset=3&category=books").status == 200


def test_redis_down_still_serves_from_postgres(inventory, product):
    sku = product(stock=4)
    stack("stop-redis")
    try:
        ready = wait_until(lambda: (lambda r: r if r.status == 503 else None)(inventory.get("/health/ready")),
                           timeout=2, what="ready to report redis down")
        assert "redis" in ready.json["error"]["message"]
        assert ready.json["checks"]["postgres"]["status"] == "up"
        res = inventory.get(f"/api/inventory/products/{sku}")
        assert res.status == 200 and res.json["stock"] == 4
        # writes work too, and reads see them (nothing stale can be served)
        held = inventory.post("/api/inventory/reservations",
                              {"order_id": f"redis-down-{sku}", "items": [{"sku": sku, "qty": 1}]})
        assert held.status == 201
        assert inventory.get(f"/api/inventory/products/{sku}").json["stock"] == 3
    finally:
        stack("start-redis")
    inventory.wait_ready_everywhere()


def test_slow_query_does_not_block_other_requests(inventory, product):
    sku = product(stock=5)
    inventory.get(f"/api/inventory/products/{sku}")  # now cached in Redis
    inventory.set_faults({"inventory.slow_db_ms": 2000})
    time.sleep(1.5)  # every worker has picked the fault up
    slow = {}

    def slow_request():
        started = time.monotonic()
        slow["response"] = inventory.get("/api/inventory/products?limit=9&offset=1")
        slow["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=slow_request)
    thread.start()
    time.sleep(0.3)
    try:
        for path in ("/health/live", f"/api/inventory/products/{sku}", "/metrics"):
            started = time.monotonic()
            assert inventory.get(path, timeout=5).status == 200
            elapsed = time.monotonic() - started
            assert elapsed < 0.5, f"{path} took {elapsed:.3f}s while a slow query ran"
        assert thread.is_alive(), "the slow request finished before the others were checked"
    finally:
        inventory.set_faults({"inventory.slow_db_ms": None})
        thread.join(10)
    assert slow["response"].status == 200
    assert slow["seconds"] >= 2.0


def test_query_timeout_answers_503_and_the_pool_recovers(product):
    from oms_test import Service
    service = Service("inventory", PG_QUERY_TIMEOUT_MS=500).start()
    try:
        sku = product(stock=3)
        service.set_faults({"inventory.slow_db_ms": 3000})
        time.sleep(1.5)
        started = time.monotonic()
        res = service.get("/api/inventory/products?limit=5&offset=11")
        elapsed = time.monotonic() - started
        assert res.status == 503 and res.error_code() == "dependency_unavailable"
        assert elapsed < 2.5, f"the timeout took {elapsed:.2f}s"
        service.set_faults({"inventory.slow_db_ms": None})
        time.sleep(1.5)
        # the timed-out connections were replaced: queries work again
        wait_until(lambda: service.get(f"/api/inventory/products/{sku}").status == 200, timeout=5,
                   what="queries after a timeout")
        assert service.get("/api/inventory/products?limit=5&offset=11").status == 200
        assert any(line["msg"] == "postgres query timed out" for line in service.log_lines())
    finally:
        service.set_faults({"inventory.slow_db_ms": None})
        assert service.stop() == 0


def test_a_hung_redis_times_out_and_reads_fall_back(product):
    from oms_test import Service, redis_cli
    service = Service("inventory", REDIS_TIMEOUT_MS=300).start()
    try:
        sku = product(stock=8)
        service.get(f"/api/inventory/products/{sku}")  # cached now: the read needs Redis
        assert redis_cli("CLIENT", "PAUSE", "2000", "ALL") == "OK"  # Redis stops answering for 2 s
        started = time.monotonic()
        res = service.get(f"/api/inventory/products/{sku}")
        elapsed = time.monotonic() - started
        assert res.status == 200 and res.json["stock"] == 8
        assert elapsed < 1.5, f"a hung Redis held the read for {elapsed:.2f}s"
        service.wait_ready_everywhere()
        assert "redis command timed out" in service.read_log()
    finally:
        assert service.stop() == 0
