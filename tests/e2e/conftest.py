"""Fixtures for end-to-end tests that run more than one service."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))

from oms_test import Service, redis_cli  # noqa: E402


@pytest.fixture(scope="module")
def services():
    """The user and inventory services, sharing JWT_SECRET, PostgreSQL and
    Redis as they do in the lab."""
    redis_cli("DEL", "oms:faults")
    running = {name: Service(name).start() for name in ("user", "inventory")}
    yield running
    for name, service in running.items():
        status = service.stop()
        assert status == 0, f"{name} exited with {status}:\n{service.read_log()[-4000:]}"
