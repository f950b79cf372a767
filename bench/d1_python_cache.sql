-- D1: the PL/Python trigger with a dict cache in GD, cold at the start of
-- this session, on every event of the slice.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
TRUNCATE bench.ev_d1;
SELECT clock_timestamp() AS t0 \gset
INSERT INTO bench.ev_d1 (ev) SELECT ev FROM bench.staging ORDER BY id;
SELECT clock_timestamp() AS t1 \gset
SELECT count(*) AS n FROM bench.ev_d1 \gset
\ir report.sql
