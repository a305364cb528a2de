"""Fixtures for end-to-end tests that run more than one service."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))

from oms_test import running  # noqa: E402


@pytest.fixture(scope="module")
def services():
    """The user and inventory services, sharing JWT_SECRET, PostgreSQL and
    Redis as they do in the lab."""
    with running("user", "inventory") as both:
        yield both


# --- native stack pieces (scripts/stack.sh) on private ports -----------------

import socket  # noqa: E402
import subprocess  # noqa: E402

from oms_test import BIN_DIR, ROOT  # noqa: E402

_handed_out = set()


@pytest.fixture(scope="session")
def private_ports():
    """private_ports(n): n free ports in 23000-24999, away from the ports of
    `make run` (8080, 5432, ...) and of the test stack (55432, 56379, 55672...),
    and never the same twice in a session. Below Linux's ephemeral range
    (32768-60999): a port picked there can be taken, between the check and
    the bind, as the local port of any outgoing connection on the machine
    (the services' own to PostgreSQL, Redis and RabbitMQ among them)."""
    def take(count):
        ports = []
        for port in range(23000, 25000):
            if len(ports) == count:
                break
            if port in _handed_out:
                continue
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
            ports.append(port)
        assert len(ports) == count, "no free ports in 23000-24999"
        _handed_out.update(ports)
        return ports
    return take


@pytest.fixture(scope="session")
def stack_sh():
    """stack_sh(env, *args, timeout=, check=True): runs scripts/stack.sh with
    `env` (STACK_DIR, ports, WITH_*) over the test environment, with the
    sanitizer build of the services (BIN_DIR); returns the CompletedProcess
    (stdout and stderr as text), and fails the test on a non-zero exit
    unless check=False."""
    def run(env, *args, timeout=180, check=True):
        full = dict(os.environ, BIN_DIR=BIN_DIR)
        full.update({k: str(v) for k, v in env.items()})
        res = subprocess.run([os.path.join(ROOT, "scripts", "stack.sh"), *args], env=full, capture_output=True,
                             text=True, timeout=timeout)
        if check:
            assert res.returncode == 0, f"stack.sh {' '.join(args)} exited {res.returncode}:\n{res.stdout}\n{res.stderr}"
        return res
    return run
