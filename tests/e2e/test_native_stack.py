"""The native stack as `make run` and `make stop` drive it (scripts/stack.sh
start and stop), on private ports and in a private folder so that neither a
developer's `make run` stack nor the test stack is touched: starting twice
is harmless, stopping leaves no process behind, the gateway routes, and a
PostgreSQL that was asked to stop (SIGTERM: a smart shutdown, which waits
for the services' pooled connections forever) neither blocks start nor stop."""
import hashlib
import os
import signal
import time

import pytest

from oms_test import PG_SUPERUSER_PASSWORD, STACK_DIR, port_open, request, wait_until


class NativeStack:
    def __init__(self, stack_sh, ports):
        self.stack_sh = stack_sh
        self.dir = os.path.join(STACK_DIR, "native-stack")
        names = ["PG_PORT", "REDIS_PORT", "AMQP_PORT", "RABBITMQ_MGMT_PORT", "RABBITMQ_PROMETHEUS_PORT",
                 "RABBITMQ_DIST_PORT", "GATEWAY_PORT", "INVENTORY_PORT", "USER_PORT", "ORDER_PORT", "PAYMENT_PORT",
                 "NOTIFICATION_PORT", "SMTP_PORT"]
        self.ports = dict(zip(names, ports))
        self.env = dict(self.ports, STACK_DIR=self.dir, WITH_RABBITMQ=0)
        # as scripts/stack.sh names the stack's private folders and RabbitMQ node
        self.id = hashlib.md5((self.dir + "\n").encode()).hexdigest()[:8]

    def run(self, *args, timeout=180, check=True, **env):
        return self.stack_sh(dict(self.env, **env), *args, timeout=timeout, check=check)

    @property
    def pg_data(self):
        for home in (os.path.join(self.dir, "postgres"), f"/var/tmp/oms-{self.id}/postgres"):
            if os.path.exists(os.path.join(home, "data", "PG_VERSION")):
                return os.path.join(home, "data")
        return None

    def postmaster(self):
        """(pid, state) of the stack's PostgreSQL from postmaster.pid, or None."""
        try:
            with open(os.path.join(self.pg_data, "postmaster.pid")) as f:
                lines = f.read().splitlines()
        except (OSError, TypeError):
            return None
        return int(lines[0]), (lines[7].strip() if len(lines) > 7 else "")

    def pids(self):
        """The processes the stack started, by name: its pid files, the
        postmaster, the RabbitMQ broker."""
        found = {}
        for name in ("gateway", "gateway-guard", "inventory", "user", "order", "payment", "notification", "mail",
                     "redis"):
            try:
                with open(os.path.join(self.dir, "pids", f"{name}.pid")) as f:
                    found[name] = int(f.read().strip())
            except (OSError, ValueError):
                pass
        if self.postmaster():
            found["postgres"] = self.postmaster()[0]
        for folder in (self.dir, f"/var/tmp/oms-{self.id}"):
            try:
                with open(os.path.join(folder, "rabbitmq", "rabbitmq.pid")) as f:
                    found["rabbitmq"] = int(f.read().strip())
            except (OSError, ValueError):
                pass
        return found

    def processes(self):
        """Every process of the stack: those of pids() and all they started."""
        parents = {}
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    parents[int(pid)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
        found = set(self.pids().values())
        while True:
            children = {pid for pid, parent in parents.items() if parent in found} - found
            if not children:
                return found
            found |= children

    def leftovers(self):
        """Running processes that mention the stack's folders or RabbitMQ node
        in their command line or environment (stack.sh's STACK_DIR is in the
        environment of everything it starts)."""
        marks = (self.dir.encode(), f"oms-{self.id}".encode())
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            parts = []
            for part in ("cmdline", "environ"):
                try:
                    with open(f"/proc/{pid}/{part}", "rb") as f:
                        parts.append(f.read())
                except OSError:
                    parts.append(b"")
            if any(mark in part for part in parts for mark in marks) and alive(int(pid)):
                found.append((int(pid), parts[0].replace(b"\0", b" ")[:200]))
        return found

    def gateway_get(self, path):
        return request(self.ports["GATEWAY_PORT"], "GET", path, timeout=10)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:  # a zombie is gone too
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def describe(pid):
    """A process as ps would show it: pid, state, command line."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            command = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return f"{pid} (gone)"
    return f"{pid} {state} {command}"


def superuser_connection(port):
    import psycopg2

    return psycopg2.connect(host="127.0.0.1", port=port, user="postgres", password=PG_SUPERUSER_PASSWORD,
                            dbname="oms", connect_timeout=5)


@pytest.fixture(scope="module")
def stack(stack_sh, private_ports):
    st = NativeStack(stack_sh, private_ports(13))
    st.run("destroy", check=False)
    yield st
    st.run("destroy", check=False)


def assert_nothing_left(stack, processes):
    """Right after stop: none of `processes` runs, nothing mentions the stack,
    and none of its ports is open. A process SIGKILLed by the stop (a
    PostgreSQL backend an immediate shutdown ended) may still be in the
    kernel's exit, its memory going (state R, no command line) when stop
    returns: it gets a few seconds to be gone; one that lives on fails."""
    def running():
        return [pid for pid in processes if alive(pid)]
    deadline = time.monotonic() + 10
    while running() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not running(), [describe(pid) for pid in running()]
    assert not stack.leftovers(), stack.leftovers()
    assert not [name for name, port in stack.ports.items() if port_open(port)]


def test_start_twice_is_harmless_and_stop_leaves_no_process(stack):
    first = stack.run("start", WITH_RABBITMQ=1)
    assert "postgres started" in first.stdout and "rabbitmq started" in first.stdout, first.stdout
    pids = stack.pids()
    assert {"postgres", "redis", "rabbitmq", "inventory", "user", "notification", "mail", "gateway",
            "gateway-guard"} <= set(pids), pids
    processes = stack.processes()
    assert stack.gateway_get("/api/inventory/products?limit=1").status == 200

    second = stack.run("start", WITH_RABBITMQ=1)
    for what in ("postgres", "redis", "rabbitmq", "inventory", "user", "notification", "mail sink", "gateway"):
        assert f"{what} already running" in second.stdout, second.stdout
    assert "database up to date (0 new)" in second.stdout
    assert stack.pids() == pids and all(alive(pid) for pid in pids.values())
    assert stack.gateway_get("/api/inventory/products?limit=1").status == 200
    assert stack.gateway_get("/api/users/me").status == 401  # the user service, through the gateway
    assert stack.gateway_get("/api/notifications").status == 401  # and the notification service

    stack.run("stop", WITH_RABBITMQ=1)
    assert_nothing_left(stack, processes)
    stack.run("stop", WITH_RABBITMQ=1)  # stopping a stopped stack is harmless too


def test_start_finishes_a_postgres_stuck_in_smart_shutdown_and_starts_it_again(stack):
    stack.run("start")
    assert stack.gateway_get("/api/inventory/products?limit=1").status == 200
    old_pid, state = stack.postmaster()
    assert state == "ready"

    # SIGTERM asks for a smart shutdown: it waits for the services' pooled connections
    os.kill(old_pid, signal.SIGTERM)
    wait_until(lambda: stack.postmaster()[1] == "stopping", 10, what="postgres to begin its shutdown")
    time.sleep(1)
    assert alive(old_pid) and stack.postmaster() == (old_pid, "stopping")

    res = stack.run("start", timeout=120)
    assert "postgres is stuck shutting down" in res.stdout and "postgres started" in res.stdout, res.stdout
    new_pid, state = stack.postmaster()
    assert new_pid != old_pid and state == "ready" and not alive(old_pid)
    conn = superuser_connection(stack.ports["PG_PORT"])
    conn.close()
    # the services reconnect on their own
    wait_until(lambda: stack.gateway_get("/api/inventory/products?limit=1").status == 200, 30,
               interval=0.5, what="inventory to answer through the gateway again")


def test_stop_copes_with_a_stuck_shutdown_and_a_backend_that_does_not_react(stack):
    """PostgreSQL stuck in a smart shutdown, and one of its backends stopped
    (SIGSTOP), so that even a fast shutdown cannot finish: stop must still
    end every process (an immediate shutdown after PG_STOP_TIMEOUT), and the
    next start recovers with nothing committed lost."""
    stack.run("start")
    conn = superuser_connection(stack.ports["PG_PORT"])
    with conn.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        backend = cur.fetchone()[0]
    processes = stack.processes()
    os.kill(backend, signal.SIGSTOP)
    postmaster, _ = stack.postmaster()
    os.kill(postmaster, signal.SIGTERM)
    try:
        wait_until(lambda: stack.postmaster()[1] == "stopping", 10, what="postgres to begin its shutdown")
        status = stack.run("status").stdout
        started = time.monotonic()
        res = stack.run("stop", timeout=90, PG_STOP_TIMEOUT=2)
        assert "stopping it immediately" in res.stdout, res.stdout
        assert time.monotonic() - started < 45
        assert stack.postmaster() is None
        assert_nothing_left(stack, processes)
        assert "postgres: shutting down" in status, status
    finally:
        if alive(backend):
            os.kill(backend, signal.SIGKILL)
        conn.close()

    stack.run("start-postgres")
    check = superuser_connection(stack.ports["PG_PORT"])
    with check.cursor() as cur:
        cur.execute("SELECT count(*) FROM inventory.products")
        assert cur.fetchone()[0] > 0
    check.close()
    stack.run("stop-postgres")
    assert stack.postmaster() is None
