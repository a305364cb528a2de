-- Stock events: inventory.low_stock and inventory.out_of_stock, written to
-- the outbox (infrastructure/postgres/init/002_outbox.sql) in the same
-- transaction as the change that causes them, whatever that change is (a
-- reservation, its expiry, an admin's stock adjustment or threshold
-- change), because a trigger on the product row writes them.
SELECT public.oms_install_outbox('inventory');

-- A product is "ok" (stock above its threshold), "low" (1..threshold) or
-- "out" (0). An event is written once per crossing into a worse state:
-- ok -> low writes low_stock; ok -> out and low -> out write out_of_stock
-- (the stronger news only, when one change goes straight to zero). Coming
-- back above the threshold re-arms it.
CREATE FUNCTION inventory.stock_state(p_stock integer, p_threshold integer) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_stock = 0 THEN 2 WHEN p_stock <= p_threshold THEN 1 ELSE 0 END
$$;

CREATE FUNCTION inventory.emit_stock_event() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM inventory.outbox_emit(
        CASE WHEN NEW.stock = 0 THEN 'inventory.out_of_stock' ELSE 'inventory.low_stock' END,
        jsonb_build_object('sku', NEW.sku, 'name', NEW.name, 'stock', NEW.stock,
                           'reserved', NEW.reserved, 'threshold', NEW.low_stock_threshold));
    RETURN NULL;
END
$$;

-- The WHEN clause keeps the common case (stock stays in its state) free of
-- any function call, and the update stays HOT (001's fillfactor note).
CREATE TRIGGER products_stock_events
    AFTER UPDATE OF stock, low_stock_threshold ON inventory.products
    FOR EACH ROW
    WHEN (inventory.stock_state(NEW.stock, NEW.low_stock_threshold)
          > inventory.stock_state(OLD.stock, OLD.low_stock_threshold))
    EXECUTE FUNCTION inventory.emit_stock_event();
