-- D0: the PL/Python trigger, one urllib request per observable, on the
-- first d0_events events.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
TRUNCATE bench.ev_d0;
SELECT clock_timestamp() AS t0 \gset
INSERT INTO bench.ev_d0 (ev) SELECT ev FROM bench.staging WHERE id <= :d0_events ORDER BY id;
SELECT clock_timestamp() AS t1 \gset
SELECT count(*) AS n FROM bench.ev_d0 \gset
\ir report.sql
