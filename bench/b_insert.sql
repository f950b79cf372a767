-- B (INSERT ... SELECT): the anomali_ts trigger with a warm shared cache,
-- in a new session (so nothing session-local is warm but the cache).
\set ON_ERROR_STOP on
SET client_min_messages = warning;
TRUNCATE bench.ev_b;
SELECT clock_timestamp() AS t0 \gset
INSERT INTO bench.ev_b (ev) SELECT ev FROM bench.staging ORDER BY id;
SELECT clock_timestamp() AS t1 \gset
SELECT count(*) AS n FROM bench.ev_b \gset
\ir report.sql
