-- Orders schema: the order, its saga's persisted step, its history, and
-- the outbox its events leave through.
--
-- An order's `status` is what the customer sees (PENDING, CONFIRMED,
-- FAILED, CANCELLED); its `step` is what the saga has to do next
-- (services/order/saga.c has the whole table). Every change of either is
-- one statement (orders.saga_move, 002) that also writes the history row
-- and, when the status changes, the event: so a process killed at any
-- moment leaves an order whose next step is on disk, and recovery
-- (services/order/recovery.c) drives it on from there.

CREATE TABLE orders.orders (
    id               uuid PRIMARY KEY,
    user_id          text NOT NULL CHECK (length(user_id) BETWEEN 1 AND 64),
    idempotency_key  text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 128),
    request_hash     text NOT NULL,         -- HMAC-SHA256 (keyed) of the canonical request: a reused key is told apart
    status           text NOT NULL CHECK (status IN ('PENDING', 'CONFIRMED', 'FAILED', 'CANCELLED')),
    step             text NOT NULL CHECK (step IN ('reserve', 'charge', 'void', 'commit', 'refund', 'release',
                                                   'cancel_refund', 'cancel_restock', 'done')),
    reason           text,                  -- why it FAILED: insufficient_stock, payment_declined, ...
    items            jsonb NOT NULL,        -- [{sku, name, qty, unit_price_cents}], priced by inventory
    total_cents      bigint NOT NULL CHECK (total_cents >= 0),
    currency         char(3) NOT NULL,
    payment_method   text NOT NULL,
    payment_card     text,                  -- a lab test card, kept only while the saga may charge it
    card_last4       text,
    reservation_id   uuid,                  -- inventory's hold, once it answered
    payment_id       uuid,                  -- the payment service's charge, once it answered
    deadline         timestamptz NOT NULL,  -- created_at + ORDER_PENDING_TIMEOUT_S: PENDING ends by then
    lease_until      timestamptz NOT NULL,  -- the saga driving it holds it until then; recovery after
    traceparent      text,                  -- the trace of the request that placed it
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, idempotency_key)
);

-- A customer's orders, newest first.
CREATE INDEX orders_user_created_idx ON orders.orders (user_id, created_at DESC, id);
-- The admin's listing, optionally by status.
CREATE INDEX orders_created_idx ON orders.orders (created_at DESC, id);
CREATE INDEX orders_status_created_idx ON orders.orders (status, created_at DESC, id);
-- Recovery only ever looks at sagas that still have a step to take.
CREATE INDEX orders_unfinished_lease_idx ON orders.orders (lease_until) WHERE step <> 'done';

CREATE TABLE orders.order_history (
    order_id uuid NOT NULL REFERENCES orders.orders (id) ON DELETE CASCADE,
    seq      bigint GENERATED ALWAYS AS IDENTITY,
    status   text NOT NULL,
    step     text NOT NULL,
    reason   text,
    at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (order_id, seq)
);

SELECT public.oms_install_outbox('orders');
