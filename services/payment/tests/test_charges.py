"""POST /api/payments: a charge, its idempotency key, the simulated
processor's test cards, and what is stored and published."""
import re
import threading
import uuid

import pytest
from payment_support import TEST_CARDS, charge_body, key_row, outbox_of, payments_of

from events import EventQueue
from oms_test import ADMIN_TOKEN, admin_headers, bearer, customer_headers, query, service_headers

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def test_a_card_charge_succeeds_and_can_be_read_back(payment, charge, order_id):
    res = charge(order_id, amount=4599)
    assert res.status == 201, res
    p = res.json
    assert UUID.match(p["id"]) and p["order_id"] == order_id
    assert (p["status"], p["amount_cents"], p["currency"], p["method"], p["card_last4"], p["refunded_cents"]) == \
        ("succeeded", 4599, "USD", "card", "4242", 0)
    assert "decline_reason" not in p
    assert payments_of(order_id) == [("succeeded", 4599, 0, None)]

    got = payment.get(f"/api/payments/{p['id']}", service_headers())
    assert got.status == 200 and got.json == p
    listed = payment.get(f"/api/payments?order_id={order_id}", admin_headers())
    assert listed.status == 200 and listed.json == {"items": [p]}
    assert payment.get("/api/payments?order_id=ord-nothing-here", service_headers()).json == {"items": []}


def test_a_wallet_charge_has_no_card(charge, order_id):
    res = charge(order_id, method="wallet", card=None)
    assert res.status == 201, res
    assert res.json["method"] == "wallet" and res.json["card_last4"] is None


def test_a_replay_returns_the_first_answer_and_charges_once(payment, charge, order_id):
    before = payment.metric("oms_payments_total", status="succeeded", method="card")
    first = charge(order_id, key="key-" + order_id)
    again = charge(order_id, key="key-" + order_id)
    assert first.status == again.status == 201
    assert again.body == first.body
    assert len(payments_of(order_id)) == 1
    assert payment.metric("oms_payments_total", status="succeeded", method="card") == before + 1


def test_without_a_key_the_order_id_is_the_key(charge, order_id):
    first = charge(order_id)
    again = charge(order_id)
    assert first.status == again.status == 201 and again.body == first.body
    assert key_row("charge", order_id)[1] == 201


def test_the_same_key_with_another_request_is_refused_and_changes_nothing(charge, order_id):
    key = str(uuid.uuid4())
    assert charge(order_id, key=key, amount=1000).status == 201
    for changed in [dict(amount=1001), dict(currency="EUR"), dict(method="wallet", card=None),
                    dict(card="4000056655665556")]:
        res = charge(order_id, key=key, **changed)
        assert res.status == 422 and res.error_code() == "idempotency_key_reused", (changed, res)
    other_order = charge(f"ord-{uuid.uuid4()}", key=key, amount=1000)
    assert other_order.status == 422 and other_order.error_code() == "idempotency_key_reused"
    assert payments_of(order_id) == [("succeeded", 1000, 0, None)]


def test_concurrent_duplicates_charge_once_and_all_get_the_same_answer(payment, charge, order_id):
    key = str(uuid.uuid4())
    results = [None] * 20

    def send(i):
        results[i] = charge(order_id, key=key, amount=777)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(results))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {r.status for r in results} == {201}, [r for r in results if r.status != 201][:3]
    assert len({r.body for r in results}) == 1
    assert payments_of(order_id) == [("succeeded", 777, 0, None)]
    assert [k for k, _ in outbox_of(order_id)] == ["payment.succeeded"]


def test_a_second_key_for_a_charged_order_is_refused_with_the_payment(charge, order_id):
    first = charge(order_id, key="a-" + order_id)
    res = charge(order_id, key="b-" + order_id)
    assert res.status == 409 and res.error_code() == "order_already_charged", res
    assert res.json["error"]["payment"] == first.json
    assert key_row("charge", "b-" + order_id) is None  # a refused request leaves no key
    assert len(payments_of(order_id)) == 1


@pytest.mark.parametrize("card,amount,reason", [
    (TEST_CARDS["insufficient_funds"], 500, "insufficient_funds"),
    (TEST_CARDS["limit"], 10001, "amount_limit_exceeded"),
])
def test_declining_cards_answer_402_with_the_reason(payment, charge, order_id, card, amount, reason):
    before = payment.metric("oms_payments_total", status="declined", method="card")
    res = charge(order_id, card=card, amount=amount)
    assert res.status == 402 and res.error_code() == "payment_declined", res
    assert res.json["error"]["reason"] == reason
    assert res.json["error"]["payment"]["status"] == "declined"
    assert res.json["error"]["payment"]["decline_reason"] == reason
    assert payments_of(order_id) == [("declined", amount, 0, reason)]
    assert payment.metric("oms_payments_total", status="declined", method="card") == before + 1
    again = charge(order_id, card=card, amount=amount)  # the decline is the key's answer too
    assert again.status == 402 and again.body == res.body


def test_the_limit_card_is_approved_up_to_its_limit(charge):
    assert charge(card=TEST_CARDS["limit"], amount=10000).status == 201


def test_the_card_that_never_answers_fails_after_the_processor_timeout(payment, charge, order_id):
    before = payment.metric("oms_payment_processor_duration_seconds_count", outcome="timeout")
    res = charge(order_id, card=TEST_CARDS["timeout"])
    assert res.status == 402 and res.json["error"]["reason"] == "processor_timeout", res
    assert payments_of(order_id) == [("failed", 2500, 0, "processor_timeout")]
    assert payment.metric("oms_payment_processor_duration_seconds_count", outcome="timeout") == before + 1
    assert payment.metric("oms_payments_total", status="failed", method="card") >= 1


def test_the_amount_histogram_counts_succeeded_charges(payment, charge):
    count = payment.metric("oms_payment_amount_cents_count")
    total = payment.metric("oms_payment_amount_cents_sum")
    assert charge(amount=1234).status == 201
    assert charge(card=TEST_CARDS["insufficient_funds"], amount=99).status == 402
    assert payment.metric("oms_payment_amount_cents_count") == count + 1
    assert payment.metric("oms_payment_amount_cents_sum") == total + 1234


def test_events_carry_the_outcome_and_the_callers_trace(payment, charge):
    queue = EventQueue("payment.*")
    try:
        ok, declined = f"ord-{uuid.uuid4()}", f"ord-{uuid.uuid4()}"
        traced = dict(service_headers(), traceparent=f"00-{TRACE_ID}-00f067aa0ba902b7-01")
        assert charge(ok, headers=traced, amount=300).status == 201
        assert charge(declined, card=TEST_CARDS["insufficient_funds"]).status == 402
        assert [k for k, _ in outbox_of(ok)] == ["payment.succeeded"]
        assert [k for k, _ in outbox_of(declined)] == ["payment.failed"]
        seen = queue.wait_for(lambda s: {ok, declined} <= {e.body["data"]["order_id"] for e in s},
                              what="both payment events")
        mine = {e.body["data"]["order_id"]: e for e in seen}
        assert mine[ok].routing_key == "payment.succeeded"
        data = mine[ok].body["data"]
        assert data["amount_cents"] == 300 and data["status"] == "succeeded" and data["method"] == "card"
        assert UUID.match(data["payment_id"])
        assert mine[ok].headers.get("traceparent", "").split("-")[1] == TRACE_ID
        assert mine[declined].routing_key == "payment.failed"
        assert mine[declined].body["data"]["reason"] == "insufficient_funds"
    finally:
        queue.close()


def test_no_card_number_is_stored_or_logged(payment, charge, order_id):
    card = "4000056655665556"  # a valid number no other test uses
    assert charge(order_id, card=card, key="k-" + order_id).status == 201
    rows = query("SELECT row_to_json(p)::text FROM payments.payments p WHERE order_id = %s "
                 "UNION ALL SELECT row_to_json(k)::text FROM payments.idempotency_keys k WHERE key = %s "
                 "UNION ALL SELECT payload::text FROM payments.outbox WHERE payload->'data'->>'order_id' = %s",
                 order_id, "k-" + order_id, order_id)
    assert len(rows) == 3 and not any(card in r[0] for r in rows)
    assert '"5556"' in rows[0][0]  # only the last four digits
    assert card not in payment.read_log()


@pytest.mark.parametrize("body,field", [
    ({}, "order_id"),
    (dict(charge_body("ord-1"), order_id="has space"), "order_id"),
    (dict(charge_body("ord-1"), order_id="x" * 65), "order_id"),
    (dict(charge_body("ord-1"), amount_cents=0), "amount_cents"),
    (dict(charge_body("ord-1"), amount_cents=-5), "amount_cents"),
    (dict(charge_body("ord-1"), amount_cents=100000001), "amount_cents"),
    (dict(charge_body("ord-1"), amount_cents="25.00"), "amount_cents"),
    (dict(charge_body("ord-1"), amount_cents=25.5), "amount_cents"),
    (dict(charge_body("ord-1"), currency="usd"), "currency"),
    (dict(charge_body("ord-1"), currency="USDX"), "currency"),
    (dict(charge_body("ord-1"), method="cash"), "method"),
    (dict(charge_body("ord-1"), card="4242424242424241"), "card"),  # fails the Luhn check
    (dict(charge_body("ord-1"), card="4242 4242 4242 4242"), "card"),
    (dict(charge_body("ord-1"), card="42424242424"), "card"),
    (charge_body("ord-1", card=None), "card"),
    (dict(charge_body("ord-1", method="wallet")), "card"),  # a card with a wallet
    (dict(charge_body("ord-1"), cvv="123"), "cvv"),
])
def test_bad_charges_get_400_naming_the_field_and_change_nothing(payment, body, field):
    order_id = body.get("order_id") if isinstance(body.get("order_id"), str) else None
    if order_id == "ord-1":
        order_id = body["order_id"] = f"ord-{uuid.uuid4()}"
    res = payment.post("/api/payments", body, service_headers())
    assert res.status == 400 and res.error_code() == "invalid_request", res
    assert res.json["error"]["field"] == field, res
    if order_id:
        assert payments_of(order_id) == []
    assert "4242424242424241" not in res.body


@pytest.mark.parametrize("raw", [b"not json", b"[1,2]", b'{"order_id": "a"', b""])
def test_bodies_that_are_not_a_json_object_get_400(payment, raw):
    res = payment.request("POST", "/api/payments", headers=dict(service_headers(), **{
        "Content-Type": "application/json"}), raw=raw)
    assert res.status == 400, res
    assert res.json["error"]["code"] in ("invalid_json", "invalid_request"), res


@pytest.mark.parametrize("key", ["", "x" * 129, "tab\there", "caf\u00e9"])
def test_a_malformed_idempotency_key_gets_400(payment, order_id, key):
    headers = dict(service_headers(), **{"Idempotency-Key": key.encode("utf-8").decode("latin-1")})
    res = payment.post("/api/payments", charge_body(order_id), headers)
    assert res.status == 400 and res.json["error"]["field"] == "Idempotency-Key", res
    assert payments_of(order_id) == []


def test_charging_needs_a_service_or_admin_credential(payment, charge, order_id):
    assert charge(order_id, headers={}).status == 401
    assert charge(order_id, headers=customer_headers()).status == 403
    assert charge(order_id, headers=bearer("not-a-token")).status == 401
    assert payments_of(order_id) == []
    assert charge(order_id, headers=bearer(ADMIN_TOKEN)).status == 201
    for path in [f"/api/payments?order_id={order_id}", f"/api/payments/{uuid.uuid4()}"]:
        assert payment.get(path).status == 401
        assert payment.get(path, customer_headers()).status == 403


def test_reading_payments_validates_its_parameters(payment):
    res = payment.get("/api/payments/not-a-uuid", service_headers())
    assert res.status == 400 and res.json["error"]["field"] == "id"
    res = payment.get(f"/api/payments/{uuid.uuid4()}", service_headers())
    assert res.status == 404 and res.error_code() == "not_found"
    for query_string in ["", "?order_id=", "?order_id=a%20b", "?order_id=" + "x" * 65]:
        res = payment.get("/api/payments" + query_string, service_headers())
        assert res.status == 400 and res.json["error"]["field"] == "order_id", (query_string, res)
