-- Payment schema: one payment per order, its refunds, and the idempotency
-- keys that make a retried request return the first answer instead of
-- charging again.
--
-- A payment's life:
--
--     processing --> succeeded --> (refunds, up to the amount charged)
--                \-> declined     the processor said no (a reason says why)
--                \-> failed       the processor did not answer in time
--     voided                      no charge, ever: the order service fenced
--                                 the order off (amount 0)
--
-- The rules that keep money right are CHECK and UNIQUE constraints, so they
-- hold whatever the application does: one payment per order_id, never more
-- refunded than charged, refunds only of a succeeded charge. No card number
-- is stored: only its last four digits.

CREATE TABLE payments.payments (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id       text NOT NULL CHECK (order_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    status         text NOT NULL CHECK (status IN ('processing', 'succeeded', 'declined', 'failed', 'voided')),
    amount_cents   bigint NOT NULL CHECK (amount_cents BETWEEN 0 AND 100000000),
    refunded_cents bigint NOT NULL DEFAULT 0 CHECK (refunded_cents >= 0),
    currency       char(3) CHECK (currency ~ '^[A-Z]{3}$'),
    method         text CHECK (method IN ('card', 'wallet')),
    card_last4     char(4) CHECK (card_last4 ~ '^[0-9]{4}$'),
    decline_reason text CHECK (decline_reason IN ('insufficient_funds', 'amount_limit_exceeded', 'card_declined',
                                                  'processor_timeout')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),

    -- One charge per order: a second one, under whatever key, is refused.
    CONSTRAINT payments_one_per_order UNIQUE (order_id),
    CONSTRAINT payments_refund_within_charge CHECK (refunded_cents <= amount_cents),
    CONSTRAINT payments_refund_only_succeeded CHECK (refunded_cents = 0 OR status = 'succeeded'),
    -- A charge has its terms; a void has none.
    CONSTRAINT payments_charge_terms CHECK (status = 'voided' OR
                                            (amount_cents > 0 AND currency IS NOT NULL AND method IS NOT NULL)),
    CONSTRAINT payments_void_terms CHECK (status <> 'voided' OR
                                          (amount_cents = 0 AND currency IS NULL AND method IS NULL
                                           AND card_last4 IS NULL)),
    CONSTRAINT payments_card_last4 CHECK (method IS NULL OR (method = 'card') = (card_last4 IS NOT NULL)),
    CONSTRAINT payments_reason CHECK ((status IN ('declined', 'failed')) = (decline_reason IS NOT NULL))
);

-- The recovery chore looks only at charges still under way.
CREATE INDEX payments_processing_idx ON payments.payments (created_at) WHERE status = 'processing';

CREATE TABLE payments.refunds (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    payment_id   uuid NOT NULL REFERENCES payments.payments (id),
    amount_cents bigint NOT NULL CHECK (amount_cents > 0),
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX refunds_payment_idx ON payments.refunds (payment_id);

-- An idempotency key: which request first came with it (a keyed hash of
-- its canonical form, so a card number cannot be read back from it) and
-- the first final answer it got, status and body, which every replay gets
-- again. A charge's key is written when the charge begins (response NULL:
-- the request is still processing) and answered when it ends; a refund's
-- key is written with its answer. A request that was refused (the order
-- already charged, a refund over what remains) leaves no key: it changed
-- nothing, so trying again is harmless.
CREATE TABLE payments.idempotency_keys (
    scope           text NOT NULL CHECK (scope IN ('charge', 'refund')),
    key             text NOT NULL CHECK (key ~ '^[ -~]{1,128}$'),
    request_hash    text NOT NULL CHECK (request_hash ~ '^[0-9a-f]{64}$'),
    payment_id      uuid REFERENCES payments.payments (id),
    response_status integer CHECK (response_status BETWEEN 200 AND 599),
    response_body   jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    PRIMARY KEY (scope, key),
    CONSTRAINT idempotency_keys_answer CHECK ((response_status IS NULL) = (response_body IS NULL)
                                              AND (response_status IS NULL) = (completed_at IS NULL))
);

-- A charge's key by its payment (finishing, recovering); the retention
-- chore by age.
CREATE INDEX idempotency_keys_payment_idx ON payments.idempotency_keys (payment_id);
CREATE INDEX idempotency_keys_completed_idx ON payments.idempotency_keys (completed_at)
    WHERE completed_at IS NOT NULL;

-- The JSON shape of a payment in every answer and stored reply.
-- decline_reason appears only when there is one.
CREATE FUNCTION payments.payment_json(p payments.payments) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN jsonb_build_object(
        'id', p.id,
        'order_id', p.order_id,
        'amount_cents', p.amount_cents,
        'currency', p.currency,
        'method', p.method,
        'card_last4', p.card_last4,
        'status', p.status,
        'refunded_cents', p.refunded_cents,
        'created_at', to_char(p.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'updated_at', to_char(p.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
        || CASE WHEN p.decline_reason IS NULL THEN '{}'::jsonb
                ELSE jsonb_build_object('decline_reason', p.decline_reason) END;
END
$$;

-- The events: payment.succeeded, payment.failed, payment.refunded.
SELECT public.oms_install_outbox('payments');
