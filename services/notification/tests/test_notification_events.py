"""The consumer end to end against real RabbitMQ, PostgreSQL, the lab's mail
sink and a webhook receiver: what each event becomes, once; poison that
goes to the dead letters without holding anything up; an SMTP server that
goes away and comes back."""
import json
import threading
import uuid

from notification_support import (RETRY_DELAYS_MS, TRACEPARENT, Customer, DeadLetters, inbox, order_data,
                                  publish)

from oms_test import TEST_PASSWORD, bearer, client_ip, query, signed_token, unique, wait_until


def event_settled(event_id):
    """Taken in, and every delivery of it sent."""
    rows = query("SELECT count(*) FILTER (WHERE sent_at IS NULL) FROM notifications.deliveries d"
                 " JOIN notifications.events e ON e.id = d.event_id WHERE e.id = %s", event_id)
    taken = query("SELECT 1 FROM notifications.events WHERE id = %s", event_id)
    return bool(taken) and rows[0][0] == 0


def test_an_order_confirmed_event_mails_the_customer_and_fills_their_inbox(notifier, mail):
    ada = Customer("Ada Lovelace")
    ada.register()
    order = order_data(ada)
    publish("order.created", order)
    event_id = publish("order.confirmed", order)
    short = order["order_id"][:8].upper()
    messages = mail.wait_for(ada.email, count=2)  # the welcome, then the order
    wait_until(lambda: event_settled(event_id), 20, what="the event settled")
    subjects = [m["Subject"] for m in mail.messages(ada.email)]
    assert subjects == ["Welcome to the OMS Lab shop", f"Your order {short} is confirmed"], subjects
    m = messages[-1]
    assert m["To"].addresses[0].addr_spec == ada.email
    assert m["From"].addresses[0].display_name == "OMS Lab"
    assert m["From"].addresses[0].addr_spec == "notifications@oms.local"
    assert m["Message-ID"] == f"<{event_id}.email@oms.local>"
    text = m.get_content()
    assert "Hello Ada Lovelace," in text
    assert order["order_id"] in text
    assert "2 x Lab widget (LAB-1) at 12.50 EUR = 25.00 EUR" in text
    assert "1 x Lab gadget (LAB-2) at 9.99 EUR = 9.99 EUR" in text
    assert "Total: 34.99 EUR" in text
    box = inbox(notifier, ada.headers)
    assert box["unread"] == 2
    latest = box["items"][0]
    assert latest["type"] == "order.confirmed" and latest["order_id"] == order["order_id"]
    assert latest["title"] == f"Your order {short} is confirmed" and "34.99 EUR" in latest["body"]
    assert latest["read"] is False and latest["audience"] == "user"
    # order.created is remembered (whose order it is), not announced
    assert [i["type"] for i in box["items"]] == ["order.confirmed", "user.registered"]
    # the delivery's trace continues the producer's
    trace_id = TRACEPARENT.split("-")[1]
    assert any(line.get("message_id") == event_id and line["trace_id"] == trace_id
               for line in notifier.log_lines()), "no log line of the event in the producer's trace"


def test_an_address_not_known_yet_is_asked_of_the_user_service(notifier, mail, user_service):
    email = f"{unique('grace-').lower()}@example.com"
    res = user_service.post("/api/users/register", {"email": email, "password": TEST_PASSWORD, "name": "Grace"},
                            {"X-Forwarded-For": client_ip()})
    assert res.status == 201, res
    user_id = res.json["id"]
    # the registration's own event is taken in (its welcome sent); then the
    # address is forgotten, as for an account older than this service
    mail.wait_for(email, count=1, timeout=30)
    query("DELETE FROM notifications.recipients WHERE user_id = %s", user_id)
    failed = order_data(Customer(), status="FAILED", reason="payment declined: insufficient_funds")
    failed["user_id"] = user_id
    publish("order.failed", failed)
    m = [m for m in mail.wait_for(email, count=2, timeout=30) if "could not be completed" in m["Subject"]]
    assert m and "Reason: payment declined: insufficient_funds" in m[0].get_content()
    assert query("SELECT email FROM notifications.recipients WHERE user_id = %s", user_id) == [(email,)]


def test_the_same_event_twice_notifies_once(notifier, mail):
    bob = Customer("Bob")
    bob.register()
    order = order_data(bob, status="CANCELLED")
    duplicates = notifier.metric("oms_notification_duplicates_total")
    event_id = str(uuid.uuid4())
    # twice at once, then once more later: all one event
    threads = [threading.Thread(target=publish, args=("order.cancelled", order, event_id)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wait_until(lambda: notifier.metric("oms_notification_duplicates_total") >= duplicates + 1, 20,
               what="the duplicate seen")
    publish("order.cancelled", order, event_id)
    wait_until(lambda: notifier.metric("oms_notification_duplicates_total") >= duplicates + 2, 20,
               what="the second duplicate seen")
    assert len([m for m in mail.messages(bob.email) if "cancelled" in m["Subject"]]) == 1
    items = [i for i in inbox(notifier, bob.headers)["items"] if i["type"] == "order.cancelled"]
    assert len(items) == 1
    assert query("SELECT count(*) FROM notifications.deliveries WHERE event_id = %s", event_id) == [(1,)]


def test_poison_goes_to_the_dead_letters_after_its_attempts_and_holds_nothing_up(notifier, mail):
    dead = DeadLetters()
    try:
        dead_before = notifier.metric("oms_notification_dead_letters_total")
        poison = [
            publish("order.confirmed", body="this is not JSON"),
            publish("order.shipped", {"order_id": "x"}),  # a type nobody routes
            publish("order.confirmed", {"order_id": str(uuid.uuid4())}),  # no user, no items
        ]
        carol = Customer("Carol")
        carol.register()
        # published after the poison, delivered long before the poison is given up on
        mail.wait_for(carol.email, count=1, timeout=10)
        assert notifier.metric("oms_notification_dead_letters_total") == dead_before
        for message_id in poison:
            props, body = dead.wait_for(message_id)
            assert props.headers["x-attempt"] == len(RETRY_DELAYS_MS) + 1  # every attempt made
        wait_until(lambda: notifier.metric("oms_notification_dead_letters_total") >= dead_before + 3, 10,
                   what="the dead letters counted")
        assert not query("SELECT 1 FROM notifications.events WHERE id = ANY(%s)", poison)
    finally:
        dead.close()


def test_smtp_down_is_retried_until_it_is_back_then_delivered_once(notifier, mail):
    dave = Customer("Dave")
    dave.register()
    mail.wait_for(dave.email, count=1)
    retries = notifier.metric("oms_notification_retries_total")
    mail.stop()
    try:
        event_id = publish("order.confirmed", order_data(dave))
        wait_until(lambda: notifier.metric("oms_notification_retries_total") >= retries + 2, 20,
                   what="two retries while SMTP is down")
        assert notifier.metric("oms_notifications_total", channel="email", outcome="failed") >= 2
    finally:
        mail.start()
    wait_until(lambda: event_settled(event_id), 30, what="the email sent once SMTP is back")
    confirmed = [m for m in mail.messages(dave.email) if "confirmed" in m["Subject"]]
    assert len(confirmed) == 1
    attempts = query("SELECT attempts, last_error FROM notifications.deliveries WHERE event_id = %s", event_id)
    assert attempts[0][0] >= 3 and attempts[0][1] is None  # failed twice at least, then sent


def test_the_smtp_down_fault_fails_the_email_channel_until_cleared(notifier, mail):
    erin = Customer("Erin")
    erin.register()
    mail.wait_for(erin.email, count=1)
    failed = notifier.metric("oms_notifications_total", channel="email", outcome="failed")
    notifier.apply_faults({"notification.smtp_down": True})
    event_id = publish("order.confirmed", order_data(erin))
    wait_until(lambda: notifier.metric("oms_notifications_total", channel="email", outcome="failed") >= failed + 1,
               20, what="the email failing under the fault")
    assert len(mail.messages(erin.email)) == 1
    # the in-app channel is not SMTP: it is there already
    assert any(i["type"] == "order.confirmed" for i in inbox(notifier, erin.headers)["items"])
    notifier.apply_faults({"notification.smtp_down": None})
    wait_until(lambda: event_settled(event_id), 30, what="the email sent once the fault is cleared")
    assert len(mail.messages(erin.email)) == 2


def test_low_stock_goes_to_the_admins_by_email_webhook_and_inbox(notifier, mail, webhook):
    sku = unique("LOW-")
    publish("inventory.low_stock", {"sku": sku, "name": "Lab sprocket", "stock": 2, "reserved": 0, "threshold": 5})
    wait_until(lambda: any(sku in t for t in webhook.texts()), 20, what="the webhook message")
    text = [t for t in webhook.texts() if sku in t][0]
    assert text.startswith(f"*Low stock: {sku} (Lab sprocket) has 2 left*\n")
    m = [m for m in mail.wait_for("ops@oms.test") if sku in m["Subject"]]
    assert m and "low-stock threshold 5" in m[0].get_content()
    admin = bearer(signed_token("admin", str(uuid.uuid4())))
    assert any(sku in i["title"] and i["audience"] == "admin" for i in inbox(notifier, admin)["items"])
    # a customer never sees the admins' notifications
    assert not any(sku in i["title"] for i in inbox(notifier, Customer().headers)["items"])


def test_a_failing_webhook_is_retried_and_the_email_is_not_sent_twice(notifier, mail, webhook):
    sku = unique("OUT-")
    webhook.failing = True
    try:
        publish("inventory.out_of_stock", {"sku": sku, "name": "Lab cog", "stock": 0, "reserved": 0, "threshold": 3})
        wait_until(lambda: notifier.metric("oms_notifications_total", channel="webhook", outcome="failed") >= 1, 20,
                   what="the webhook failing")
        assert [m for m in mail.wait_for("ops@oms.test") if sku in m["Subject"]]
    finally:
        webhook.failing = False
    wait_until(lambda: any(sku in t for t in webhook.texts()), 30, what="the webhook message once it answers")
    assert len([m for m in mail.messages("ops@oms.test") if sku in m["Subject"]]) == 1
    assert len([t for t in webhook.texts() if sku in t]) == 1


def test_a_refund_reaches_the_orders_customer(notifier, mail):
    fay = Customer("Fay")
    fay.register()
    order = order_data(fay)
    publish("order.created", order)
    publish("payment.refunded", {"payment_id": str(uuid.uuid4()), "order_id": order["order_id"],
                                 "amount_cents": 999, "currency": "EUR", "method": "card", "status": "succeeded",
                                 "refunded_cents_total": 999})
    m = [m for m in mail.wait_for(fay.email, count=2) if "refund" in m["Subject"]]
    assert m and "We have refunded 9.99 EUR" in m[0].get_content()
    assert json.dumps(order["order_id"]) in json.dumps(inbox(notifier, fay.headers)["items"])
