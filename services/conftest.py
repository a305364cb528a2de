"""What every service's integration tests share: the helpers in
tests/support on the import path, and clean fault flags around each test."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "support"))

from oms_test import FAULTS_KEY, redis_cli  # noqa: E402


@pytest.fixture(autouse=True)
def no_faults():
    """Fault flags are shared through Redis: every test starts and ends clean."""
    redis_cli("DEL", FAULTS_KEY)
    yield
    redis_cli("DEL", FAULTS_KEY)
