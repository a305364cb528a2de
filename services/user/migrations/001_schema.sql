-- Users schema: accounts, every login attempt, and the outbox of events.
--
-- Emails keep the case the user typed but are unique case-insensitively
-- (the unique index is on lower(email), and every lookup uses lower() so it
-- can use that index). Passwords are stored only as argon2id hashes in the
-- PHC string format ($argon2id$v=19$m=...,t=...,p=...$salt$hash), which
-- carries its own parameters: raising the cost later leaves old hashes
-- verifiable.

CREATE TABLE users.users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email         text NOT NULL CHECK (length(email) BETWEEN 3 AND 254 AND email LIKE '%_@_%'),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    password_hash text NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    role          text NOT NULL DEFAULT 'customer' CHECK (role IN ('customer', 'admin')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz
);

CREATE UNIQUE INDEX users_email_key ON users.users (lower(email));
-- The admin listing pages through users in sign-up order.
CREATE INDEX users_created_at_idx ON users.users (created_at, id);

-- One row per login attempt that got as far as checking credentials (or was
-- refused by the lockout). The lab's security dashboards query this table
-- directly from Grafana, e.g. failures in the last 5 minutes per address:
--   SELECT client_ip, count(*) FROM users.login_attempts
--    WHERE outcome <> 'success' AND attempted_at > now() - interval '5 minutes'
--    GROUP BY client_ip ORDER BY 2 DESC;
CREATE TABLE users.login_attempts (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email        text NOT NULL CHECK (length(email) <= 254), -- lower-cased; the account may not exist
    client_ip    inet,
    outcome      text NOT NULL CHECK (outcome IN ('success', 'bad_credentials', 'locked')),
    attempted_at timestamptz NOT NULL DEFAULT now()
);

-- "Failures in the last N minutes" reads only recent failed rows: a partial
-- index keeps it small however many successful logins pile up.
CREATE INDEX login_attempts_failures_idx ON users.login_attempts (attempted_at) WHERE outcome <> 'success';
-- Per-account history ("who tried alice@ lately").
CREATE INDEX login_attempts_email_idx ON users.login_attempts (email, attempted_at);
-- Retention: the service deletes rows older than LOGIN_ATTEMPTS_RETENTION_DAYS.
CREATE INDEX login_attempts_attempted_at_idx ON users.login_attempts (attempted_at);

-- Events waiting for the outbox relay to publish them to RabbitMQ
-- (exchange oms.events, routing key = routing_key, body = payload, header
-- traceparent). Written in the same transaction as the change they
-- describe, so an event exists exactly when its change does.
CREATE TABLE users.outbox (
    id           uuid PRIMARY KEY,
    routing_key  text NOT NULL,
    payload      jsonb NOT NULL,
    traceparent  text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);

CREATE INDEX outbox_unpublished_idx ON users.outbox (created_at) WHERE published_at IS NULL;

-- The JSON shape of a user in every API response. Never the hash.
CREATE FUNCTION users.user_json(u users.users) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN jsonb_build_object(
        'id', u.id,
        'email', u.email,
        'name', u.name,
        'role', u.role,
        'created_at', to_char(u.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'last_login_at', to_char(u.last_login_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'));
END
$$;

-- Registers a user and writes its user.registered event, in one
-- transaction. Returns the user document; a duplicate email raises
-- unique_violation (23505).
CREATE FUNCTION users.register(p_email text, p_name text, p_password_hash text, p_traceparent text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    created users.users;
    event_id uuid := gen_random_uuid();
BEGIN
    INSERT INTO users.users (email, name, password_hash)
    VALUES (p_email, p_name, p_password_hash)
    RETURNING * INTO created;

    INSERT INTO users.outbox (id, routing_key, payload, traceparent)
    VALUES (event_id, 'user.registered',
            jsonb_build_object(
                'id', event_id,
                'type', 'user.registered',
                'occurred_at', to_char(created.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                'data', jsonb_build_object('user_id', created.id, 'email', created.email, 'name', created.name)),
            p_traceparent);

    RETURN users.user_json(created);
END
$$;
