"""An order, end to end into the customer's mailbox: through the native
gateway a new customer registers and places an order; the order service's
events reach the notification service through the outbox and RabbitMQ,
and the customer gets the confirmation email (recipient, subject, items,
total) from the lab's mail sink and sees it in the in-app inbox, read
through the gateway too."""
import os
import sys
import uuid

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "services", "notification", "tests"))

from notification_support import purge_queue, start_notifier  # noqa: E402
from sinks import MailSink  # noqa: E402

from oms_test import (STACK_DIR, TEST_CARDS, TEST_PASSWORD, Service, admin_headers, client_ip, request,  # noqa: E402
                      unique, wait_until)
from test_native_gateway import Gateway  # noqa: E402


@pytest.fixture(scope="module")
def lab(stack_sh, private_ports):
    mail = MailSink("e2e-mail").start()
    inventory = Service("inventory").start()
    payment = Service("payment").start()
    user = Service("user").start()
    order = Service("order", INVENTORY_URL=f"http://127.0.0.1:{inventory.port}",
                    PAYMENT_URL=f"http://127.0.0.1:{payment.port}").start()
    purge_queue()
    notification = start_notifier(dict(SMTP_URL=mail.url, USER_URL=f"http://127.0.0.1:{user.port}"))
    (port,) = private_ports(1)
    gateway = Gateway(stack_sh, os.path.join(STACK_DIR, "notification-flow-gateway"), port, inventory.port, user.port)
    gateway.env.update(ORDER_PORT=order.port, PAYMENT_PORT=payment.port, NOTIFICATION_PORT=notification.port)
    gateway.start()
    yield {"gateway": gateway, "inventory": inventory, "mail": mail}
    gateway.stop()
    for service in (notification, order, user, payment, inventory):
        assert service.stop() == 0, service.read_log()[-3000:]
    mail.stop()


def test_an_order_through_the_gateway_is_confirmed_by_email_and_in_the_inbox(lab):
    gw, mail = lab["gateway"], lab["mail"]
    sku = unique("MAIL-")
    created = request(lab["inventory"].port, "POST", "/api/inventory/products",
                      {"sku": sku, "name": "Mailed widget", "category": "lab-tests", "price_cents": 1575,
                       "stock": 5}, admin_headers())
    assert created.status == 201, created
    email = f"{unique('buyer-').lower()}@example.com"
    ip = client_ip()
    registered = request(gw.port, "POST", "/api/users/register",
                         {"email": email, "password": TEST_PASSWORD, "name": "Lin Buyer"}, {"X-Forwarded-For": ip})
    assert registered.status == 201, registered
    login = request(gw.port, "POST", "/api/users/login", {"email": email, "password": TEST_PASSWORD},
                    {"X-Forwarded-For": ip})
    assert login.status == 200, login
    auth = {"Authorization": f"Bearer {login.json['token']}"}
    res = request(gw.port, "POST", "/api/orders",
                  {"items": [{"sku": sku, "qty": 3}], "payment": {"method": "card", "card": TEST_CARDS["ok"]}},
                  dict(auth, **{"Idempotency-Key": str(uuid.uuid4())}), timeout=30)
    assert res.status == 201 and res.json["status"] == "CONFIRMED", res
    order = res.json
    short = order["id"][:8].upper()

    wait_until(lambda: any("confirmed" in m["Subject"] for m in mail.messages(email)), 60,
               what="the confirmation email")
    confirmed = [m for m in mail.messages(email) if "confirmed" in m["Subject"]]
    assert len(confirmed) == 1
    m = confirmed[0]
    assert m["To"].addresses[0].addr_spec == email
    assert m["Subject"] == f"Your order {short} is confirmed"
    text = m.get_content()
    assert "Hello Lin Buyer," in text and order["id"] in text
    assert f"3 x Mailed widget ({sku}) at 15.75 {order['currency']} = 47.25 {order['currency']}" in text
    assert f"Total: 47.25 {order['currency']}" in text
    # the registration's own event has its email too (in whatever order the two relays ran)
    wait_until(lambda: [m["Subject"] for m in mail.messages(email)].count("Welcome to the OMS Lab shop") == 1, 30,
               what="the welcome email")

    box = request(gw.port, "GET", "/api/notifications?unread=true", headers=auth)
    assert box.status == 200, box
    mine = [i for i in box.json["items"] if i["type"] == "order.confirmed"]
    assert len(mine) == 1 and mine[0]["order_id"] == order["id"] and "47.25" in mine[0]["body"]
    read = request(gw.port, "POST", f"/api/notifications/{mine[0]['id']}/read", headers=auth)
    assert read.status == 200 and read.json["read"] is True
