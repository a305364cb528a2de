"""Dependencies failing: PostgreSQL stopped and restarted, Redis down, and a
slow query that must not hold up anything else."""
import threading
import time

from oms_test import admin_headers, query, redis_cli, running, service_headers, stack, unique, wait_until


def levels(sku):
    return query("SELECT stock, reserved FROM inventory.products WHERE sku = %s", sku)[0]


def sleeping_queries():
    """The inventory role's connections running the injected pg_sleep now."""
    return query("SELECT count(*) FROM pg_stat_activity WHERE usename = 'inventory' AND state = 'active'"
                 " AND query LIKE '%%pg_sleep%%'")[0][0]


def test_postgres_down_gives_fast_503_and_recovers_without_restart(inventory):
    """'Fast' means the lost connections are noticed, not waited out: well
    before PG_QUERY_TIMEOUT_MS (5 s here) would end a query."""
    assert inventory.get("/health/ready").status == 200
    before = levels("ELEC-HDPH-001")
    oid = unique("pg-down-")
    stack("stop-postgres")
    try:
        stopped = time.monotonic()
        ready = wait_until(lambda: (lambda r: r if r.status == 503 else None)(inventory.get("/health/ready")),
                           timeout=5, what="ready to report postgres down")
        assert ready.json["error"]["code"] == "dependency_unavailable"
        assert "postgres" in ready.json["error"]["message"]
        assert ready.json["checks"]["postgres"]["status"] == "down"
        assert ready.json["checks"]["redis"]["status"] == "up"
        # an uncached read (no cache entry for this page) needs the database
        started = time.monotonic()
        api = inventory.get("/api/inventory/products?limit=7&offset=3&category=books", timeout=10)
        assert api.status == 503 and api.error_code() == "dependency_unavailable"
        assert "postgres" in api.json["error"]["message"]
        assert time.monotonic() - started < 2.5, "the read waited for a query timeout"
        assert time.monotonic() - stopped < 7.5
        # while it is down, a write is refused and nothing hangs
        started = time.monotonic()
        res = inventory.post("/api/inventory/reservations",
                             {"order_id": oid, "items": [{"sku": "ELEC-HDPH-001", "qty": 1}]}, service_headers())
        assert res.status == 503 and res.error_code() == "dependency_unavailable", res
        assert time.monotonic() - started < 2.5
    finally:
        stack("start-postgres")
    inventory.wait_ready_everywhere(timeout=10)
    assert inventory.get("/api/inventory/products?limit=7&offset=3&category=books").status == 200
    # the refused write left nothing behind
    assert query("SELECT count(*) FROM inventory.reservations WHERE order_id = %s", oid)[0][0] == 0
    assert levels("ELEC-HDPH-001") == before


def test_redis_down_still_serves_from_postgres(inventory, product):
    sku = product(stock=4)
    stack("stop-redis")
    try:
        ready = wait_until(lambda: (lambda r: r if r.status == 503 else None)(inventory.get("/health/ready")),
                           timeout=10, what="ready to report redis down")
        assert ready.error_code() == "dependency_unavailable"
        assert "redis" in ready.json["error"]["message"]
        assert ready.json["checks"]["postgres"]["status"] == "up"
        assert ready.json["checks"]["redis"]["status"] == "down"
        res = inventory.get(f"/api/inventory/products/{sku}")
        assert res.status == 200 and res.json["stock"] == 4
        # a token cannot be checked against the deny-lists now: a service's
        # is refused like any other, before anything is written
        refused = inventory.post("/api/inventory/reservations",
                                 {"order_id": f"redis-down-{sku}", "items": [{"sku": sku, "qty": 1}]},
                                 service_headers())
        assert refused.status == 503 and refused.error_code() == "dependency_unavailable", refused
        assert "redis" in refused.json["error"]["message"]
        assert levels(sku) == (4, 0)
        # writes work with the static admin credential (no deny-list to
        # ask), and reads see them (nothing stale can be served)
        held = inventory.post("/api/inventory/reservations",
                              {"order_id": f"redis-down-{sku}", "items": [{"sku": sku, "qty": 1}]}, admin_headers())
        assert held.status == 201 and held.json["status"] == "held", held
        assert levels(sku) == (3, 1)
        assert inventory.get(f"/api/inventory/products/{sku}").json["stock"] == 3
    finally:
        stack("start-redis")
    inventory.wait_ready_everywhere()


def test_slow_query_does_not_block_other_requests(inventory, product):
    """inventory.slow_db_ms is a real pg_sleep on the query's connection;
    while one runs, requests that need no query are answered at once."""
    sku = product(stock=5)
    inventory.get(f"/api/inventory/products/{sku}")  # now cached in Redis
    wait_until(lambda: redis_cli("EXISTS", f"inventory:product:{sku}") == "1", 5, what="product cached")
    slow = {}

    def slow_request():
        started = time.monotonic()
        slow["response"] = inventory.get("/api/inventory/products?limit=9&offset=1", timeout=30)
        slow["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=slow_request)
    try:
        inventory.apply_faults({"inventory.slow_db_ms": 4000})
        thread.start()
        wait_until(lambda: sleeping_queries() >= 1, 5, interval=0.02, what="the slow query in PostgreSQL")
        for path in ("/health/live", f"/api/inventory/products/{sku}", "/metrics"):
            started = time.monotonic()
            assert inventory.get(path, timeout=5).status == 200
            elapsed = time.monotonic() - started
            # generous on a busy machine, yet a quarter of the slow query
            assert elapsed < 1.0, f"{path} took {elapsed:.3f}s while a slow query ran"
        assert thread.is_alive(), "the slow request finished before the others were checked"
    finally:
        inventory.apply_faults({"inventory.slow_db_ms": None})
        if thread.ident is not None:
            thread.join(15)
    assert slow["response"].status == 200
    assert slow["seconds"] >= 4.0


def test_query_timeout_answers_503_and_the_pool_recovers(product):
    with running("inventory", PG_QUERY_TIMEOUT_MS=500) as service:
        sku = product(stock=3)
        try:
            service.apply_faults({"inventory.slow_db_ms": 6000})
            started = time.monotonic()
            res = service.get("/api/inventory/products?limit=5&offset=11", timeout=30)
            elapsed = time.monotonic() - started
            assert res.status == 503 and res.error_code() == "dependency_unavailable"
            assert "postgres" in res.json["error"]["message"]
            assert 0.5 <= elapsed < 4.0, f"the timeout took {elapsed:.2f}s"  # the timeout, not the 6 s query
        finally:
            service.apply_faults({"inventory.slow_db_ms": None})
        # the timed-out connections were replaced: queries work again
        wait_until(lambda: service.get(f"/api/inventory/products/{sku}").status == 200, timeout=10,
                   what="queries after a timeout")
        assert service.get("/api/inventory/products?limit=5&offset=11").status == 200
        assert any(line["msg"] == "postgres query timed out" for line in service.log_lines())
        # no connection is left sleeping for the abandoned query
        wait_until(lambda: sleeping_queries() == 0, 10, what="the abandoned pg_sleep to be cancelled")


def test_a_hung_redis_times_out_and_reads_fall_back(product):
    with running("inventory", REDIS_TIMEOUT_MS=300) as service:
        sku = product(stock=8)
        service.get(f"/api/inventory/products/{sku}")  # cached now: the read needs Redis
        wait_until(lambda: redis_cli("EXISTS", f"inventory:product:{sku}") == "1", 5, what="product cached")
        query("UPDATE inventory.products SET name = 'Changed behind the cache' WHERE sku = %s", sku)
        assert redis_cli("CLIENT", "PAUSE", "5000", "ALL") == "OK"  # Redis stops answering for 5 s
        paused = time.monotonic()
        res = service.get(f"/api/inventory/products/{sku}", timeout=30)
        elapsed = time.monotonic() - paused
        assert res.status == 200 and res.json["stock"] == 8
        assert res.json["name"] == "Changed behind the cache"  # read from PostgreSQL, not the cache
        assert elapsed < 3.0, f"a hung Redis held the read for {elapsed:.2f}s"  # the 300 ms timeout, not 5 s
        service.wait_ready_everywhere(timeout=20)
        assert "redis command timed out" in service.read_log()
