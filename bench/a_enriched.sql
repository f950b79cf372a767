-- A (enriched): INSERT ... SELECT of the events exactly as B's trigger
-- wrote them (bench.staging_enriched, made by ceiling_setup.sql), no
-- trigger: what storing B's rows costs, so B's ceiling.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
TRUNCATE bench.ev_a_enriched;
SELECT clock_timestamp() AS t0 \gset
INSERT INTO bench.ev_a_enriched (ev) SELECT ev FROM bench.staging_enriched ORDER BY id;
SELECT clock_timestamp() AS t1 \gset
SELECT count(*) AS n FROM bench.ev_a_enriched \gset
\ir report.sql
