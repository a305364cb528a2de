-- The charge workflow as functions: beginning a charge and finishing it are
-- one statement each, so each is one transaction and one round trip, and
-- what must change together (the payment, its key's answer, its event)
-- does. Between the two, the service asks the (simulated) processor.
--
-- Each function that answers a request returns the answer's parts: an
-- `outcome` the service maps to a status, and the JSON `body`.

-- What the events of a payment carry.
CREATE FUNCTION payments.event_data(p payments.payments) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN jsonb_build_object(
        'payment_id', p.id,
        'order_id', p.order_id,
        'amount_cents', p.amount_cents,
        'currency', p.currency,
        'method', p.method,
        'status', p.status)
        || CASE WHEN p.decline_reason IS NULL THEN '{}'::jsonb
                ELSE jsonb_build_object('reason', p.decline_reason) END;
END
$$;

-- The final answer to the charge of a payment that has ended: 201 with the
-- payment, or 402 payment_declined saying why.
CREATE FUNCTION payments.charge_answer(p payments.payments, OUT status integer, OUT body jsonb)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p.status = 'succeeded' THEN
        status := 201;
        body := payments.payment_json(p);
        RETURN;
    END IF;
    status := 402;
    body := jsonb_build_object('error', jsonb_build_object(
        'code', 'payment_declined',
        'message', CASE p.decline_reason
                       WHEN 'insufficient_funds' THEN 'the card was declined: insufficient funds'
                       WHEN 'amount_limit_exceeded' THEN 'the card was declined: the amount is over its limit'
                       WHEN 'processor_timeout' THEN 'the payment processor did not answer in time'
                       ELSE 'the card was declined'
                   END,
        'reason', p.decline_reason,
        'payment', payments.payment_json(p)));
END
$$;

-- Records the end of payment `p` (already updated): its key gets the final
-- answer, and its event is written, in the caller's transaction.
CREATE FUNCTION payments.settle_charge(p payments.payments, p_traceparent text, OUT status integer, OUT body jsonb)
LANGUAGE plpgsql AS $$
BEGIN
    SELECT a.status, a.body INTO status, body FROM payments.charge_answer(p) a;
    UPDATE payments.idempotency_keys k
       SET response_status = settle_charge.status, response_body = settle_charge.body, completed_at = now()
     WHERE k.scope = 'charge' AND k.payment_id = p.id;
    PERFORM payments.outbox_emit(CASE WHEN p.status = 'succeeded' THEN 'payment.succeeded' ELSE 'payment.failed' END,
                                 payments.event_data(p), p_traceparent);
END
$$;

-- Begins the charge of order `p_order_id` under idempotency key `p_key`
-- for the request whose fingerprint is `p_request_hash`.
-- Outcomes:
--   started          the key and a `processing` payment were written: charge it
--   replay           the key has its final answer (status, body): send it again
--   in_progress      the key's first request is still charging
--   key_reused       the key came with another request first
--   already_charged  the order has a payment (body), begun under another key
--   voided           the order was fenced off (body: the void)
--
-- Two requests racing with one key: the second one's INSERT waits for the
-- first's transaction and then finds its row. Two keys racing for one
-- order: the payment's unique order_id lets one in; the other takes its
-- key back out, so that key stays free and nothing else is written.
CREATE FUNCTION payments.begin_charge(p_key text, p_request_hash text, p_order_id text, p_amount_cents bigint,
                                      p_currency text, p_method text, p_card_last4 text,
                                      OUT outcome text, OUT status integer, OUT body jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    k payments.idempotency_keys;
    p payments.payments;
BEGIN
    INSERT INTO payments.idempotency_keys (scope, key, request_hash)
         VALUES ('charge', p_key, p_request_hash)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        SELECT * INTO k FROM payments.idempotency_keys WHERE scope = 'charge' AND key = p_key;
        outcome := CASE WHEN k.request_hash <> p_request_hash THEN 'key_reused'
                        WHEN k.response_status IS NULL THEN 'in_progress'
                        ELSE 'replay' END;
        status := k.response_status;
        body := k.response_body;
        RETURN;
    END IF;

    INSERT INTO payments.payments (order_id, status, amount_cents, currency, method, card_last4)
         VALUES (p_order_id, 'processing', p_amount_cents, p_currency, p_method, p_card_last4)
    ON CONFLICT (order_id) DO NOTHING
      RETURNING * INTO p;
    IF NOT FOUND THEN
        DELETE FROM payments.idempotency_keys WHERE scope = 'charge' AND key = p_key;
        SELECT * INTO p FROM payments.payments WHERE order_id = p_order_id;
        outcome := CASE WHEN p.status = 'voided' THEN 'voided' ELSE 'already_charged' END;
        body := payments.payment_json(p);
        RETURN;
    END IF;

    UPDATE payments.idempotency_keys SET payment_id = p.id WHERE scope = 'charge' AND key = p_key;
    outcome := 'started';
    body := payments.payment_json(p);
END
$$;

-- Ends the charge of payment `p_id` as the processor decided: `p_status`
-- succeeded, declined or failed, with `p_reason` for the last two. Returns
-- the final answer, and `finished` true. When the recovery chore has
-- already failed the payment (this process was slower than the processor
-- timeout and the margin together), its answer stands: it is returned,
-- with `finished` false.
CREATE FUNCTION payments.finish_charge(p_id uuid, p_status text, p_reason text, p_traceparent text,
                                       OUT status integer, OUT body jsonb, OUT finished boolean)
LANGUAGE plpgsql AS $$
DECLARE
    p payments.payments;
BEGIN
    UPDATE payments.payments s
       SET status = p_status, decline_reason = p_reason, updated_at = now()
     WHERE s.id = p_id AND s.status = 'processing'
    RETURNING * INTO p;
    IF NOT FOUND THEN
        SELECT k.response_status, k.response_body INTO status, body
          FROM payments.idempotency_keys k WHERE k.scope = 'charge' AND k.payment_id = p_id;
        finished := false;
        RETURN;
    END IF;
    SELECT s.status, s.body INTO status, body FROM payments.settle_charge(p, p_traceparent) s;
    finished := true;
END
$$;

-- Fails up to `p_limit` charges still `processing` `p_older_than_ms` after
-- they began: the process that ran them died before it could finish them.
-- Each becomes `failed` (processor_timeout), its key gets that answer and
-- payment.failed is written. Returns the method of each, for the metrics.
-- SKIP LOCKED: a charge that is being finished right now is left alone.
CREATE FUNCTION payments.recover_charges(p_older_than_ms integer, p_limit integer, p_traceparent text)
RETURNS TABLE (method text)
LANGUAGE plpgsql AS $$
DECLARE
    p payments.payments;
BEGIN
    FOR p IN SELECT * FROM payments.payments s
              WHERE s.status = 'processing' AND s.created_at < now() - make_interval(secs => p_older_than_ms / 1000.0)
              ORDER BY s.created_at LIMIT p_limit
              FOR UPDATE SKIP LOCKED
    LOOP
        UPDATE payments.payments s
           SET status = 'failed', decline_reason = 'processor_timeout', updated_at = now()
         WHERE s.id = p.id
        RETURNING * INTO p;
        PERFORM payments.settle_charge(p, p_traceparent);
        method := p.method;
        RETURN NEXT;
    END LOOP;
END
$$;
