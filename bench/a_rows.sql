-- A (one row per INSERT): the staged events inserted by one INSERT
-- statement each, as a pipeline that writes event by event does (a PL/pgSQL
-- loop, so no client round trip is counted), no trigger.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
TRUNCATE bench.ev_a_rows;
SELECT clock_timestamp() AS t0 \gset
DO $$
DECLARE
	r record;
BEGIN
	FOR r IN SELECT ev FROM bench.staging ORDER BY id LOOP
		INSERT INTO bench.ev_a_rows (ev) VALUES (r.ev);
	END LOOP;
END $$;
SELECT clock_timestamp() AS t1 \gset
SELECT count(*) AS n FROM bench.ev_a_rows \gset
\ir report.sql
