"""Fixtures for the order service's tests: inventory and payment running
beside it (the saga's peers), products to order, and customers."""
import pytest
from order_support import Customer, order_env

from oms_test import Service, admin_headers, running, unique


@pytest.fixture(scope="session")
def peers():
    with running("inventory", "payment", PAYMENT_PROCESSOR_LATENCY_MS="5", PAYMENT_PROCESSOR_JITTER_MS="3") as s:
        yield s


@pytest.fixture(scope="session")
def orders(peers):
    """One order service for the session, checked to stop cleanly."""
    service = Service("order", **order_env(peers)).start()
    yield service
    assert service.stop() == 0, service.read_log()[-4000:]


@pytest.fixture
def product(peers):
    """A fresh product that no other test touches."""
    def make(stock=10, price=1250, threshold=0):
        sku = unique("T-")
        res = peers["inventory"].post("/api/inventory/products",
                                      {"sku": sku, "name": f"Test product {sku}", "category": "lab-tests",
                                       "price_cents": price, "stock": stock, "low_stock_threshold": threshold},
                                      admin_headers())
        assert res.status == 201, res
        return sku
    return make


@pytest.fixture
def customer():
    return Customer()
