"""Fixtures for the inventory service's integration tests."""
import pytest

from oms_test import admin_headers, running, unique


@pytest.fixture(scope="session")
def inventory():
    """One inventory service for the session, checked to stop cleanly."""
    with running("inventory") as service:
        yield service


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
