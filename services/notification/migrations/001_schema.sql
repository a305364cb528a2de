-- The notification service's tables (schema `notifications`).
--
-- An event is taken in once: `events` is the dedupe record, keyed by the
-- event id (the AMQP message_id), written in the same transaction as what
-- the event produces - its in-app notifications and one `deliveries` row
-- per email or webhook message still to send. A redelivered or duplicate
-- event finds its row and adds nothing.
--
-- Sending is at least once per delivery row, and a row is sent by one
-- worker at a time: whoever sends it first claims it (claimed_until, a
-- lease, which is also the claim's token); on success it is marked sent,
-- on failure the claim is released for the event's next attempt - by
-- whoever still holds that claim, and nobody else. A claim whose holder
-- died (the process was killed mid-send) lapses, and the reclaim sweep
-- (or the event's redelivery) sends the row then. An event is done only
-- when none of its rows is unsent: a copy of it that finds rows claimed by
-- someone else is not done, and tries again later.

CREATE TABLE notifications.events (
    id          text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 200), -- the event id, or alert:<digest>
    type        text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_received_idx ON notifications.events (received_at);

CREATE TABLE notifications.deliveries (
    event_id      text NOT NULL REFERENCES notifications.events (id) ON DELETE CASCADE,
    channel       text NOT NULL CHECK (channel IN ('email', 'webhook')),
    recipient     text NOT NULL, -- an email address; "webhook" for the webhook
    subject       text NOT NULL,
    body          text NOT NULL,
    attempts      integer NOT NULL DEFAULT 0,
    last_error    text,
    claimed_until timestamptz, -- being sent until then; NULL: free
    sent_at       timestamptz,
    PRIMARY KEY (event_id, channel, recipient)
);
-- What the reclaim sweep looks for: claims that lapsed, never sent.
CREATE INDEX deliveries_unsent_idx ON notifications.deliveries (claimed_until) WHERE sent_at IS NULL;

-- The in-app inbox: a customer's own notifications (user_id), and the
-- admins' (audience 'admin', shared by every admin).
CREATE TABLE notifications.inbox (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    event_id   text NOT NULL REFERENCES notifications.events (id) ON DELETE CASCADE,
    audience   text NOT NULL CHECK (audience IN ('user', 'admin')),
    user_id    uuid CHECK ((audience = 'user') = (user_id IS NOT NULL)),
    kind       text NOT NULL, -- the event type ("order.confirmed", "alert.firing")
    title      text NOT NULL,
    body       text NOT NULL,
    order_id   text,
    created_at timestamptz NOT NULL DEFAULT now(),
    read_at    timestamptz
);
CREATE INDEX inbox_user_idx ON notifications.inbox (user_id, created_at DESC, id) WHERE audience = 'user';
CREATE INDEX inbox_admin_idx ON notifications.inbox (created_at DESC, id) WHERE audience = 'admin';

-- Who to write to: filled from user.registered and from lookups at the
-- user service, so most events need no call.
CREATE TABLE notifications.recipients (
    user_id    uuid PRIMARY KEY,
    email      text NOT NULL,
    name       text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Whose order is whose: payment events name only the order.
CREATE TABLE notifications.orders (
    order_id text PRIMARY KEY,
    user_id  uuid NOT NULL
);

-- Takes an event in: records it with its notifications and deliveries
-- (p_deliveries [{channel, recipient, subject, body}], p_inbox [{audience,
-- user_id, kind, title, body, order_id}]) and what it teaches us (p_facts:
-- {order: {order_id, user_id}}, {recipient: {user_id, email, name}})
-- unless it was taken in before, then claims for p_lease_ms the
-- deliveries of it nobody sends right now. Returns those as `claimed`
-- ([{channel, recipient, subject, body, claim}], empty when none), whether
-- the event was new, and `held`: how many of its unsent deliveries someone
-- else is sending right now (then the event is not done).
--
-- The same event twice at once: the second INSERT waits for the first's
-- transaction, then does nothing, and finds the first's claims.
CREATE FUNCTION notifications.take_in(p_id text, p_type text, p_deliveries jsonb, p_inbox jsonb, p_facts jsonb,
                                      p_lease_ms integer, OUT is_new boolean, OUT claimed jsonb,
                                      OUT held integer)
LANGUAGE plpgsql AS $$
DECLARE
    lease timestamptz := clock_timestamp() + make_interval(secs => p_lease_ms / 1000.0);
BEGIN
    held := 0;
    INSERT INTO notifications.events (id, type) VALUES (p_id, p_type) ON CONFLICT (id) DO NOTHING;
    is_new := FOUND;
    IF is_new THEN
        -- new: its deliveries are claimed as they are written
        WITH written AS (
            INSERT INTO notifications.deliveries (event_id, channel, recipient, subject, body, claimed_until)
            SELECT p_id, d.channel, d.recipient, d.subject, d.body, lease
              FROM jsonb_to_recordset(p_deliveries) AS d(channel text, recipient text, subject text, body text)
            ON CONFLICT DO NOTHING
            RETURNING channel, recipient, subject, body)
        SELECT coalesce(jsonb_agg(jsonb_build_object('channel', channel, 'recipient', recipient,
                                                     'subject', subject, 'body', body, 'claim', lease::text)), '[]')
          INTO claimed FROM written;
        INSERT INTO notifications.inbox (event_id, audience, user_id, kind, title, body, order_id)
        SELECT p_id, n.audience, n.user_id, n.kind, n.title, n.body, n.order_id
          FROM jsonb_to_recordset(p_inbox)
               AS n(audience text, user_id uuid, kind text, title text, body text, order_id text);
        IF p_facts ? 'order' THEN
            INSERT INTO notifications.orders (order_id, user_id)
            VALUES (p_facts->'order'->>'order_id', (p_facts->'order'->>'user_id')::uuid)
            ON CONFLICT (order_id) DO NOTHING;
        END IF;
        IF p_facts ? 'recipient' THEN
            INSERT INTO notifications.recipients (user_id, email, name)
            VALUES ((p_facts->'recipient'->>'user_id')::uuid, p_facts->'recipient'->>'email',
                    p_facts->'recipient'->>'name')
            ON CONFLICT (user_id) DO UPDATE SET email = EXCLUDED.email, name = EXCLUDED.name, updated_at = now();
        END IF;
        RETURN;
    END IF;
    -- seen before: whatever of it nobody is sending (a failed send
    -- released, a claim lapsed)
    WITH taken AS (
        UPDATE notifications.deliveries
           SET claimed_until = lease
         WHERE event_id = p_id AND sent_at IS NULL AND (claimed_until IS NULL OR claimed_until < now())
        RETURNING channel, recipient, subject, body)
    SELECT coalesce(jsonb_agg(jsonb_build_object('channel', channel, 'recipient', recipient,
                                                 'subject', subject, 'body', body, 'claim', lease::text)), '[]')
      INTO claimed FROM taken;
    SELECT count(*) INTO held FROM notifications.deliveries
     WHERE event_id = p_id AND sent_at IS NULL AND claimed_until >= now() AND claimed_until <> lease;
END
$$;

-- How claimed deliveries went: p_results [{event_id, channel, recipient,
-- claim, error}] (error null: sent). A sent row is done; a failed one is
-- released for its event's next attempt. Only the claim's holder settles
-- it: a row whose claim has lapsed and been taken by another sender is
-- left to that one.
CREATE FUNCTION notifications.settle(p_results jsonb)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    -- One indexed UPDATE per row: a join with the list would let the
    -- planner scan the whole table for a handful of rows.
    FOR r IN SELECT * FROM jsonb_to_recordset(p_results)
                        AS x(event_id text, channel text, recipient text, claim timestamptz, error text)
    LOOP
        UPDATE notifications.deliveries
           SET attempts = attempts + 1,
               sent_at = CASE WHEN r.error IS NULL THEN now() END,
               last_error = r.error,
               claimed_until = NULL
         WHERE event_id = r.event_id AND channel = r.channel AND recipient = r.recipient AND sent_at IS NULL
           AND claimed_until = r.claim;
    END LOOP;
END
$$;

-- The reclaim sweep: claims up to p_limit deliveries whose claim lapsed
-- (their sender died), for p_lease_ms.
CREATE FUNCTION notifications.reclaim(p_limit integer, p_lease_ms integer)
RETURNS jsonb
LANGUAGE sql AS $$
    WITH lapsed AS (
        SELECT event_id, channel, recipient FROM notifications.deliveries
         WHERE sent_at IS NULL AND claimed_until < now()
         ORDER BY claimed_until LIMIT p_limit FOR UPDATE SKIP LOCKED),
    taken AS (
        UPDATE notifications.deliveries d
           SET claimed_until = clock_timestamp() + make_interval(secs => p_lease_ms / 1000.0)
          FROM lapsed l
         WHERE d.event_id = l.event_id AND d.channel = l.channel AND d.recipient = l.recipient
        RETURNING d.event_id, d.channel, d.recipient, d.subject, d.body, d.claimed_until)
    SELECT coalesce(jsonb_agg(jsonb_build_object('event_id', event_id, 'channel', channel, 'recipient', recipient,
                                                 'subject', subject, 'body', body,
                                                 'claim', claimed_until::text)), '[]')
      FROM taken;
$$;

-- One in-app notification as the API shows it.
CREATE FUNCTION notifications.inbox_json(n notifications.inbox) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object(
        'id', n.id, 'type', n.kind, 'title', n.title, 'body', n.body, 'order_id', n.order_id,
        'audience', n.audience, 'read', n.read_at IS NOT NULL,
        'created_at', to_char(n.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'read_at', to_char(n.read_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
$$;
