"""The user service as a process: its metrics, configuration checks, its
fault flags, and a shutdown that lets password hashing in flight finish."""
import os
import subprocess
import threading
import time

import pytest

from oms_test import (BIN_DIR, Service, admin_headers, bearer, client_ip, connection_refused, query, request, running,
                      wait_until)


COUNTED = {
    "success": 'oms_logins_total{outcome="success"}',
    "bad_credentials": 'oms_logins_total{outcome="bad_credentials"}',
    "created": 'oms_registrations_total{outcome="created"}',
    "valid": 'oms_auth_verifications_total{outcome="valid"}',
    "login_401": 'http_server_request_duration_seconds_count{method="POST",route="/api/users/login",'
                 'status_code="401"}',
    "jobs": "work_pool_job_duration_seconds_count",
    "user_for_login": 'db_client_operation_duration_seconds_count{system="postgresql",operation="user_for_login"}',
}


def samples(text):
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            values[key] = float(value)
    return values


def test_metrics_pass_promtool_and_show_the_security_signals():
    # A service of its own: nobody else's logins move its counters.
    with running("user") as user_service:
        before = samples(user_service.get("/metrics").body)
        email = f"metrics-{time.time_ns()}@example.com"
        assert user_service.post("/api/users/register", {"email": email, "password": "a long password 1",
                                                         "name": "M"}).status == 201
        ok = user_service.post("/api/users/login", {"email": email, "password": "a long password 1"},
                               {"X-Forwarded-For": client_ip()})
        assert ok.status == 200
        assert user_service.post("/api/users/login", {"email": email, "password": "wrong password"},
                                 {"X-Forwarded-For": client_ip()}).status == 401
        assert user_service.get("/api/users/me", bearer(ok.json["token"])).status == 200
        res = user_service.get("/metrics")
        assert res.status == 200
        check = subprocess.run(["promtool", "check", "metrics"], input=res.body, capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        for needle in [
            'oms_logins_total{outcome="success"}',
            'oms_logins_total{outcome="bad_credentials"}',
            'oms_logins_total{outcome="locked"}',
            'oms_logins_total{outcome="invalid"}',
            'oms_registrations_total{outcome="created"}',
            'oms_auth_verifications_total{outcome=',
            'oms_user_cache_requests_total{result=',
            'work_pool_job_duration_seconds_count ',
            "work_pool_queue_depth 0",
            'db_client_operation_duration_seconds_count{system="postgresql",operation="user_for_login"}',
            'db_client_operation_duration_seconds_count{system="redis",operation="EVAL"}',
            'http_server_request_duration_seconds_count{method="POST",route="/api/users/login",status_code="401"}',
        ]:
            assert needle in res.body, f"missing {needle!r}"
        # the values say what happened: one sign-up (one hash), two logins
        # (two checks, one of each outcome), one token verified
        after = samples(res.body)
        delta = {name: after.get(series, 0) - before.get(series, 0) for name, series in COUNTED.items()}
        assert delta == {"success": 1, "bad_credentials": 1, "created": 1, "valid": 1, "login_401": 1, "jobs": 3,
                         "user_for_login": 2}, delta
        assert after["work_pool_queue_depth"] == 0
        assert email not in res.body  # never an email in a label


@pytest.mark.parametrize("env,variable", [
    ({"JWT_SECRET": "too-short"}, "JWT_SECRET"),
    ({"JWT_TTL_SECONDS": "10"}, "JWT_TTL_SECONDS"),
    ({"LOGIN_MAX_FAILURES_PER_EMAIL": "0"}, "LOGIN_MAX_FAILURES_PER_EMAIL"),
    ({"ARGON2_MEMORY_KIB": "lots"}, "ARGON2_MEMORY_KIB"),
    ({"HASH_THREADS": "0"}, "HASH_THREADS"),
    ({"TRUSTED_PROXIES": "10.0.0.0/33"}, "TRUSTED_PROXIES"),
    ({"TRUSTED_PROXIES": "gateway"}, "TRUSTED_PROXIES"),
    ({"HASH_QUEUE_MAX": "0"}, "HASH_QUEUE_MAX"),
    ({"LOGIN_ATTEMPTS_RETENTION_DAYS": "0"}, "LOGIN_ATTEMPTS_RETENTION_DAYS"),
])
def test_bad_configuration_stops_startup_naming_the_variable(env, variable):
    run = subprocess.run([os.path.join(BIN_DIR, "user")], env=dict(os.environ, **env), capture_output=True,
                         text=True, timeout=10)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and variable in lines[0], run.stderr
    assert lines[0].startswith("user: configuration error: invalid "), lines[0]
    assert run.stdout == ""


def test_shutdown_waits_for_logins_being_hashed():
    service = Service("user", HASH_THREADS=1).start()
    result = {}

    def log_in():
        result["sent"] = time.monotonic()
        result["response"] = service.post("/api/users/login", {"email": "customer030@oms.example.com",
                                                               "password": "LabCustomer-030"},
                                          {"X-Forwarded-For": client_ip()})
        result["done"] = time.monotonic()

    try:
        service.apply_faults({"user.cpu_burn": 20})  # ~0.7 s of hashing per login
        login = threading.Thread(target=log_in)
        login.start()
        service.wait_in_flight()
        service.process.send_signal(15)  # SIGTERM while the login is being served
        terminated = time.monotonic()
        wait_until(lambda: connection_refused(service.port), 5, interval=0.02, what="the listener to close")
        with pytest.raises(OSError):
            request(service.port, "GET", "/health/live", timeout=2)  # no longer accepting...
        assert login.is_alive(), "the login finished before SIGTERM: nothing was in flight"  # ...while it hashes
        login.join(15)
        assert service.process.wait(15) == 0
    finally:
        if service.process.poll() is None:
            service.process.kill()
            service.process.wait()
    assert result["response"].status == 200, result
    assert result["response"].json["token"].count(".") == 2
    assert result["done"] > terminated
    served = [l for l in service.log_lines() if l["msg"] == "request" and l["route"] == "/api/users/login"]
    assert served and served[-1]["status"] == 200
    assert served[-1]["duration_ms"] >= 200  # 21 argon2id hashes, not a fast path
    assert not any(l["msg"] == "shutdown deadline reached" for l in service.log_lines())


def test_user_faults_error_rate_latency_and_slow_queries(user_service, account):
    """user.error_rate (1, and a share between 0 and 1), user.latency_ms and
    user.slow_db_ms, the faults every service honours."""
    token = account().token()

    def me():
        return user_service.get("/api/users/me", bearer(token))

    try:
        user_service.apply_faults({"user.error_rate": 1})
        for _ in range(4):  # whichever worker answers
            res = me()
            assert res.status == 500 and res.error_code() == "fault_injected", res
        assert user_service.get("/health/ready").status == 200  # only business routes fail

        user_service.apply_faults({"user.error_rate": 0.5})
        statuses = [me().status for _ in range(100)]
        assert set(statuses) == {200, 500}, statuses
        assert 20 <= statuses.count(500) <= 80, statuses.count(500)  # outside: once in a billion runs

        user_service.apply_faults({"user.error_rate": None, "user.latency_ms": 300})
        for _ in range(3):
            started = time.monotonic()
            assert me().status == 200
            assert time.monotonic() - started >= 0.29  # the loop's clock counts whole milliseconds

        user_service.apply_faults({"user.latency_ms": None, "user.slow_db_ms": 1500})
        slow = {}

        def listing():
            started = time.monotonic()
            slow["response"] = user_service.get("/api/users?limit=1", admin_headers(), timeout=30)
            slow["seconds"] = time.monotonic() - started

        thread = threading.Thread(target=listing)
        thread.start()
        # a real pg_sleep on the query's connection
        wait_until(lambda: query("SELECT count(*) FROM pg_stat_activity WHERE usename = 'users'"
                                 " AND state = 'active' AND query LIKE '%%pg_sleep%%'")[0][0] >= 1, 5,
                   interval=0.02, what="the injected pg_sleep")
        thread.join(15)
        assert slow["response"].status == 200 and slow["seconds"] >= 1.49
    finally:
        user_service.apply_faults({"user.error_rate": None, "user.latency_ms": None, "user.slow_db_ms": None})
    started = time.monotonic()
    assert user_service.get("/api/users?limit=1", admin_headers()).status == 200
    assert time.monotonic() - started < 1.0  # cleared: no 1.5 s sleep any more
    assert me().status == 200


def thread_nice_values(pid):
    """The nice value of every thread of a process (field 19 of its stat)."""
    values = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/stat") as f:
            stat = f.read()
        values.append(int(stat[stat.rindex(")") + 2:].split()[16]))
    return values


def test_passwords_are_hashed_on_hash_threads_at_lower_priority():
    """HASH_THREADS background threads, niced so that hashing yields the CPU
    to the event loops; the loops themselves keep normal priority."""
    with running("user", HASH_THREADS=3) as service:
        wait_until(lambda: sorted(thread_nice_values(service.process.pid)).count(5) == 3, 10,
                   what="three niced hashing threads")
        values = thread_nice_values(service.process.pid)
        assert sorted(set(values)) == [0, 5], values
        assert values.count(5) == 3  # exactly the pool
        jobs = service.metric("work_pool_jobs_total", outcome="done")
        res = service.post("/api/users/login", {"email": "customer040@oms.example.com",
                                                "password": "LabCustomer-040"}, {"X-Forwarded-For": client_ip()})
        assert res.status == 200
        assert service.metric("work_pool_jobs_total", outcome="done") == jobs + 1  # the check ran on the pool
