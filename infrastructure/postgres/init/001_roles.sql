-- Database roles and schemas: one login role and one schema per service.
--
-- Each role owns its schema and nothing else, so a service cannot read
-- another service's tables (the lab's "services never share tables" rule is
-- enforced by PostgreSQL, not by good manners). Run by scripts/migrate.sh as
-- the superuser, with the passwords passed as psql variables:
--   psql -v orders_password=... -v inventory_password=... ... -f 001_roles.sql
-- Re-running it is harmless; it also resets the passwords.

SELECT format('CREATE ROLE %I LOGIN', name)
  FROM unnest(ARRAY['orders', 'inventory', 'payments', 'users', 'notifications']) AS name
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = name)
\gexec

ALTER ROLE orders PASSWORD :'orders_password';
ALTER ROLE inventory PASSWORD :'inventory_password';
ALTER ROLE payments PASSWORD :'payments_password';
ALTER ROLE users PASSWORD :'users_password';
ALTER ROLE notifications PASSWORD :'notifications_password';

-- Nobody but the service roles connects to the application database.
REVOKE ALL ON DATABASE oms FROM PUBLIC;
GRANT CONNECT ON DATABASE oms TO orders, inventory, payments, users, notifications;

SELECT format('CREATE SCHEMA IF NOT EXISTS %I AUTHORIZATION %I', name, name),
       format('ALTER ROLE %I IN DATABASE oms SET search_path = %I', name, name)
  FROM unnest(ARRAY['orders', 'inventory', 'payments', 'users', 'notifications']) AS name
\gexec

-- Bookkeeping for scripts/migrate.sh; invisible to the service roles.
CREATE TABLE IF NOT EXISTS public.schema_migrations (
    service    text NOT NULL,
    version    text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (service, version)
);
REVOKE ALL ON public.schema_migrations FROM PUBLIC;

-- Per-statement timing for the PostgreSQL exporter and the lab's slow-query
-- exercises. It collects only where the server preloads the library (the
-- Compose stack does: shared_preload_libraries=pg_stat_statements).
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
