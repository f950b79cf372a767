-- F: inserts through an asynchronous step (cold cache, latency_ms per
-- request).  Two results: F_insert times the INSERT ... SELECT alone (what
-- the ingesting session pays); F_end times from the start of the insert
-- until the background worker has finished every row (bounded wait).
\set ON_ERROR_STOP on
SET client_min_messages = warning;
TRUNCATE bench.ev_f;
SELECT anomali_ts.anomali_cache_clear() \gset
SELECT clock_timestamp() AS t0 \gset
INSERT INTO bench.ev_f (ev) SELECT ev FROM bench.staging ORDER BY id;
SELECT clock_timestamp() AS t1 \gset
SELECT count(*) AS n FROM bench.ev_f \gset
\set label F_insert
\ir report.sql
-- Wait for the worker: at most 10 minutes, polling every 5 ms.
DO $$
BEGIN
	FOR i IN 1..120000 LOOP
		EXIT WHEN NOT EXISTS (SELECT 1 FROM bench.ev_f
		                       WHERE ev #>> '{arcanna,ioc,global,pending_step}' IS NOT NULL);
		PERFORM pg_sleep(0.005);
	END LOOP;
END $$;
SELECT clock_timestamp() AS t1 \gset
SELECT count(*) AS n FROM bench.ev_f
 WHERE ev #>> '{arcanna,ioc,global,pending_step}' IS NULL
   AND ev #> '{arcanna,ioc,global,steps}' ? 'ThreatStream' \gset
\set label F_end
\ir report.sql
