"""Fixtures for the user service's integration tests."""
import pytest

from oms_test import TEST_PASSWORD as PASSWORD, client_ip, running, unique


@pytest.fixture(scope="session")
def user_service():
    """One user service for the session, checked to stop cleanly."""
    with running("user") as service:
        yield service


class Account:
    """A registered account and helpers to use it from one client address."""

    def __init__(self, service, email, password, user, ip):
        self.service, self.email, self.password, self.user, self.ip = service, email, password, user, ip

    def login(self, password=None, ip=None):
        return self.service.post("/api/users/login", {"email": self.email, "password": password or self.password},
                                 {"X-Forwarded-For": ip or self.ip})

    def token(self):
        res = self.login()
        assert res.status == 200, res
        return res.json["token"]


@pytest.fixture
def account(user_service):
    """Registers a fresh account; call it for more than one."""
    def make(name="Test User"):
        email = f"{unique('user-').lower()}@example.com"
        ip = client_ip()
        res = user_service.post("/api/users/register", {"email": email, "password": PASSWORD, "name": name},
                                {"X-Forwarded-For": ip})
        assert res.status == 201, res
        return Account(user_service, email, PASSWORD, res.json, ip)
    return make
