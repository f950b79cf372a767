-- Memory mode: mem_events calls of anomali_enrich() in one session, warm
-- cache, printing the backend's VmRSS (and RssAnon, its private heap)
-- before, after every tenth, and at the end.
--
-- psql variables: mem_events (a multiple of 10 x the set size), ioc_fields.
-- The set is the first 1,000 staged events (a VALUES-like temp table);
-- each tenth of the run is one statement: the set times mem_events / 10 /
-- 1000 passes.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
\set cfg '{"integration": "bench_M", "ioc_fields": "' :ioc_fields '"}'
CREATE TEMP TABLE mem_set AS SELECT ev FROM bench.staging ORDER BY id LIMIT 1000;
SELECT count(*) AS set_size FROM mem_set \gset
SELECT (:mem_events / 10 / :set_size) AS passes \gset

-- Warm the cache and the session (two passes), then take the baseline.
SELECT count(anomali_ts.anomali_enrich(ev, :'cfg')) FROM mem_set \g /dev/null
SELECT count(anomali_ts.anomali_enrich(ev, :'cfg')) FROM mem_set \g /dev/null
SELECT format('MEM|before|0|%s|%s|%s',
			  substring(s FROM 'VmRSS:\s*(\d+)'), substring(s FROM 'RssAnon:\s*(\d+)'),
			  extract(epoch FROM clock_timestamp()))
  FROM pg_read_file('/proc/' || pg_backend_pid() || '/status') s;
SELECT clock_timestamp() AS t0 \gset

\set step 1
\ir memory_step.sql
\ir memory_step.sql
\ir memory_step.sql
\ir memory_step.sql
\ir memory_step.sql
\ir memory_step.sql
\ir memory_step.sql
\ir memory_step.sql
\ir memory_step.sql
\ir memory_step.sql
SELECT clock_timestamp() AS t1 \gset
SELECT format('MEMTIME|%s|%s', :step - 1,
			  extract(epoch FROM :'t1'::timestamptz - :'t0'::timestamptz));
SELECT format('MEMCACHE|%s|%s|%s', hits, misses, entries) FROM anomali_ts.anomali_cache_stats();
