-- F (one row per INSERT): the same statements as A (one row per INSERT)
-- into a table with the asynchronous step; then a bounded wait until the
-- background worker has finished every row.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
TRUNCATE bench.ev_f_rows;
SELECT anomali_ts.anomali_cache_clear() \gset
SELECT clock_timestamp() AS t0 \gset
DO $$
DECLARE
	r record;
BEGIN
	FOR r IN SELECT ev FROM bench.staging ORDER BY id LOOP
		INSERT INTO bench.ev_f_rows (ev) VALUES (r.ev);
	END LOOP;
END $$;
SELECT clock_timestamp() AS t1 \gset
SELECT count(*) AS n FROM bench.ev_f_rows \gset
\set label F_rows
\ir report.sql
DO $$
BEGIN
	FOR i IN 1..120000 LOOP
		EXIT WHEN NOT EXISTS (SELECT 1 FROM bench.ev_f_rows
		                       WHERE ev #>> '{arcanna,ioc,global,pending_step}' IS NOT NULL);
		PERFORM pg_sleep(0.005);
	END LOOP;
END $$;
