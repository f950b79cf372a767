-- C: the anomali_ts trigger with a cold cache, against the simulator with
-- latency_ms per request.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
TRUNCATE bench.ev_c;
SELECT anomali_ts.anomali_cache_clear() \gset
SELECT clock_timestamp() AS t0 \gset
INSERT INTO bench.ev_c (ev) SELECT ev FROM bench.staging ORDER BY id;
SELECT clock_timestamp() AS t1 \gset
SELECT count(*) AS n FROM bench.ev_c \gset
\ir report.sql
