"""Fixtures for the inventory service's integration tests."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "tests", "support"))

from oms_test import admin_headers, redis_cli, running, unique  # noqa: E402


@pytest.fixture(scope="session")
def inventory():
    """One inventory service for the session, checked to stop cleanly."""
    with running("inventory") as service:
        yield service


@pytest.fixture(autouse=True)
def no_faults():
    """Fault flags are shared through Redis: every test starts and ends clean."""
    redis_cli("DEL", "oms:faults")
    yield
    redis_cli("DEL", "oms:faults")


@pytest.fixture
def product(inventory):
    """A fresh product (stock 10) that no other test touches."""
    def make(stock=10, threshold=3, category="lab-tests", price=1250):
        sku = unique("T-")
        res = inventory.post("/api/inventory/products",
                             {"sku": sku, "name": f"Test product {sku}", "category": category,
                              "price_cents": price, "stock": stock, "low_stock_threshold": threshold},
                             admin_headers())
        assert res.status == 201, res
        return sku
    return make
