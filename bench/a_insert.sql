-- A (INSERT ... SELECT): plain insert of the staged events, no trigger.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
TRUNCATE bench.ev_a_insert;
SELECT clock_timestamp() AS t0 \gset
INSERT INTO bench.ev_a_insert (ev) SELECT ev FROM bench.staging ORDER BY id;
SELECT clock_timestamp() AS t1 \gset
SELECT count(*) AS n FROM bench.ev_a_insert \gset
\ir report.sql
