"""What every service's integration tests share: the helpers in
tests/support on the import path, and clean fault flags around each test."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "support"))

from oms_test import clear_faults  # noqa: E402


@pytest.fixture(autouse=True)
def no_faults():
    """Fault flags are shared through Redis: every test starts and ends
    clean, and a test that fails with a fault on leaves no worker of any
    running service still applying it."""
    clear_faults()
    yield
    clear_faults()
