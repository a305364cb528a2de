"""The payment service's faults (failure_rate, unreachable, latency_ms),
the recovery of charges whose process died, and the keys' retention."""
import os
import signal
import threading
import time
import uuid

import pytest
from payment_support import PAYMENT_ENV, TEST_CARDS, Charger, key_row, outbox_of, payments_of

from oms_test import Service, query, service_headers, wait_until


def test_failure_rate_declines_that_share_of_charges(payment, charge):
    try:
        payment.apply_faults({"payment.failure_rate": 1})
        order_id = f"ord-{uuid.uuid4()}"
        res = charge(order_id)
        assert res.status == 402 and res.json["error"]["reason"] == "card_declined", res
        assert payments_of(order_id) == [("declined", 2500, 0, "card_declined")]
        payment.apply_faults({"payment.failure_rate": 0.5})
        statuses = [charge().status for _ in range(60)]
    finally:
        payment.apply_faults({"payment.failure_rate": None})
    assert set(statuses) == {201, 402}, statuses
    assert 10 <= statuses.count(402) <= 50, statuses.count(402)  # binomial(60, 0.5): 1e-7 outside
    assert charge().status == 201


def test_latency_slows_every_charge(payment, charge):
    try:
        payment.apply_faults({"payment.latency_ms": 300})
        for _ in range(3):  # whichever worker answers
            started = time.monotonic()
            assert charge().status == 201
            assert time.monotonic() - started >= 0.29
    finally:
        payment.apply_faults({"payment.latency_ms": None})


def test_unreachable_holds_charges_unanswered_and_records_nothing(payment, charge, order_id):
    try:
        payment.apply_faults({"payment.unreachable": 1})
        with pytest.raises(OSError):  # the client gives up: no answer ever came
            charge(order_id, timeout=1.5)
        assert payments_of(order_id) == [] and key_row("charge", order_id) is None
        # the held request notices that its client left, and ends
        wait_until(lambda: payment.active_requests() == 0, 10, what="the held charge to end")
        assert payment.get("/api/payments?order_id=" + order_id, service_headers()).status == 200
    finally:
        payment.apply_faults({"payment.unreachable": None})
    assert charge(order_id).status == 201  # nothing was recorded: the retry charges


def test_a_held_charge_gets_503_when_the_service_stops():
    service = Service("payment", **PAYMENT_ENV).start()
    try:
        service.apply_faults({"payment.unreachable": 1})
        result = {}
        t = threading.Thread(target=lambda: result.update(res=Charger(service)(timeout=30)))
        t.start()
        service.wait_in_flight(1)
        status = service.stop()
        t.join()
    finally:
        service.set_faults({"payment.unreachable": None}) if service.is_running() else None
        service.stop()
    assert status == 0, service.read_log()[-3000:]
    assert result["res"].status == 503 and result["res"].error_code() == "shutting_down", result


def test_a_charge_whose_process_died_is_failed_by_recovery_and_its_key_answers():
    env = dict(PAYMENT_ENV, PAYMENT_PROCESSOR_TIMEOUT_MS="1500", PAYMENT_RECOVERY_MARGIN_MS="1000")
    first = Service("payment", **env).start()
    order_id, key = f"ord-{uuid.uuid4()}", str(uuid.uuid4())
    t = threading.Thread(target=lambda: _ignore_errors(Charger(first), order_id, key))
    try:
        t.start()
        wait_until(lambda: payments_of(order_id) != [], 10, what="the charge to begin")
        first.process.send_signal(signal.SIGKILL)  # mid-charge: the processor has been asked
        first.process.wait()
    finally:
        t.join()
        first.log.close()
    assert payments_of(order_id) == [("processing", 2500, 0, None)]

    second = Service("payment", **env).start()
    try:
        wait_until(lambda: payments_of(order_id)[0][0] != "processing", 15, what="recovery")
        assert payments_of(order_id) == [("failed", 2500, 0, "processor_timeout")]
        replay = Charger(second)(order_id, key=key, card=TEST_CARDS["timeout"])
        assert replay.status == 402 and replay.json["error"]["reason"] == "processor_timeout", replay
        assert [k for k, _ in outbox_of(order_id)] == ["payment.failed"]
    finally:
        assert second.stop() == 0, second.read_log()[-3000:]


def _ignore_errors(charger, order_id, key):
    try:
        charger(order_id, key=key, card=TEST_CARDS["timeout"], timeout=10)
    except OSError:
        pass  # the service was killed under it


def test_answered_keys_are_kept_at_least_a_day(charge):
    kept, old = f"ord-{uuid.uuid4()}", f"ord-{uuid.uuid4()}"
    assert charge(kept).status == 201 and charge(old).status == 201
    query("UPDATE payments.idempotency_keys SET completed_at = now() - interval '23 hours 59 minutes' "
          "WHERE scope = 'charge' AND key = %s", kept)
    query("UPDATE payments.idempotency_keys SET completed_at = now() - interval '24 hours 1 minute' "
          "WHERE scope = 'charge' AND key = %s", old)
    query("SELECT payments.prune_idempotency_keys(24, 100000)")  # what the retention chore runs
    assert key_row("charge", kept) is not None
    assert key_row("charge", old) is None


def test_a_retention_under_a_day_is_refused_at_start():
    service = Service("payment", PAYMENT_IDEMPOTENCY_TTL_HOURS="23")
    with pytest.raises(AssertionError, match="PAYMENT_IDEMPOTENCY_TTL_HOURS"):
        service.start()
    assert service.process.returncode not in (0, None)
    assert os.path.exists(service.log_path)
