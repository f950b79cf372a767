-- B (lz4), for information: B with the table's jsonb column compressed
-- with lz4 instead of the default pglz (ALTER TABLE ... SET COMPRESSION
-- lz4); same step, same warm cache.  The difference from B is what
-- compressing the third of the enriched events that pass 2 kB costs.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
TRUNCATE bench.ev_b_lz4;
SELECT clock_timestamp() AS t0 \gset
INSERT INTO bench.ev_b_lz4 (ev) SELECT ev FROM bench.staging ORDER BY id;
SELECT clock_timestamp() AS t1 \gset
SELECT count(*) AS n FROM bench.ev_b_lz4 \gset
\ir report.sql
