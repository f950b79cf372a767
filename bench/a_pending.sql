-- A (pending): INSERT ... SELECT of the events exactly as F's trigger
-- marked them pending (bench.staging_pending, made by ceiling_setup.sql)
-- into a table with the queue index but no trigger: what storing F's rows
-- costs, so F's ceiling.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
TRUNCATE bench.ev_a_pending;
SELECT clock_timestamp() AS t0 \gset
INSERT INTO bench.ev_a_pending (ev) SELECT ev FROM bench.staging_pending ORDER BY id;
SELECT clock_timestamp() AS t1 \gset
SELECT count(*) AS n FROM bench.ev_a_pending \gset
\ir report.sql
