"""The user service as a process: its metrics, configuration checks, and
a shutdown that lets password hashing in flight finish."""
import os
import subprocess
import threading
import time

import pytest

from oms_test import BIN_DIR, Service, client_ip, request


def test_metrics_pass_promtool_and_show_the_security_signals(user_service, account):
    acct = account()
    acct.login()
    acct.login(password="wrong password")
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
    assert acct.email not in res.body  # never an email in a label


@pytest.mark.parametrize("env,variable", [
    ({"JWT_SECRET": "too-short"}, "JWT_SECRET"),
    ({"JWT_TTL_SECONDS": "10"}, "JWT_TTL_SECONDS"),
    ({"LOGIN_MAX_FAILURES_PER_EMAIL": "0"}, "LOGIN_MAX_FAILURES_PER_EMAIL"),
    ({"ARGON2_MEMORY_KIB": "lots"}, "ARGON2_MEMORY_KIB"),
    ({"HASH_THREADS": "0"}, "HASH_THREADS"),
    ({"TRUSTED_PROXIES": "10.0.0.0/33"}, "TRUSTED_PROXIES"),
    ({"TRUSTED_PROXIES": "gateway"}, "TRUSTED_PROXIES"),
])
def test_bad_configuration_stops_startup_naming_the_variable(env, variable):
    run = subprocess.run([os.path.join(BIN_DIR, "user")], env=dict(os.environ, **env), capture_output=True,
                         text=True, timeout=10)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and variable in lines[0], run.stderr


def test_shutdown_waits_for_logins_being_hashed():
    service = Service("user", HASH_THREADS=1).start()
    service.set_faults({"user.cpu_burn": 20})  # ~0.7 s of hashing per login
    time.sleep(1.2)
    results = []
    login = threading.Thread(target=lambda: results.append(service.post(
        "/api/users/login", {"email": "customer030@oms.example.com", "password": "LabCustomer-030"},
        {"X-Forwarded-For": client_ip()})))
    login.start()
    time.sleep(0.3)
    service.process.send_signal(15)  # SIGTERM while the hash runs
    time.sleep(0.1)
    with pytest.raises(OSError):
        request(service.port, "GET", "/health/live", timeout=2)
    login.join(15)
    assert results and results[0].status == 200, results
    assert service.process.wait(15) == 0
