-- The transactional outbox, the same for every service that publishes
-- events (services/common/outbox.h is the relay that reads it).
--
-- A service's migration calls, as its own role:
--     SELECT public.oms_install_outbox('inventory');
-- which creates in that schema (or brings up to date, when some exist):
--   outbox          one row per event, written in the same transaction as
--                   the change it describes; published_at is set once
--                   RabbitMQ has confirmed it
--   outbox_relay    one row: which relay process holds the lease, so that
--                   one relay at a time publishes (and order is kept)
--   outbox_emit()   writes an event row: outbox_emit('inventory.low_stock',
--                   jsonb_build_object('sku', ...))
--   a trigger       NOTIFY <schema>_outbox when rows are inserted, so the
--                   relay wakes at COMMIT instead of at its next sweep
--
-- To look at it:
--     SELECT seq, routing_key, created_at, published_at FROM users.outbox ORDER BY seq DESC LIMIT 10;
--     SELECT count(*) FROM users.outbox WHERE published_at IS NULL;   -- the backlog
--     SELECT * FROM users.outbox_relay;                                -- who relays
--
-- Run by scripts/migrate.sh as the superuser; re-running it is harmless.

CREATE OR REPLACE FUNCTION public.oms_install_outbox(p_schema text) RETURNS void
LANGUAGE plpgsql AS $install$
BEGIN
    -- The event: `payload` is the whole message body DESIGN.md defines,
    -- {"id","type","occurred_at","data"}; `traceparent` the W3C trace
    -- context of the transaction that wrote it, sent as a message header.
    EXECUTE format($sql$
        CREATE TABLE IF NOT EXISTS %I.outbox (
            id           uuid PRIMARY KEY,
            routing_key  text NOT NULL,
            payload      jsonb NOT NULL,
            traceparent  text,
            created_at   timestamptz NOT NULL DEFAULT now(),
            published_at timestamptz
        )$sql$, p_schema);
    -- `seq` is the publishing order. A sequence number is taken when the
    -- row is inserted, while the transaction holds its aggregate's lock (the
    -- order's, the product's row), so for one aggregate seq follows commit
    -- order; created_at (the transaction's start) would not.
    EXECUTE format('ALTER TABLE %I.outbox ADD COLUMN IF NOT EXISTS seq bigint GENERATED ALWAYS AS IDENTITY',
                   p_schema);
    EXECUTE format('DROP INDEX IF EXISTS %I.outbox_unpublished_idx', p_schema);
    -- The relay's claim reads pending rows in seq order: this index holds
    -- only those, however many published rows pile up.
    EXECUTE format('CREATE INDEX IF NOT EXISTS outbox_pending_idx ON %I.outbox (seq) WHERE published_at IS NULL',
                   p_schema);
    -- Retention: the relay deletes published rows older than
    -- OUTBOX_RETENTION_HOURS.
    EXECUTE format('CREATE INDEX IF NOT EXISTS outbox_published_idx ON %I.outbox (published_at)'
                   ' WHERE published_at IS NOT NULL', p_schema);

    EXECUTE format($sql$
        CREATE TABLE IF NOT EXISTS %I.outbox_relay (
            singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
            holder      text NOT NULL,        -- host:pid:tag of the relay process
            lease_until timestamptz NOT NULL  -- renewed by every claim; another may take over after
        )$sql$, p_schema);

    EXECUTE format($sql$
        CREATE OR REPLACE FUNCTION %1$I.outbox_emit(p_type text, p_data jsonb, p_traceparent text DEFAULT NULL)
        RETURNS uuid LANGUAGE plpgsql AS $fn$
        DECLARE
            event_id uuid := gen_random_uuid();
        BEGIN
            INSERT INTO %1$I.outbox (id, routing_key, payload, traceparent)
            VALUES (event_id, p_type,
                    jsonb_build_object(
                        'id', event_id,
                        'type', p_type,
                        'occurred_at', to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                        'data', p_data),
                    coalesce(p_traceparent, nullif(current_setting('oms.traceparent', true), '')));
            RETURN event_id;
        END
        $fn$$sql$, p_schema);

    -- One NOTIFY per inserting statement; PostgreSQL delivers it at COMMIT
    -- (never for a rolled-back transaction) and folds identical ones.
    EXECUTE format($sql$
        CREATE OR REPLACE FUNCTION %1$I.outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $fn$
        BEGIN
            PERFORM pg_notify(%2$L, '');
            RETURN NULL;
        END
        $fn$$sql$, p_schema, p_schema || '_outbox');
    EXECUTE format('DROP TRIGGER IF EXISTS outbox_notify ON %I.outbox', p_schema);
    EXECUTE format('CREATE TRIGGER outbox_notify AFTER INSERT ON %1$I.outbox'
                   ' FOR EACH STATEMENT EXECUTE FUNCTION %1$I.outbox_notify()', p_schema);
END
$install$;
