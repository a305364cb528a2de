-- Reservation workflow as functions: each call is one statement, so it runs
-- in one transaction and one round trip, and the locking order that keeps
-- concurrent reservations correct lives in one place.
--
-- Locking: product rows are always locked in SKU order, FOR NO KEY UPDATE
-- (which, unlike FOR UPDATE, does not block the foreign-key checks of
-- reservation_items inserts). Two reservations that share products can then
-- wait for each other but never deadlock.
--
-- Every function returns (outcome, body): `outcome` tells the service which
-- HTTP status to answer, `body` is the JSON document to send.

-- Takes a reservation's units out of `reserved`: back into `stock` (release,
-- expiry) or gone for good (commit). Returns the SKUs touched.
CREATE FUNCTION inventory.settle_items(p_id uuid, p_back_to_stock boolean) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
    skus text[];
    qtys integer[];
BEGIN
    SELECT array_agg(i.sku ORDER BY i.sku), array_agg(i.qty ORDER BY i.sku) INTO skus, qtys
      FROM inventory.reservation_items i WHERE i.reservation_id = p_id;
    PERFORM 1 FROM inventory.products p WHERE p.sku = ANY (skus) ORDER BY p.sku FOR NO KEY UPDATE;
    UPDATE inventory.products p
       SET stock = p.stock + CASE WHEN p_back_to_stock THEN x.qty ELSE 0 END,
           reserved = p.reserved - x.qty,
           updated_at = now()
      FROM unnest(skus, qtys) AS x(sku, qty)
     WHERE p.sku = x.sku;
    RETURN coalesce(skus, '{}');
END
$$;

-- Gives the units of a held reservation back to stock and marks it
-- `new_status` ('released' or 'expired'). Returns the SKUs touched.
CREATE FUNCTION inventory.return_stock(p_id uuid, p_new_status text) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
    skus text[];
BEGIN
    skus := inventory.settle_items(p_id, true);
    UPDATE inventory.reservations SET status = p_new_status, updated_at = now() WHERE id = p_id;
    RETURN skus;
END
$$;

-- Holds every item of `p_items` ([{sku, qty}], SKUs distinct) for order
-- `p_order_id`, or none of them.
-- Outcomes: held | existing | idempotency_conflict | unknown_sku | insufficient_stock
--
-- Two requests for the same new order racing each other both get past the
-- "existing" check; the loser's INSERT then fails on the unique order_id
-- (SQLSTATE 23505) and its whole transaction, stock included, rolls back.
-- The service retries such a request once and gets 'existing'.
CREATE FUNCTION inventory.reserve(p_order_id text, p_items jsonb, p_ttl_seconds integer,
                                  OUT outcome text, OUT body jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    skus text[];
    qtys integer[];
    existing inventory.reservations;
    created inventory.reservations;
    product record;
    n integer := 0;
BEGIN
    SELECT array_agg(x.sku ORDER BY x.sku), array_agg(x.qty ORDER BY x.sku) INTO skus, qtys
      FROM jsonb_to_recordset(p_items) AS x(sku text, qty integer);

    SELECT * INTO existing FROM inventory.reservations WHERE order_id = p_order_id;
    IF FOUND THEN
        SELECT CASE WHEN array_agg(i.sku ORDER BY i.sku) = skus AND array_agg(i.qty ORDER BY i.sku) = qtys
                    THEN 'existing' ELSE 'idempotency_conflict' END INTO outcome
          FROM inventory.reservation_items i WHERE i.reservation_id = existing.id;
        body := inventory.reservation_json(existing);
        RETURN;
    END IF;

    -- Lock, then check every item before changing any.
    FOR product IN SELECT p.sku, p.stock FROM inventory.products p
                    WHERE p.sku = ANY (skus) ORDER BY p.sku FOR NO KEY UPDATE
    LOOP
        n := n + 1;
        IF product.sku <> skus[n] THEN -- skus[n] has no row: it sorts before this one
            outcome := 'unknown_sku';
            body := jsonb_build_object('sku', skus[n]);
            RETURN;
        END IF;
        IF product.stock < qtys[n] THEN
            outcome := 'insufficient_stock';
            body := jsonb_build_object('sku', product.sku, 'requested', qtys[n], 'available', product.stock);
            RETURN;
        END IF;
    END LOOP;
    IF n < cardinality(skus) THEN
        outcome := 'unknown_sku';
        body := jsonb_build_object('sku', skus[n + 1]);
        RETURN;
    END IF;

    UPDATE inventory.products p
       SET stock = p.stock - x.qty, reserved = p.reserved + x.qty, updated_at = now()
      FROM unnest(skus, qtys) AS x(sku, qty)
     WHERE p.sku = x.sku;
    INSERT INTO inventory.reservations (order_id, status, expires_at)
         VALUES (p_order_id, 'held', now() + make_interval(secs => p_ttl_seconds))
      RETURNING * INTO created;
    INSERT INTO inventory.reservation_items (reservation_id, sku, qty)
         SELECT created.id, x.sku, x.qty FROM unnest(skus, qtys) AS x(sku, qty);
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
        -- too late: expire it now rather than wait for the sweeper
        PERFORM inventory.return_stock(r.id, 'expired');
        SELECT * INTO r FROM inventory.reservations WHERE id = p_id;
    END IF;
    IF r.status = 'held' THEN
        PERFORM inventory.settle_items(r.id, false);
        UPDATE inventory.reservations SET status = 'committed', updated_at = now() WHERE id = r.id
        RETURNING * INTO r;
        outcome := 'committed';
    ELSIF r.status = 'committed' THEN
        outcome := 'already_committed';
    ELSE
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
        r.status := 'released';
        outcome := 'released';
    ELSIF r.status IN ('released', 'expired') THEN
        outcome := 'already_released';
    ELSE
        outcome := 'committed'; -- the goods are gone: a refund is another workflow
    END IF;
    body := inventory.reservation_json(r);
END
$$;

-- Expires up to p_limit held reservations whose time is up. Returns how many
-- and the SKUs whose stock came back (for cache invalidation).
CREATE FUNCTION inventory.expire_reservations(p_limit integer, OUT expired integer, OUT skus text[])
LANGUAGE plpgsql AS $$
DECLARE
    ids uuid[];
    id uuid;
BEGIN
    ids := ARRAY(SELECT r.id FROM inventory.reservations r
                  WHERE r.status = 'held' AND r.expires_at <= now()
                  ORDER BY r.expires_at LIMIT p_limit
                  FOR UPDATE SKIP LOCKED);
    -- Lock every product of the batch in SKU order up front, as reserve()
    -- does, so a sweep and a reservation never lock in opposite orders.
    PERFORM 1 FROM inventory.products p
      WHERE p.sku IN (SELECT i.sku FROM inventory.reservation_items i WHERE i.reservation_id = ANY (ids))
      ORDER BY p.sku FOR NO KEY UPDATE;
    FOREACH id IN ARRAY ids LOOP
        PERFORM inventory.return_stock(id, 'expired');
    END LOOP;
    expired := cardinality(ids);
    skus := ARRAY(SELECT DISTINCT i.sku FROM inventory.reservation_items i WHERE i.reservation_id = ANY (ids));
END
$$;
