-- B (lean), for information: B with a step whose exposed_fields are only
-- result and is_malicious, so the rows grow less; same integration, same
-- warm cache.  The difference from B is the cost of writing (and, past
-- 2 kB, compressing) the full created fields.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
TRUNCATE bench.ev_b_lean;
SELECT clock_timestamp() AS t0 \gset
INSERT INTO bench.ev_b_lean (ev) SELECT ev FROM bench.staging ORDER BY id;
SELECT clock_timestamp() AS t1 \gset
SELECT count(*) AS n FROM bench.ev_b_lean \gset
\ir report.sql
