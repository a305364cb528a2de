-- Refunds, voids and the retention of idempotency keys, as functions: one
-- statement, one transaction each.

-- Refunds `p_amount_cents` (NULL: all that remains) of payment `p_id`.
-- With a key (`p_key`, and the request's fingerprint `p_request_hash`) the
-- answer is recorded and a replay gets it again.
-- Outcomes:
--   refunded        a refund was made: body is the payment with `refund`
--   nothing_left    a full refund of a payment already wholly refunded:
--                   body is the payment as it is (asking twice is harmless)
--   replay          the key's recorded answer (status, body)
--   key_reused      the key came with another request first
--   not_found       no such payment
--   not_refundable  the payment is not `succeeded` (body: the payment)
--   exceeds         more than remains (body: remaining_cents, payment)
--
-- The payment row is locked first (FOR UPDATE), so refunds of one payment
-- happen one at a time and each sees the total of those before it: their
-- sum cannot pass the amount charged (and the CHECK on refunded_cents
-- would refuse it if it did). Two requests with one key for two payments
-- do not share a lock; the second's INSERT of the key then fails on its
-- primary key (23505), its transaction rolls back, and the service asks
-- again: it gets key_reused.
CREATE FUNCTION payments.refund(p_id uuid, p_amount_cents bigint, p_key text, p_request_hash text,
                                p_traceparent text, OUT outcome text, OUT status integer, OUT body jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    p payments.payments;
    k payments.idempotency_keys;
    r payments.refunds;
    remaining bigint;
BEGIN
    SELECT * INTO p FROM payments.payments WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        outcome := 'not_found';
        RETURN;
    END IF;
    IF p_key IS NOT NULL THEN
        SELECT * INTO k FROM payments.idempotency_keys WHERE scope = 'refund' AND key = p_key;
        IF FOUND THEN
            outcome := CASE WHEN k.request_hash <> p_request_hash THEN 'key_reused' ELSE 'replay' END;
            status := k.response_status;
            body := k.response_body;
            RETURN;
        END IF;
    END IF;
    IF p.status <> 'succeeded' THEN
        outcome := 'not_refundable';
        body := payments.payment_json(p);
        RETURN;
    END IF;

    remaining := p.amount_cents - p.refunded_cents;
    IF p_amount_cents IS NULL AND remaining = 0 THEN
        outcome := 'nothing_left';
        body := payments.payment_json(p);
    ELSIF coalesce(p_amount_cents, remaining) > remaining THEN
        outcome := 'exceeds';
        body := jsonb_build_object('requested_cents', p_amount_cents, 'remaining_cents', remaining,
                                   'payment', payments.payment_json(p));
        RETURN;
    ELSE
        INSERT INTO payments.refunds (payment_id, amount_cents)
             VALUES (p.id, coalesce(p_amount_cents, remaining))
          RETURNING * INTO r;
        UPDATE payments.payments s
           SET refunded_cents = s.refunded_cents + r.amount_cents, updated_at = now()
         WHERE s.id = p.id
        RETURNING * INTO p;
        PERFORM payments.outbox_emit('payment.refunded',
                                     payments.event_data(p) || jsonb_build_object(
                                         'refund_id', r.id,
                                         'amount_cents', r.amount_cents,
                                         'refunded_cents_total', p.refunded_cents),
                                     p_traceparent);
        outcome := 'refunded';
        body := payments.payment_json(p) || jsonb_build_object('refund', jsonb_build_object(
                    'id', r.id,
                    'amount_cents', r.amount_cents,
                    'created_at', to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')));
    END IF;
    status := 200;
    IF p_key IS NOT NULL THEN
        INSERT INTO payments.idempotency_keys (scope, key, request_hash, payment_id, response_status, response_body,
                                               completed_at)
             VALUES ('refund', p_key, p_request_hash, p.id, status, body, now());
    END IF;
END
$$;

-- Fences order `p_order_id` off from any later charge: the order service
-- calls it when it gave up on a charge whose outcome it could not learn.
-- Outcomes:
--   voided       the order had no payment: a `voided` one (amount 0) now
--                takes its place, and every later charge is refused
--   in_progress  a charge is under way: its outcome is not known yet
--   succeeded    the order was charged (body: the payment)
--   settled      it was declined, failed or already voided: nothing to fence
-- The unique order_id decides a race with a charge: whichever inserts
-- first is the order's payment.
CREATE FUNCTION payments.void_charge(p_order_id text, OUT outcome text, OUT body jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    p payments.payments;
BEGIN
    INSERT INTO payments.payments (order_id, status, amount_cents)
         VALUES (p_order_id, 'voided', 0)
    ON CONFLICT (order_id) DO NOTHING
      RETURNING * INTO p;
    IF FOUND THEN
        outcome := 'voided';
    ELSE
        SELECT * INTO p FROM payments.payments WHERE order_id = p_order_id;
        outcome := CASE p.status WHEN 'processing' THEN 'in_progress'
                                 WHEN 'succeeded' THEN 'succeeded'
                                 ELSE 'settled' END;
    END IF;
    body := payments.payment_json(p);
END
$$;

-- Deletes up to `p_limit` answered keys older than `p_ttl_hours`. Returns
-- how many. A charge still processing keeps its key whatever its age.
CREATE FUNCTION payments.prune_idempotency_keys(p_ttl_hours integer, p_limit integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    deleted integer;
BEGIN
    DELETE FROM payments.idempotency_keys
     WHERE (scope, key) IN (SELECT k.scope, k.key FROM payments.idempotency_keys k
                             WHERE k.completed_at < now() - make_interval(hours => p_ttl_hours)
                             ORDER BY k.completed_at LIMIT p_limit);
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END
$$;
