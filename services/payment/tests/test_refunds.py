"""POST /api/payments/{id}/refund: never more than was charged, each refund
once, and POST /api/payments/void: the order service's fence against a
charge it gave up waiting for."""
import threading
import uuid

import pytest
from payment_support import TEST_CARDS, key_row, outbox_of, payments_of

from oms_test import customer_headers, query, service_headers, wait_until


@pytest.fixture
def charged(charge):
    """A succeeded payment of `amount` cents: its JSON."""
    def make(amount=5000, **terms):
        res = charge(amount=amount, **terms)
        assert res.status == 201, res
        return res.json
    return make


def refund(payment, payment_id, amount=None, key=None, headers=None):
    h = dict(service_headers() if headers is None else headers)
    if key is not None:
        h["Idempotency-Key"] = key
    body = {} if amount is None else {"amount_cents": amount}
    return payment.post(f"/api/payments/{payment_id}/refund", body, h)


def refund_rows(payment_id):
    return [r[0] for r in query("SELECT amount_cents FROM payments.refunds WHERE payment_id = %s ORDER BY created_at",
                                payment_id)]


def test_a_full_refund_returns_everything_once(payment, charged):
    p = charged(5000)
    before = payment.metric("oms_payments_total", status="refunded", method="card")
    res = refund(payment, p["id"])
    assert res.status == 200, res
    assert res.json["refunded_cents"] == 5000 and res.json["refund"]["amount_cents"] == 5000
    again = refund(payment, p["id"])  # all of it again: nothing left, nothing done
    assert again.status == 200 and again.json["refunded_cents"] == 5000 and "refund" not in again.json
    assert refund_rows(p["id"]) == [5000]
    assert payment.metric("oms_payments_total", status="refunded", method="card") == before + 1
    events = outbox_of(p["order_id"])
    assert [k for k, _ in events] == ["payment.succeeded", "payment.refunded"]
    assert events[1][1]["amount_cents"] == 5000


def test_partial_refunds_sum_to_at_most_the_charge(payment, charged):
    p = charged(5000)
    assert refund(payment, p["id"], 3000).json["refunded_cents"] == 3000
    over = refund(payment, p["id"], 2001)
    assert over.status == 422 and over.error_code() == "refund_exceeds_charge", over
    assert over.json["error"]["remaining_cents"] == 2000 and over.json["error"]["requested_cents"] == 2001
    assert refund(payment, p["id"], 2000).json["refunded_cents"] == 5000
    assert refund(payment, p["id"], 1).status == 422
    assert refund_rows(p["id"]) == [3000, 2000]
    assert payments_of(p["order_id"]) == [("succeeded", 5000, 5000, None)]


def test_concurrent_refunds_never_pass_the_charge(payment, charged):
    p = charged(5000)
    results = [None] * 10

    def send(i):
        results[i] = refund(payment, p["id"], 1000)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(results))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status for r in results) == [200] * 5 + [422] * 5, results
    assert refund_rows(p["id"]) == [1000] * 5
    assert payments_of(p["order_id"])[0][2] == 5000


def test_a_keyed_refund_is_made_once_and_replayed(payment, charged):
    p = charged(5000)
    key = str(uuid.uuid4())
    first = refund(payment, p["id"], 1500, key=key)
    again = refund(payment, p["id"], 1500, key=key)
    assert first.status == again.status == 200 and again.body == first.body
    assert refund_rows(p["id"]) == [1500]
    reused = refund(payment, p["id"], 1600, key=key)
    assert reused.status == 422 and reused.error_code() == "idempotency_key_reused"
    other = charged(5000)
    assert refund(payment, other["id"], 1500, key=key).error_code() == "idempotency_key_reused"
    assert refund_rows(other["id"]) == []


def test_a_refused_refund_leaves_no_key(payment, charged):
    p = charged(1000)
    key = str(uuid.uuid4())
    assert refund(payment, p["id"], 1001, key=key).status == 422
    assert key_row("refund", key) is None
    assert refund(payment, p["id"], 1000, key=key).status == 200  # the same key, now within the charge


def test_only_a_succeeded_payment_is_refundable(payment, charge):
    declined = charge(card=TEST_CARDS["insufficient_funds"])
    payment_id = declined.json["error"]["payment"]["id"]
    res = refund(payment, payment_id)
    assert res.status == 409 and res.error_code() == "payment_not_refundable", res
    assert res.json["error"]["payment"]["status"] == "declined"
    assert refund_rows(payment_id) == []


def test_refunds_validate_their_input(payment, charged):
    p = charged(1000)
    assert refund(payment, "not-a-uuid").json["error"]["field"] == "id"
    missing = refund(payment, str(uuid.uuid4()))
    assert missing.status == 404 and missing.error_code() == "not_found"
    for body in [{"amount_cents": 0}, {"amount_cents": -1}, {"amount_cents": "10"}, {"amount_cents": 1.5},
                 {"amount_cents": 100000001}, {"amount": 10}]:
        res = payment.post(f"/api/payments/{p['id']}/refund", body, service_headers())
        assert res.status == 400 and res.error_code() == "invalid_request", (body, res)
    assert payment.post(f"/api/payments/{p['id']}/refund", None,
                        dict(service_headers(), **{"Content-Type": "application/json"}), raw=b"[]").status == 400
    assert refund(payment, p["id"], headers={}).status == 401
    assert refund(payment, p["id"], headers=customer_headers()).status == 403
    assert refund_rows(p["id"]) == []


# --- voids ------------------------------------------------------------------

def void(payment, order_id, headers=None):
    return payment.post("/api/payments/void", {"order_id": order_id},
                        service_headers() if headers is None else headers)


def test_a_voided_order_can_never_be_charged(payment, charge, order_id):
    res = void(payment, order_id)
    assert res.status == 200 and res.json["status"] == "voided" and res.json["amount_cents"] == 0, res
    assert void(payment, order_id).json == res.json  # voiding twice is harmless
    late = charge(order_id)  # the charge that was still on its way
    assert late.status == 409 and late.error_code() == "payment_voided", late
    assert payments_of(order_id) == [("voided", 0, 0, None)]
    assert outbox_of(order_id) == []


def test_a_charged_order_cannot_be_voided(payment, charge, order_id):
    p = charge(order_id).json
    res = void(payment, order_id)
    assert res.status == 409 and res.error_code() == "payment_succeeded", res
    assert res.json["error"]["payment"] == p


def test_a_declined_order_is_settled_by_a_void(payment, charge, order_id):
    assert charge(order_id, card=TEST_CARDS["insufficient_funds"]).status == 402
    res = void(payment, order_id)
    assert res.status == 200 and res.json["status"] == "declined", res


def test_a_void_during_the_charge_is_told_to_wait(payment, charge, order_id):
    result = {}
    t = threading.Thread(target=lambda: result.update(res=charge(order_id, card=TEST_CARDS["timeout"])))
    t.start()
    try:
        wait_until(lambda: payments_of(order_id) != [], 10, what="the charge to begin")
        res = void(payment, order_id)
        assert res.status == 409 and res.error_code() == "payment_in_progress", res
    finally:
        t.join()
    assert result["res"].status == 402
    assert void(payment, order_id).status == 200  # settled now: failed


def test_voids_validate_their_input(payment):
    for body in [{}, {"order_id": ""}, {"order_id": "a b"}, {"order_id": "x" * 65}, {"order_id": 5},
                 {"order_id": "ord-1", "extra": 1}]:
        res = payment.post("/api/payments/void", body, service_headers())
        assert res.status == 400 and res.error_code() == "invalid_request", (body, res)
    assert void(payment, "ord-x", headers={}).status == 401
    assert void(payment, "ord-x", headers=customer_headers()).status == 403
    assert payments_of("ord-x") == []
