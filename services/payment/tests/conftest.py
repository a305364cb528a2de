"""Fixtures for the payment service's integration tests: one service for
the session (a fast simulated processor, a short processor timeout) and a
way to charge a fresh order."""
import uuid

import pytest
from payment_support import PAYMENT_ENV, Charger

from oms_test import running


@pytest.fixture(scope="session")
def payment():
    """One payment service for the session, checked to stop cleanly."""
    with running("payment", **PAYMENT_ENV) as service:
        yield service


@pytest.fixture
def charge(payment):
    return Charger(payment)


@pytest.fixture
def order_id():
    return f"ord-{uuid.uuid4()}"
