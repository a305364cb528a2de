"""Hostile conditions for the user service: a Redis server frozen while
logins wait on it, and registration text that hides control characters.
Whatever happens, a correct password keeps working and bad input changes
nothing."""
import contextlib
import os
import signal
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from oms_test import REDIS_PORT, STACK_DIR, TEST_PASSWORD, client_ip, query, redis_cli, running, unique, wait_until


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


class FreezableProxy:
    """A TCP proxy in front of Redis whose connections open so far can be
    frozen: what the service sends on them is held back (as by a stalled
    network path) and delivered later, on release. Connections opened
    after the freeze pass straight through."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.connections = []  # [client, upstream, frozen, held bytes]
        self.delivered = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            entry = [client, upstream, False, b""]
            with self.lock:
                self.connections.append(entry)
            threading.Thread(target=self._pump_up, args=(entry,), daemon=True).start()
            threading.Thread(target=self._pump_down, args=(entry,), daemon=True).start()

    def _pump_up(self, entry):
        client, upstream = entry[0], entry[1]
        while True:
            try:
                data = client.recv(65536)
            except OSError:
                data = b""
            if not data:
                return  # the service closed it; held bytes stay for release()
            with self.lock:
                if entry[2]:
                    entry[3] += data
                    continue
            upstream.sendall(data)

    def _pump_down(self, entry):
        client, upstream = entry[0], entry[1]
        while True:
            try:
                data = upstream.recv(65536)
            except OSError:
                return
            if not data:
                return
            with self.lock:
                if entry[2] is None:  # released: replies to a client that gave up
                    self.delivered.set()
                    continue
            try:
                client.sendall(data)
            except OSError:
                pass

    def freeze(self):
        with self.lock:
            for entry in self.connections:
                entry[2] = True

    def release(self):
        """Sends what was held back, in order, on each frozen connection."""
        with self.lock:
            held = [(e[1], e[3]) for e in self.connections if e[2] and e[3]]
            for entry in self.connections:
                if entry[2]:
                    entry[2] = None
        for upstream, data in held:
            upstream.sendall(data)
        return len(held)

    def close(self):
        self.listener.close()
        with self.lock:
            for client, upstream, _, _ in self.connections:
                client.close()
                upstream.close()


def test_a_charge_arriving_after_its_refund_does_not_count():
    """The limiter's charge and its refund commute: a check command held up
    on the way to Redis, given up on by the service and refunded on a new
    connection, still counts nothing when it finally runs."""
    email = "customer078@oms.example.com"
    redis_cli("DEL", f"oms:login:failures:email:{email}")
    proxy = FreezableProxy(REDIS_PORT)
    try:
        with running("user", REDIS_URL=f"redis://127.0.0.1:{proxy.port}/0", REDIS_TIMEOUT_MS="300",
                     LOGIN_WINDOW_SECONDS="120") as service:
            ip = client_ip()
            markers = lambda: set(redis_cli("KEYS", "oms:login:refunded:*").split())  # noqa: E731
            earlier = markers()
            proxy.freeze()
            res = service.post("/api/users/login", {"email": email, "password": "LabCustomer-078"},
                               {"X-Forwarded-For": ip})
            assert res.status == 503, res
            # the refund went out on a new connection and landed first
            wait_until(lambda: markers() - earlier, 15, what="the refund to land")
            assert proxy.release() >= 1  # now the held-back charge reaches Redis
            wait_until(proxy.delivered.is_set, 15, what="the late charge to run")
            assert failures(email) == 0
            assert int(redis_cli("ZCARD", f"oms:login:failures:ip:{ip}")) == 0
    finally:
        proxy.close()
