-- Memory mode, second part: the background worker's memory over many
-- batches.  worker_rounds rounds of the staged events are inserted into a
-- table with the asynchronous step bench_F, each committed and waited for
-- (at most 60 s a round) until the worker has finished every row; after
-- each round the worker's VmRSS and RssAnon are read from /proc and kept in
-- bench.worker_memory, printed at the end as
--   MEMW|round|events finished so far|VmRSS kB|RssAnon kB
-- The worker stays between rounds (worker_idle_timeout), so every round is
-- the same process.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
CREATE TABLE bench.ev_fm (LIKE bench.ev_a_insert INCLUDING ALL);
SELECT anomali_ts.anomali_attach_step('bench.ev_fm', 'ev', 'bench_F') \gset
CREATE TABLE bench.worker_memory (round int, events bigint, pid int, rss bigint, anon bigint);

CREATE PROCEDURE bench.worker_rounds(rounds int)
LANGUAGE plpgsql AS $$
DECLARE
	n bigint;
	done bigint := 0;
	wpid int;
	s text;
BEGIN
	FOR r IN 1..rounds LOOP
		INSERT INTO bench.ev_fm (ev) SELECT ev FROM bench.staging ORDER BY id;
		GET DIAGNOSTICS n = ROW_COUNT;
		COMMIT;
		FOR i IN 1..6000 LOOP
			EXIT WHEN NOT EXISTS (SELECT 1 FROM bench.ev_fm
			                       WHERE ev #>> '{arcanna,ioc,global,pending_step}' IS NOT NULL);
			PERFORM pg_sleep(0.01);
		END LOOP;
		IF EXISTS (SELECT 1 FROM bench.ev_fm
		            WHERE ev #>> '{arcanna,ioc,global,pending_step}' IS NOT NULL) THEN
			RAISE EXCEPTION 'round %: the worker did not finish within 60 s', r;
		END IF;
		done := done + n;
		SELECT pid INTO wpid FROM pg_stat_activity
		 WHERE backend_type = 'anomali_ts worker' AND datname = current_database();
		s := pg_read_file('/proc/' || wpid || '/status');
		INSERT INTO bench.worker_memory
		VALUES (r, done, wpid, substring(s FROM 'VmRSS:\s*(\d+)')::bigint,
				substring(s FROM 'RssAnon:\s*(\d+)')::bigint);
		TRUNCATE bench.ev_fm;
		COMMIT;
	END LOOP;
END $$;

SELECT anomali_ts.anomali_cache_clear() \gset
CALL bench.worker_rounds(:worker_rounds);
SELECT format('MEMW|%s|%s|%s|%s|%s', round, events, pid, rss, anon)
  FROM bench.worker_memory ORDER BY round;
