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
