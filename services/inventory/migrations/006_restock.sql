-- Cancelling a confirmed order puts its goods back on the shelf. The
-- reservation was committed (its units left `reserved` for good), so
-- release cannot undo it; restocking adds the units back to `stock` and
-- marks the reservation `restocked`, once.

ALTER TABLE inventory.reservations DROP CONSTRAINT reservations_status_check;
ALTER TABLE inventory.reservations
    ADD CONSTRAINT reservations_status_check
    CHECK (status IN ('held', 'committed', 'released', 'expired', 'restocked'));

-- Returns a committed reservation's units to stock.
-- Outcomes: restocked | already_restocked | not_found | held | released | expired
CREATE FUNCTION inventory.restock_reservation(p_id uuid, OUT outcome text, OUT body jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    r inventory.reservations;
    skus text[];
    qtys integer[];
BEGIN
    SELECT * INTO r FROM inventory.reservations WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        outcome := 'not_found';
        RETURN;
    END IF;
    IF r.status = 'committed' THEN
        SELECT array_agg(i.sku ORDER BY i.sku), array_agg(i.qty ORDER BY i.sku) INTO skus, qtys
          FROM inventory.reservation_items i WHERE i.reservation_id = r.id;
        -- the same locking order as every other stock change (002)
        PERFORM 1 FROM inventory.products p WHERE p.sku = ANY (skus) ORDER BY p.sku FOR NO KEY UPDATE;
        UPDATE inventory.products p SET stock = p.stock + x.qty, updated_at = now()
          FROM unnest(skus, qtys) AS x(sku, qty)
         WHERE p.sku = x.sku;
        UPDATE inventory.reservations SET status = 'restocked', updated_at = now() WHERE id = r.id
        RETURNING * INTO r;
        outcome := 'restocked';
    ELSIF r.status = 'restocked' THEN
        outcome := 'already_restocked';
    ELSE
        outcome := r.status; -- never committed: nothing left the shelf
    END IF;
    body := inventory.reservation_json(r);
END
$$;
