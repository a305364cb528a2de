"""The HTTP side: the in-app inbox (paging, the unread filter, marking read,
nobody else's notifications) and Alertmanager's webhook receiver (firing
then resolved, grouped as Alertmanager grouped it, taken in once); bad
input to every endpoint gets a 4xx JSON error and writes nothing."""
import copy
import uuid

import pytest
from notification_support import ALERTMANAGER_TOKEN, Customer, inbox, order_data, publish

from oms_test import bearer, customer_headers, query, signed_token, unique, wait_until

ALERTS = "/api/notifications/alerts"
AM = {"Authorization": f"Bearer {ALERTMANAGER_TOKEN}"}


def admin():
    return bearer(signed_token("admin", str(uuid.uuid4())))


@pytest.fixture(scope="module")
def kim(notifier):
    """A customer with three notifications: the welcome and two orders."""
    kim = Customer("Kim")
    kim.register()
    for status, key in (("CONFIRMED", "order.confirmed"), ("CANCELLED", "order.cancelled")):
        publish(key, order_data(kim, status=status))
    wait_until(lambda: len(inbox(notifier, kim.headers)["items"]) == 3, 20, what="Kim's three notifications")
    return kim


def test_the_inbox_pages_newest_first_and_filters_unread(notifier, kim):
    full = inbox(notifier, kim.headers)
    assert [i["type"] for i in full["items"]] == ["order.cancelled", "order.confirmed", "user.registered"]
    assert full["unread"] == 3 and full["limit"] == 20 and full["offset"] == 0
    first = inbox(notifier, kim.headers, "?limit=2")
    second = inbox(notifier, kim.headers, "?limit=2&offset=2")
    assert [i["id"] for i in first["items"] + second["items"]] == [i["id"] for i in full["items"]]
    # marking one read: idempotent, counted, filtered out of ?unread=true
    target = full["items"][1]
    res = notifier.post(f"/api/notifications/{target['id']}/read", headers=kim.headers)
    assert res.status == 200 and res.json["read"] is True and res.json["read_at"] is not None
    again = notifier.post(f"/api/notifications/{target['id']}/read", headers=kim.headers)
    assert again.status == 200 and again.json["read_at"] == res.json["read_at"]
    unread = inbox(notifier, kim.headers, "?unread=true")
    assert unread["unread"] == 2
    assert target["id"] not in [i["id"] for i in unread["items"]] and len(unread["items"]) == 2
    assert len(inbox(notifier, kim.headers, "?unread=false")["items"]) == 3


def test_nobody_else_sees_or_reads_a_notification(notifier, kim):
    theirs = inbox(notifier, kim.headers)["items"][0]
    other = customer_headers()
    assert inbox(notifier, other)["items"] == []
    res = notifier.post(f"/api/notifications/{theirs['id']}/read", headers=other)
    assert res.status == 404 and res.error_code() == "not_found"
    assert query("SELECT read_at FROM notifications.inbox WHERE id = %s", theirs["id"]) == [(None,)]
    # an admin sees the admins' notifications, not a customer's own
    assert theirs["id"] not in [i["id"] for i in inbox(notifier, admin())["items"]]
    res = notifier.post(f"/api/notifications/{theirs['id']}/read", headers=admin())
    assert res.status == 404


@pytest.mark.parametrize("path,headers,status,code", [
    ("/api/notifications", {}, 401, "unauthorized"),
    ("/api/notifications?limit=0", "customer", 400, "invalid_request"),
    ("/api/notifications?limit=abc", "customer", 400, "invalid_request"),
    ("/api/notifications?offset=-1", "customer", 400, "invalid_request"),
    ("/api/notifications?unread=maybe", "customer", 400, "invalid_request"),
])
def test_bad_inbox_reads_get_a_json_error(notifier, path, headers, status, code):
    res = notifier.get(path, customer_headers() if headers == "customer" else headers)
    assert res.status == status, res
    assert res.error_code() == code, res


@pytest.mark.parametrize("target,headers,status", [
    ("not-a-uuid", "customer", 400),
    (str(uuid.uuid4()), "customer", 404),
    (str(uuid.uuid4()), "nobody", 401),
    (str(uuid.uuid4()), "service", 403),
])
def test_bad_reads_of_one_notification_get_a_json_error(notifier, target, headers, status):
    h = {"customer": customer_headers(), "service": bearer(signed_token("service", "order")), "nobody": {}}[headers]
    res = notifier.post(f"/api/notifications/{target}/read", headers=h)
    assert res.status == status, res
    assert res.error_code()


def alert(name, status="firing", **labels):
    return {"status": status, "labels": dict({"alertname": name, "severity": "critical", "job": "order"}, **labels),
            "annotations": {"summary": f"{name} on the order service",
                            "description": "More than 5% of requests fail."},
            "startsAt": "2026-12-03T10:00:00.000Z",
            "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-12-03T10:05:00.000Z",
            "generatorURL": "http://prometheus:9090/graph", "fingerprint": uuid.uuid4().hex[:16]}


def group(name, alerts, status="firing"):
    return {"version": "4", "groupKey": f'{{}}:{{alertname="{name}"}}', "truncatedAlerts": 0, "status": status,
            "receiver": "oms-notifications", "groupLabels": {"alertname": name},
            "commonLabels": {"alertname": name}, "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093", "alerts": alerts}


def test_alertmanager_firing_then_resolved_reaches_the_admins(notifier, mail, webhook):
    name = unique("HighErrorRate")
    firing = group(name, [alert(name, instance="a"), alert(name, instance="b")])
    res = notifier.post(ALERTS, firing, AM)
    assert res.status == 200 and res.json == {"status": "ok", "alerts": 2, "duplicate": False}, res
    m = [m for m in mail.wait_for("ops@oms.test") if name in m["Subject"]]
    assert [x["Subject"] for x in m] == [f"[FIRING:2] {name}"]
    text = m[0].get_content()
    assert text.count(f"[FIRING] {name}") == 2 and "instance=a" in text and "instance=b" in text
    assert f"{name} on the order service" in text
    assert any(t.startswith(f"*[FIRING:2] {name}*") for t in webhook.texts())
    items = [i for i in inbox(notifier, admin())["items"] if name in i["title"]]
    assert len(items) == 2 and {i["type"] for i in items} == {"alert.firing"}
    assert all(i["audience"] == "admin" for i in items)
    assert not [i for i in inbox(notifier, customer_headers())["items"] if name in i["title"]]

    # Alertmanager sends the same notification again (no 2xx seen): taken in once
    again = notifier.post(ALERTS, copy.deepcopy(firing), AM)
    assert again.status == 200 and again.json["duplicate"] is True
    assert len([m for m in mail.messages("ops@oms.test") if name in m["Subject"]]) == 1

    # a third alert joins the group: a new notification, not the same one again
    grown = copy.deepcopy(firing)
    grown["alerts"].append(alert(name, instance="c"))
    res = notifier.post(ALERTS, grown, AM)
    assert res.status == 200 and res.json["duplicate"] is False, res
    wait_until(lambda: [m["Subject"] for m in mail.messages("ops@oms.test") if name in m["Subject"]] ==
               [f"[FIRING:2] {name}", f"[FIRING:3] {name}"], 20, what="the grown group's email")

    resolved = copy.deepcopy(firing)
    resolved["status"] = "resolved"
    for a in resolved["alerts"]:
        a["status"], a["endsAt"] = "resolved", "2026-12-03T10:05:00.000Z"
    assert notifier.post(ALERTS, resolved, AM).status == 200
    wait_until(lambda: len([m for m in mail.messages("ops@oms.test") if name in m["Subject"]]) == 3, 20,
               what="the resolved email")
    m = [m for m in mail.messages("ops@oms.test") if name in m["Subject"]]
    assert [x["Subject"] for x in m] == [f"[FIRING:2] {name}", f"[FIRING:3] {name}", f"[RESOLVED:2] {name}"]
    assert "resolved at 2026-12-03T10:05:00.000Z" in m[2].get_content()
    types = [i["type"] for i in inbox(notifier, admin())["items"] if name in i["title"]]
    assert sorted(types) == ["alert.firing"] * 5 + ["alert.resolved"] * 2


def bad_payloads():
    good = group("Bad", [alert("Bad")])
    cases = []
    for field, value in (("version", "3"), ("status", "pending"), ("groupKey", ""), ("alerts", []),
                         ("alerts", "many")):
        case = copy.deepcopy(good)
        case[field] = value
        cases.append((f"{field}={value!r}", case))
    for field, value in (("status", "unknown"), ("labels", {"severity": "x"}), ("annotations", "text"),
                         ("startsAt", 5)):
        case = copy.deepcopy(good)
        case["alerts"][0][field] = value
        cases.append((f"alerts[0].{field}={value!r}", case))
    too_many = copy.deepcopy(good)
    too_many["alerts"] = [alert("Bad") for _ in range(501)]
    cases.append(("501 alerts", too_many))
    return cases


@pytest.mark.parametrize("what,payload", bad_payloads(), ids=[c[0] for c in bad_payloads()])
def test_a_bad_alertmanager_payload_is_refused_and_writes_nothing(notifier, what, payload):
    before = query("SELECT count(*) FROM notifications.events WHERE id LIKE 'alert:%%'")
    res = notifier.post(ALERTS, payload, AM)
    assert res.status == 400, (what, res)
    assert res.error_code() == "invalid_request", res
    assert query("SELECT count(*) FROM notifications.events WHERE id LIKE 'alert:%%'") == before


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token-0123456789"},
                                     {"Authorization": f"Basic {ALERTMANAGER_TOKEN}"}, "admin"])
def test_alerts_need_alertmanagers_token(notifier, headers):
    before = query("SELECT count(*) FROM notifications.events WHERE id LIKE 'alert:%%'")
    res = notifier.post(ALERTS, group("NoToken", [alert("NoToken")]), admin() if headers == "admin" else headers)
    assert res.status == 401 and res.error_code() == "unauthorized", res
    assert "Bearer" in res.headers.get("www-authenticate", "")
    assert query("SELECT count(*) FROM notifications.events WHERE id LIKE 'alert:%%'") == before


def test_alerts_that_are_not_json_are_refused(notifier):
    res = notifier.post(ALERTS, raw=b"{not json", headers=dict(AM, **{"Content-Type": "application/json"}))
    assert res.status == 400 and res.error_code(), res
