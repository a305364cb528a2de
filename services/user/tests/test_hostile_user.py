"""Hostile conditions for the user service: a Redis server frozen while
logins wait on it, and registration text that hides control characters.
Whatever happens, a correct password keeps working and bad input changes
nothing."""
import contextlib
import os
import signal
from concurrent.futures import ThreadPoolExecutor

import pytest

from oms_test import STACK_DIR, TEST_PASSWORD, client_ip, query, redis_cli, running, unique, wait_until


@contextlib.contextmanager
def frozen_redis():
    """Stops the test stack's Redis process (SIGSTOP): connections stay
    open, commands sit unanswered in its socket buffers. Always thawed."""
    with open(os.path.join(STACK_DIR, "pids", "redis.pid")) as f:
        pid = int(f.read().strip())
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def failures(email):
    return int(redis_cli("ZCARD", f"oms:login:failures:email:{email}"))


def test_a_redis_stall_does_not_lock_out_a_correct_password():
    """Correct logins sent while Redis is frozen fail with 503; when Redis
    wakes up and runs the limiter scripts it was sent, their charges are
    taken back, so the account is not locked out."""
    email = "customer077@oms.example.com"
    password = "LabCustomer-077"
    with running("user", REDIS_TIMEOUT_MS="300", LOGIN_WINDOW_SECONDS="120") as service:
        redis_cli("DEL", f"oms:login:failures:email:{email}")
        ip = client_ip()
        with frozen_redis():
            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(
                    lambda _: service.post("/api/users/login", {"email": email, "password": password},
                                           {"X-Forwarded-For": ip}), range(8)))
            assert [a.status for a in answers] == [503] * 8, answers
            assert all(a.error_code() == "dependency_unavailable" for a in answers)
        # Redis now runs what it was sent while frozen; the refunds follow
        wait_until(lambda: failures(email) == 0, 15, what="every unanswered charge to be refunded")
        res = service.post("/api/users/login", {"email": email, "password": password}, {"X-Forwarded-For": ip})
        assert res.status == 200, res
        assert failures(email) == 0


@pytest.mark.parametrize("name", ["Eve\u0085Mallory", "Eve\u009bMallory", "Eve\u202eyrollaM", "Eve\u200bM",
                                  "Eve\u2028M", "Eve\ufeffM", "Eve\u2066M", "Eve\x1bM", "Eve\x7fM"])
def test_registration_refuses_hidden_control_characters(user_service, name):
    email = f"{unique('ctl-').lower()}@example.com"
    res = user_service.post("/api/users/register", {"email": email, "password": TEST_PASSWORD, "name": name},
                            {"X-Forwarded-For": client_ip()})
    assert res.status == 400, res
    assert res.json["error"]["field"] == "name"
    assert query("SELECT count(*) FROM users.users WHERE email = %s", email) == [(0,)]


def test_an_oversized_name_is_refused_with_the_real_limit(user_service):
    email = f"{unique('long-').lower()}@example.com"
    for name in ("x" * 101, "\u00e9" * 101, "\U0001F600" * 101):
        res = user_service.post("/api/users/register", {"email": email, "password": TEST_PASSWORD, "name": name},
                                {"X-Forwarded-For": client_ip()})
        assert res.status == 400, res
        assert res.json["error"]["field"] == "name"
        assert "1 to 100 characters" in res.json["error"]["message"], res.json
    ok = user_service.post("/api/users/register", {"email": email, "password": TEST_PASSWORD, "name": "\u00e9" * 100},
                           {"X-Forwarded-For": client_ip()})
    assert ok.status == 201, ok


def test_an_unknown_field_is_quoted_without_splitting_a_character(user_service):
    """The message quotes at most 64 bytes of the unknown key; cut inside a
    multi-byte character it would no longer be UTF-8."""
    key = "a" + "\u00e9" * 40  # 81 bytes: byte 64 falls inside an é
    res = user_service.post("/api/users/register", {"email": "x@example.com", "password": TEST_PASSWORD,
                                                    "name": "n", key: 1}, {"X-Forwarded-For": client_ip()})
    assert res.status == 400, res
    message = res.json["error"]["message"]
    assert message.startswith("unknown field 'a\u00e9"), message
    assert "omitted" not in message
