"""Helpers shared by the integration tests: HTTP calls, the test stack's
servers, and running a service binary as a child process.

The test command (scripts/run-tests.sh) starts PostgreSQL and Redis on their
own ports with scripts/stack.sh and exports where they are:
OMS_TEST_ROOT, OMS_TEST_STACK_DIR, OMS_TEST_PG_PORT, OMS_TEST_REDIS_PORT,
OMS_TEST_BIN_DIR.
"""
import base64
import contextlib
import errno
import hashlib
import hmac
import http.client
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import time
import uuid

ROOT = os.environ.get("OMS_TEST_ROOT", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
STACK_DIR = os.environ.get("OMS_TEST_STACK_DIR", os.path.join(ROOT, ".test-run"))
PG_PORT = int(os.environ.get("OMS_TEST_PG_PORT", "55432"))
REDIS_PORT = int(os.environ.get("OMS_TEST_REDIS_PORT", "56379"))
AMQP_PORT = int(os.environ.get("OMS_TEST_AMQP_PORT", "55672"))
RABBITMQ_PORTS = {
    "AMQP_PORT": str(AMQP_PORT),
    "RABBITMQ_MGMT_PORT": os.environ.get("OMS_TEST_RABBITMQ_MGMT_PORT", str(AMQP_PORT + 1)),
    "RABBITMQ_PROMETHEUS_PORT": os.environ.get("OMS_TEST_RABBITMQ_PROMETHEUS_PORT", str(AMQP_PORT + 2)),
    "RABBITMQ_DIST_PORT": os.environ.get("OMS_TEST_RABBITMQ_DIST_PORT", str(AMQP_PORT + 3)),
}
AMQP_URL = f"amqp://guest:guest@127.0.0.1:{AMQP_PORT}/"
BIN_DIR = os.environ.get("OMS_TEST_BIN_DIR", os.path.join(ROOT, "build", "asan", "bin"))
ADMIN_TOKEN = "test-admin-token-0123456789"
JWT_SECRET = "test-jwt-secret-0123456789abcdef-0123456789"
TEST_PASSWORD = "correct horse battery staple"  # for accounts the tests register
PG_SUPERUSER_PASSWORD = os.environ.get("POSTGRES_PASSWORD", "postgres-lab-password")
TEST_CARDS = {  # the payment service's simulated processor (README, "Test cards")
    "ok": "4242424242424242",
    "insufficient_funds": "4000000000009995",
    "timeout": "4000000000000119",
    "limit": "4000000000005126",  # declines above 10000 cents
}


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def json(self):
        return json.loads(self.body)

    def error_code(self):
        """The `code` of DESIGN's error shape; fails if the body is not one."""
        doc = self.json
        assert set(doc) >= {"error"}, f"not an error document: {self.body!r}"
        assert isinstance(doc["error"].get("message"), str) and doc["error"]["message"]
        return doc["error"]["code"]

    def __repr__(self):
        return f"<{self.status} {self.body[:300]!r}>"


def request(port, method, path, body=None, headers=None, raw=None, timeout=15):
    """One HTTP/1.1 request on a fresh connection to 127.0.0.1:port."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    hdrs = dict(headers or {})
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    try:
        conn.request(method, path, body=data, headers=hdrs)
        res = conn.getresponse()
        payload = res.read().decode("utf-8", "replace")
        return Response(res.status, {k.lower(): v for k, v in res.getheaders()}, payload)
    finally:
        conn.close()


def raw_request(port, data, timeout=5):
    """Sends bytes as they are (for requests http.client refuses to build)
    and returns (status, lower-cased head, body) once Content-Length bytes
    of body arrived or the server closed the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        response = b""
        while True:
            head, sep, body = response.partition(b"\r\n\r\n")
            if sep:
                length = [int(l.split(b":")[1]) for l in head.lower().split(b"\r\n")
                          if l.startswith(b"content-length:")]
                if length and len(body) >= length[0]:
                    break
            chunk = sock.recv(65536)
            if not chunk:
                break
            response += chunk
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), head.lower(), body


def admin_headers():
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_token(claims, secret=JWT_SECRET, header=None, sign=True):
    """A JWT built independently of the services' C code: HS256 with
    Python's hmac unless `header` says otherwise (`sign=False` leaves the
    signature empty, as an `alg: none` token does)."""
    header = header or {"alg": "HS256", "typ": "JWT"}
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest() if sign else b""
    return signing_input + "." + b64url(signature)


SERVICE_TOKEN_LIFETIME = 300  # AUTH_SERVICE_TOKEN_LIFETIME_S in services/common/auth.h


def signed_token(role, sub, lifetime=SERVICE_TOKEN_LIFETIME, secret=JWT_SECRET):
    """A token of `role` for `sub` (a user id, or a service's name), issued
    now with a jti of its own, signed as the services sign theirs."""
    now = int(time.time())
    return make_token({"sub": sub, "role": role, "iat": now, "exp": now + lifetime, "jti": uuid.uuid4().hex},
                      secret)


def service_headers(service="order"):
    """Authorization for an internal endpoint (inventory's reservations), as
    a peer sends it: a service token, role `service` and the calling
    service's name as sub, minted now."""
    return bearer(signed_token("service", service))


def customer_headers():
    """Authorization of a customer: a valid customer token for a user id of
    its own."""
    return bearer(signed_token("customer", str(uuid.uuid4())))


def token_claims(token):
    """The payload of a JWT, decoded without checking anything."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


_client_numbers = itertools.count(1)


def client_ip():
    """A fresh client address (198.18.0.0/15, for testing) to send as
    X-Forwarded-For, so per-address login limits of one test do not touch
    another's."""
    n = next(_client_numbers) + os.getpid() % 1000 * 64
    return f"198.{18 + (n >> 16) % 2}.{(n >> 8) % 256}.{n % 256}"


def unique(prefix):
    return f"{prefix}{uuid.uuid4().hex[:8].upper()}"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def connection_refused(port):
    """True when connecting is refused outright (nothing listens): unlike
    `not port_open`, a connection that is merely slow to complete on a
    loaded machine does not count."""
    with socket.socket() as s:
        s.settimeout(5)
        return s.connect_ex(("127.0.0.1", port)) == errno.ECONNREFUSED


def wait_until(predicate, timeout, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def stack(*args):
    """Runs scripts/stack.sh against the test stack's folder and ports."""
    env = dict(os.environ, STACK_DIR=STACK_DIR, PG_PORT=str(PG_PORT), REDIS_PORT=str(REDIS_PORT), **RABBITMQ_PORTS)
    subprocess.run([os.path.join(ROOT, "scripts", "stack.sh"), *args], check=True, env=env,
                   stdout=subprocess.DEVNULL)


def rabbitmq_pid():
    """The broker's process (beam.smp), from the pid file scripts/stack.sh
    has it write in its folder (under /var/tmp when the checkout is closed
    to the rabbitmq user)."""
    stack_id = hashlib.md5((STACK_DIR + "\n").encode()).hexdigest()[:8]
    for folder in (os.path.join(STACK_DIR, "rabbitmq"), f"/var/tmp/oms-{stack_id}/rabbitmq"):
        try:
            with open(os.path.join(folder, "rabbitmq.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            continue
    raise AssertionError("the test stack's RabbitMQ pid file was not found")


def redis_cli(*args):
    out = subprocess.run(["redis-cli", "-p", str(REDIS_PORT), "--raw", *args], check=True,
                         capture_output=True, text=True)
    return out.stdout.strip()


def db():
    """A superuser connection to the oms database (autocommit)."""
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", port=PG_PORT, user="postgres", password=PG_SUPERUSER_PASSWORD,
                            dbname="oms", connect_timeout=5)
    conn.autocommit = True
    return conn


def query(sql, *params):
    conn = db()
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


class Service:
    """A service binary running as a child process with its own port and log."""

    def __init__(self, name, port=None, **env):
        self.name = name
        self.port = port or free_port()
        self.log_path = os.path.join(STACK_DIR, "logs", f"{name}-{self.port}.log")
        role = {"inventory": "inventory", "user": "users", "order": "orders", "payment": "payments",
                "notification": "notifications"}[name]
        self.env = dict(
            os.environ,
            PORT=str(self.port),
            LISTEN_ADDRESS="127.0.0.1",
            THREADS="2",
            DATABASE_URL=f"postgresql://{role}:{role}-lab-password@127.0.0.1:{PG_PORT}/oms?gssencmode=disable",
            GNUTLS_NO_IMPLICIT_INIT="1",
            REDIS_URL=f"redis://127.0.0.1:{REDIS_PORT}/0",
            AMQP_URL=AMQP_URL,
            ADMIN_TOKEN=ADMIN_TOKEN,
            JWT_SECRET=JWT_SECRET,
            LOG_LEVEL="info",
            ASAN_OPTIONS="abort_on_error=0:halt_on_error=1:detect_leaks=1",
            UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1",
        )
        self.env.update({k: str(v) for k, v in env.items()})
        self.process = None

    def start(self, wait_ready=True):
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen([os.path.join(BIN_DIR, self.name)], env=self.env, stdout=self.log,
                                        stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: port_open(self.port) or self.process.poll() is not None, 20,
                       what=f"{self.name} to listen")
            assert self.process.poll() is None, f"{self.name} exited: {self.read_log()[-2000:]}"
            if wait_ready:
                wait_until(lambda: self.get("/health/ready").status == 200, 20, what=f"{self.name} ready")
        except BaseException:
            self.process.kill()  # a service that did not come up must not outlive the test
            self.process.wait()
            self.log.close()
            raise
        _started.append(self)
        return self

    def stop(self, timeout=20):
        """SIGTERM, then the exit status (0 for a clean, leak-free shutdown)."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self.log.close()

    def read_log(self):
        with open(self.log_path, "r", errors="replace") as f:
            return f.read()

    def log_lines(self):
        lines = []
        for line in self.read_log().splitlines():
            if line.startswith("{"):
                lines.append(json.loads(line))
        return lines

    def request(self, method, path, body=None, headers=None, raw=None, timeout=15):
        return request(self.port, method, path, body, headers, raw, timeout)

    def get(self, path, headers=None, timeout=15):
        return self.request("GET", path, headers=headers, timeout=timeout)

    def post(self, path, body=None, headers=None, raw=None):
        return self.request("POST", path, body, headers, raw)

    def wait_ready_everywhere(self, timeout=15):
        """Waits until /health/ready answers 200 twenty times in a row: each
        worker thread reconnects on its own backoff, and a request may land
        on any of them."""
        wait_until(lambda: all(self.get("/health/ready").status == 200 for _ in range(20)), timeout=timeout,
                   what=f"{self.name} ready on every worker")

    def metric(self, name, **labels):
        """The value of one sample of /metrics (0 when absent)."""
        wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())  # in declaration order
        for line in self.get("/metrics").body.splitlines():
            key, _, value = line.rpartition(" ")
            if key == (f"{name}{{{wanted}}}" if wanted else name):
                return float(value)
        return 0.0

    def set_faults(self, faults):
        res = self.request("PUT", "/admin/faults", faults, admin_headers())
        assert res.status == 200, res
        return res.json

    def fault_snapshots(self):
        """How many fault snapshots each worker thread has applied, by index."""
        counts = {}
        for line in self.get("/metrics").body.splitlines():
            match = re.match(r'^oms_fault_snapshots_total\{worker="(\d+)"\} (\S+)$', line)
            if match:
                counts[int(match.group(1))] = float(match.group(2))
        return counts

    def wait_faults_applied(self, timeout=15):
        """Waits until every worker thread applies the fault flags as Redis
        holds them now (see the module's wait_faults_applied)."""
        wait_faults_applied(self, timeout=timeout)

    def apply_faults(self, faults):
        """PUT /admin/faults, then waits until every worker has the new
        flags and oms_fault_active reports each one set or cleared."""
        current = self.set_faults(faults)
        self.wait_faults_applied()
        for name, value in faults.items():
            expected = 0 if value in (0, False, None) else 1
            assert self.metric("oms_fault_active", fault=name) == expected, (name, self.get("/metrics").body)
        return current

    def is_running(self):
        return self.process is not None and self.process.poll() is None

    def active_requests(self):
        """Requests in flight, not counting the /metrics request that asks."""
        return self.metric("http_server_active_requests") - 1

    def wait_in_flight(self, count=1, timeout=15):
        """Waits until at least `count` requests are being served."""
        wait_until(lambda: self.active_requests() >= count, timeout, interval=0.02,
                   what=f"{count} request(s) in flight at {self.name}")


_started = []
"""Every Service started in this process; clear_faults() waits for the
ones still running."""


def wait_faults_applied(*services, timeout=15, gone_ok=False):
    """Waits until every worker thread of each service applies the fault
    flags as Redis holds them now: two more snapshots each (the first may
    have been read just before the latest change; the second was asked for
    after this call began). With gone_ok, a service that stops answering
    (it is shutting down) no longer counts."""
    def snapshots(service):
        try:
            return service.fault_snapshots()
        except OSError:
            if not gone_ok:
                raise
            return None

    before = [snapshots(service) for service in services]

    def caught_up(service, baseline):
        now = snapshots(service) if baseline is not None else None
        if now is None:
            return True
        return len(now) == int(service.env["THREADS"]) and all(now[w] >= baseline.get(w, 0) + 2 for w in now)

    wait_until(lambda: all(caught_up(s, b) for s, b in zip(services, before)), timeout, interval=0.1,
               what="every worker to apply the fault flags: " + ", ".join(s.name for s in services))


def clear_faults():
    """Deletes every fault flag and, when there were any, waits until each
    running service has applied the empty set: a test that failed with a
    fault on must not leave it in force for the next one."""
    had_faults = redis_cli("DEL", FAULTS_KEY) != "0"
    _started[:] = [service for service in _started if service.is_running()]
    if had_faults and _started:
        wait_faults_applied(*_started, gone_ok=True)


@contextlib.contextmanager
def running(*names, **env):
    """Starts services (fault flags cleared first), yields them (one, or a
    dict by name), then stops them and requires each to exit 0: a clean,
    leak-free shutdown is part of every test run."""
    redis_cli("DEL", FAULTS_KEY)
    services = []
    try:
        for name in names:
            services.append(Service(name, **env).start())
        yield services[0] if len(services) == 1 else {s.name: s for s in services}
    finally:
        for service in services:
            status = service.stop()
            assert status == 0, f"{service.name} exited with {status}:\n{service.read_log()[-4000:]}"


FAULTS_KEY = "oms:faults"
