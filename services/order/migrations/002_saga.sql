-- The saga's persistence: each function is one statement, so one
-- transaction and one round trip, and every state change writes its
-- history row and (when the status changes) its event atomically.

CREATE FUNCTION orders.iso(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

-- The order as every API answer shows it; with its history for one order.
CREATE FUNCTION orders.order_json(o orders.orders, p_history boolean) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    doc jsonb;
BEGIN
    doc := jsonb_build_object(
        'id', o.id,
        'user_id', o.user_id,
        'status', o.status,
        'step', o.step,
        'reason', o.reason,
        'items', o.items,
        'total_cents', o.total_cents,
        'currency', o.currency,
        'payment', jsonb_build_object('method', o.payment_method, 'card_last4', o.card_last4),
        'reservation_id', o.reservation_id,
        'payment_id', o.payment_id,
        'created_at', orders.iso(o.created_at),
        'updated_at', orders.iso(o.updated_at));
    IF p_history THEN
        doc := doc || jsonb_build_object('history',
            (SELECT coalesce(jsonb_agg(jsonb_build_object('status', h.status, 'step', h.step, 'reason', h.reason,
                                                          'at', orders.iso(h.at)) ORDER BY h.seq), '[]')
               FROM orders.order_history h WHERE h.order_id = o.id));
    END IF;
    RETURN doc;
END
$$;

-- What the saga needs to take its next step (never sent to a client: it
-- holds the card).
CREATE FUNCTION orders.saga_json(o orders.orders) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', o.id, 'user_id', o.user_id, 'status', o.status, 'step', o.step, 'reason', o.reason,
        'items', o.items, 'total_cents', o.total_cents, 'currency', o.currency,
        'method', o.payment_method, 'card', o.payment_card,
        'reservation_id', o.reservation_id, 'payment_id', o.payment_id,
        'deadline_ms', (extract(epoch FROM o.deadline) * 1000)::bigint,
        'traceparent', o.traceparent)
$$;

-- The `data` of an order's events.
CREATE FUNCTION orders.event_data(o orders.orders) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'order_id', o.id, 'user_id', o.user_id, 'status', o.status, 'reason', o.reason,
        'items', o.items, 'total_cents', o.total_cents, 'currency', o.currency,
        'payment_id', o.payment_id, 'reservation_id', o.reservation_id)
$$;

-- Places an order (PENDING, next step `reserve`) and its order.created
-- event, once per (user, Idempotency-Key).
-- Outcomes: created | existing (the same request again) | key_reused;
-- `saga` is the new order's saga state (created only).
--
-- Two requests with the same key racing each other: the second INSERT
-- waits for the first's transaction, then does nothing, and the SELECT
-- (a new snapshot) finds the first's order.
CREATE FUNCTION orders.create_order(p_id uuid, p_user_id text, p_key text, p_hash text, p_items jsonb,
                                    p_total bigint, p_currency text, p_method text, p_card text,
                                    p_card_last4 text, p_pending_seconds integer, p_lease_seconds integer,
                                    p_traceparent text, OUT outcome text, OUT body jsonb, OUT saga jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    o orders.orders;
BEGIN
    INSERT INTO orders.orders (id, user_id, idempotency_key, request_hash, status, step, items, total_cents,
                               currency, payment_method, payment_card, card_last4, deadline, lease_until,
                               traceparent)
    VALUES (p_id, p_user_id, p_key, p_hash, 'PENDING', 'reserve', p_items, p_total, p_currency, p_method,
            p_card, p_card_last4, now() + make_interval(secs => p_pending_seconds),
            now() + make_interval(secs => p_lease_seconds), p_traceparent)
    ON CONFLICT (user_id, idempotency_key) DO NOTHING
    RETURNING * INTO o;
    IF FOUND THEN
        INSERT INTO orders.order_history (order_id, status, step) VALUES (o.id, o.status, o.step);
        PERFORM orders.outbox_emit('order.created', orders.event_data(o), p_traceparent);
        outcome := 'created';
        saga := orders.saga_json(o);
    ELSE
        SELECT * INTO o FROM orders.orders WHERE user_id = p_user_id AND idempotency_key = p_key;
        outcome := CASE WHEN o.request_hash = p_hash THEN 'existing' ELSE 'key_reused' END;
    END IF;
    body := orders.order_json(o, true);
END
$$;

-- Moves a saga from step p_from_step to (p_status, p_step), recording why
-- and what the peers answered (NULL keeps a column as it is), and renews
-- the lease. A status change writes its event (order.confirmed,
-- order.failed, order.cancelled) and returns the order's document;
-- leaving PENDING forgets the card.
--
-- Compare-and-set on the step: when two drivers race (a live saga and
-- recovery after its lease ran out), the second finds the step moved and
-- gets moved = false; every peer call is idempotent, so nothing was done
-- twice.
CREATE FUNCTION orders.saga_move(p_id uuid, p_from_step text, p_status text, p_step text, p_reason text,
                                 p_reservation_id uuid, p_payment_id uuid, p_lease_seconds integer,
                                 p_traceparent text, OUT moved boolean, OUT body jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    before orders.orders;
    o orders.orders;
BEGIN
    SELECT * INTO before FROM orders.orders WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        moved := false;
        RETURN;
    END IF;
    IF before.step <> p_from_step THEN
        moved := false;
        body := orders.order_json(before, true);
        RETURN;
    END IF;
    UPDATE orders.orders
       SET status = p_status, step = p_step, reason = coalesce(p_reason, reason),
           reservation_id = coalesce(p_reservation_id, reservation_id),
           payment_id = coalesce(p_payment_id, payment_id),
           payment_card = CASE WHEN p_status = 'PENDING' THEN payment_card END,
           lease_until = now() + make_interval(secs => p_lease_seconds),
           updated_at = now()
     WHERE id = p_id
    RETURNING * INTO o;
    INSERT INTO orders.order_history (order_id, status, step, reason) VALUES (o.id, o.status, o.step, p_reason);
    IF o.status <> before.status THEN
        PERFORM orders.outbox_emit('order.' || lower(o.status), orders.event_data(o), p_traceparent);
    END IF;
    moved := true;
    -- the document only matters to whoever waits for the order to settle
    body := CASE WHEN o.status <> before.status THEN orders.order_json(o, true) END;
END
$$;

-- Starts cancelling a CONFIRMED order (next step cancel_refund).
-- p_user_id NULL: an admin, who may cancel anyone's order.
-- Outcomes: started | in_progress (body: the saga, to drive) |
--           cancelled (already) | not_cancellable | not_found (body: the order)
CREATE FUNCTION orders.begin_cancel(p_id uuid, p_user_id text, p_lease_seconds integer,
                                    OUT outcome text, OUT body jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    o orders.orders;
BEGIN
    SELECT * INTO o FROM orders.orders WHERE id = p_id FOR UPDATE;
    IF NOT FOUND OR (p_user_id IS NOT NULL AND o.user_id <> p_user_id) THEN
        outcome := 'not_found';
        RETURN;
    END IF;
    IF o.status = 'CONFIRMED' AND o.step = 'done' THEN
        UPDATE orders.orders
           SET step = 'cancel_refund', lease_until = now() + make_interval(secs => p_lease_seconds),
               updated_at = now()
         WHERE id = p_id
        RETURNING * INTO o;
        INSERT INTO orders.order_history (order_id, status, step) VALUES (o.id, o.status, o.step);
        outcome := 'started';
        body := orders.saga_json(o);
    ELSIF o.status = 'CONFIRMED' THEN
        outcome := 'in_progress';
        body := orders.saga_json(o);
    ELSIF o.status = 'CANCELLED' THEN
        outcome := 'cancelled';
        body := orders.order_json(o, true);
    ELSE
        outcome := 'not_cancellable';
        body := orders.order_json(o, true);
    END IF;
END
$$;
