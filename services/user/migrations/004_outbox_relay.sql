-- The outbox (001) as the relay reads it: a publishing order (seq), its
-- index, the relay's lease and the NOTIFY trigger, all from the shared
-- installer (infrastructure/postgres/init/002_outbox.sql). Rows written
-- before this migration get seq values in no particular order; none are
-- lost.
SELECT public.oms_install_outbox('users');
