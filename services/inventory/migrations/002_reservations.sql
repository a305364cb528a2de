-- Reservation workflow as functions: each call is one statement, so it runs
-- in one transaction and one round trip, and the locking order that keeps
-- concurrent reservations correct lives in one place.
--
-- Every function returns (outcome, body): `outcome` tells the service which
-- HTTP status to answer, `body` is the JSON document to send.

-- Gives the units of a held reservation back to stock and marks it
-- `new_status` ('released' or 'expired'). Returns the SKUs touched.
CREATE FUNCTION inventory.return_stock(p_id uuid, p_new_status text) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
    skus text[];
BEGIN
    -- Lock products in SKU order, the same order reserve() uses.
    PERFORM 1 FROM inventory.products p
        WHERE p.sku IN (SELECT i.sku FROM inventory.reservation_items i WHERE i.reservation_id = p_id)
        ORDER BY p.sku FOR UPDATE;
    UPDATE inventory.products p
       SET stock = p.stock + i.qty, reserved = p.reserved - i.qty, updated_at = now()
      FROM inventory.reservation_items i
     WHERE i.reservation_id = p_id AND p.sku = i.sku;
    UPDATE inventory.reservations SET status = p_new_status, updated_at = now() WHERE id = p_id;
    SELECT array_agg(i.sku ORDER BY i.sku) INTO skus FROM inventory.reservation_items i WHERE i.reservation_id = p_id;
    RETURN coalesce(skus, '{}');
END
$$;

-- Holds every item of `p_items` ([{sku, qty}], SKUs distinct) for order
-- `p_order_id`, or none of them.
-- Outcomes: held | existing | idempotency_conflict | unknown_sku | insufficient_stock
CREATE FUNCTION inventory.reserve(p_order_id text, p_items jsonb, p_ttl_seconds integer,
                                  OUT outcome text, OUT body jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    existing inventory.reservations;
    wanted record;
    missing text;
    short record;
    created inventory.reservations;
BEGIN
    -- Serialise attempts for the same order, so a retried request waits for
    -- the first one and then sees its reservation.
    PERFORM pg_advisory_xact_lock(hashtextextended('inventory.reserve:' || p_order_id, 0));

    SELECT * INTO existing FROM inventory.reservations WHERE order_id = p_order_id;
    IF FOUND THEN
        IF (SELECT coalesce(jsonb_agg(jsonb_build_object('sku', i.sku, 'qty', i.qty) ORDER BY i.sku), '[]')
              FROM inventory.reservation_items i WHERE i.reservation_id = existing.id)
           = (SELECT jsonb_agg(jsonb_build_object('sku', x.sku, 'qty', x.qty) ORDER BY x.sku)
              FROM jsonb_to_recordset(p_items) AS x(sku text, qty integer)) THEN
            outcome := 'existing';
        ELSE
            outcome := 'idempotency_conflict';
        END IF;
        body := inventory.reservation_json(existing);
        RETURN;
    END IF;

    SELECT x.sku INTO missing
      FROM jsonb_to_recordset(p_items) AS x(sku text, qty integer)
     WHERE NOT EXISTS (SELECT 1 FROM inventory.products p WHERE p.sku = x.sku)
     ORDER BY x.sku LIMIT 1;
    IF FOUND THEN
        outcome := 'unknown_sku';
        body := jsonb_build_object('sku', missing);
        RETURN;
    END IF;

    -- Lock the rows in SKU order (no deadlocks between concurrent reservations),
    -- then check every item before changing any.
    PERFORM 1 FROM inventory.products p
        WHERE p.sku IN (SELECT x.sku FROM jsonb_to_recordset(p_items) AS x(sku text, qty integer))
        ORDER BY p.sku FOR UPDATE;
    SELECT x.sku, x.qty, p.stock INTO short
      FROM jsonb_to_recordset(p_items) AS x(sku text, qty integer)
      JOIN inventory.products p ON p.sku = x.sku
     WHERE p.stock < x.qty
     ORDER BY x.sku LIMIT 1;
    IF FOUND THEN
        outcome := 'insufficient_stock';
        body := jsonb_build_object('sku', short.sku, 'requested', short.qty, 'available', short.stock);
        RETURN;
    END IF;

    UPDATE inventory.products p
       SET stock = p.stock - x.qty, reserved = p.reserved + x.qty, updated_at = now()
      FROM jsonb_to_recordset(p_items) AS x(sku text, qty integer)
     WHERE p.sku = x.sku;
    INSERT INTO inventory.reservations (order_id, status, expires_at)
         VALUES (p_order_id, 'held', now() + make_interval(secs => p_ttl_seconds))
      RETURNING * INTO created;
    INSERT INTO inventory.reservation_items (reservation_id, sku, qty)
         SELECT created.id, x.sku, x.qty FROM jsonb_to_recordset(p_items) AS x(sku text, qty integer);
    outcome := 'held';
    body := inventory.reservation_json(created);
END
$$;

-- Commits a held reservation: its units leave `reserved` for good.
-- Outcomes: committed | already_committed | not_found | expired | released
CREATE FUNCTION inventory.commit_reservation(p_id uuid, OUT outcome text, OUT body jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    r inventory.reservations;
BEGIN
    SELECT * INTO r FROM inventory.reservations WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        outcome := 'not_found';
        RETURN;
    END IF;
    IF r.status = 'held' AND r.expires_at <= now() THEN
        PERFORM inventory.return_stock(r.id, 'expired');
        r.status := 'expired';
    END IF;
    IF r.status = 'held' THEN
        PERFORM 1 FROM inventory.products p
            WHERE p.sku IN (SELECT i.sku FROM inventory.reservation_items i WHERE i.reservation_id = r.id)
            ORDER BY p.sku FOR UPDATE;
        UPDATE inventory.products p
           SET reserved = p.reserved - i.qty, updated_at = now()
          FROM inventory.reservation_items i
         WHERE i.reservation_id = r.id AND p.sku = i.sku;
        UPDATE inventory.reservations SET status = 'committed', updated_at = now() WHERE id = r.id
        RETURNING * INTO r;
        outcome := 'committed';
    ELSIF r.status = 'committed' THEN
        outcome := 'already_committed';
    ELSE
        SELECT * INTO r FROM inventory.reservations WHERE id = p_id;
        outcome := r.status; -- expired or released: too late to commit
    END IF;
    body := inventory.reservation_json(r);
END
$$;

-- Releases a held reservation: its units go back to stock.
-- Outcomes: released | already_released | not_found | committed
CREATE FUNCTION inventory.release_reservation(p_id uuid, OUT outcome text, OUT body jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    r inventory.reservations;
BEGIN
    SELECT * INTO r FROM inventory.reservations WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        outcome := 'not_found';
        RETURN;
    END IF;
    IF r.status = 'held' THEN
        PERFORM inventory.return_stock(r.id, 'released');
        outcome := 'released';
    ELSIF r.status IN ('released', 'expired') THEN
        outcome := 'already_released';
    ELSE
        outcome := 'committed'; -- the goods are gone: a refund is another workflow
    END IF;
    SELECT * INTO r FROM inventory.reservations WHERE id = p_id;
    body := inventory.reservation_json(r);
END
$$;

-- Expires up to p_limit held reservations whose time is up. Returns how many
-- and the SKUs whose stock came back (for cache invalidation).
CREATE FUNCTION inventory.expire_reservations(p_limit integer, OUT expired integer, OUT skus text[])
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    expired := 0;
    skus := '{}';
    FOR r IN SELECT id FROM inventory.reservations
              WHERE status = 'held' AND expires_at <= now()
              ORDER BY expires_at LIMIT p_limit
              FOR UPDATE SKIP LOCKED
    LOOP
        skus := skus || inventory.return_stock(r.id, 'expired');
        expired := expired + 1;
    END LOOP;
END
$$;
