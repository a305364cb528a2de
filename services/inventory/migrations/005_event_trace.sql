-- Stock events carry the trace of the request that caused them. The
-- trigger that writes them (004) cannot see the request, so a writing
-- statement first stores its traceparent in the transaction's setting
-- oms.traceparent, which outbox_emit() reads
-- (infrastructure/postgres/init/002_outbox.sql). Only two writes can make
-- stock worse: a reservation (this overload takes the traceparent as its
-- last parameter, then does what the old one does) and an admin's product
-- update (which sets it in its own statement: services/inventory/queries.c).
-- Commits, releases and expiries only give stock back or settle it.

CREATE FUNCTION inventory.reserve(p_order_id text, p_items jsonb, p_ttl_seconds integer, p_traceparent text,
                                  OUT outcome text, OUT body jsonb)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('oms.traceparent', coalesce(p_traceparent, ''), true);
    SELECT r.outcome, r.body INTO outcome, body FROM inventory.reserve(p_order_id, p_items, p_ttl_seconds) r;
END
$$;
