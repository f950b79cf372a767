-- E: bulk enrichment of the stored rows of bench.ev_e with the procedure,
-- cold cache, latency_ms per request.  Also reports the numbers for the
-- request target: unique public observables of the table (by the
-- extension's own classifier), the cache entries E left (the unique
-- observables it actually looked up), and the batch size in force.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
-- The events, stored again without any trigger (each run starts from rows
-- no step has enriched)
TRUNCATE bench.ev_e;
INSERT INTO bench.ev_e (ev) SELECT ev FROM bench.staging ORDER BY id;
VACUUM ANALYZE bench.ev_e;
SELECT anomali_ts.anomali_cache_clear() \gset
-- The procedure's progress NOTICEs go to this session's stderr, which
-- scripts/bench.sh keeps: report.py reads the rows the procedure read.
SET client_min_messages = notice;
SELECT clock_timestamp() AS t0 \gset
CALL anomali_ts.anomali_enrich_table('bench.ev_e', 'ev', 'bench_E', :e_batch_rows);
SELECT clock_timestamp() AS t1 \gset
SET client_min_messages = warning;
SELECT count(*) AS n FROM bench.ev_e \gset
\ir report.sql
WITH v AS (
	SELECT ev ->> 'id.resp_h' AS s FROM bench.ev_e
	UNION ALL SELECT ev ->> 'query' FROM bench.ev_e
	UNION ALL SELECT ev ->> 'server_name' FROM bench.ev_e
	UNION ALL SELECT a #>> '{}' FROM bench.ev_e,
		jsonb_array_elements(CASE jsonb_typeof(ev -> 'answers') WHEN 'array' THEN ev -> 'answers' END) a
		WHERE jsonb_typeof(a) = 'string'
	UNION ALL SELECT a #>> '{}' FROM bench.ev_e,
		jsonb_array_elements(CASE jsonb_typeof(ev -> 'cert_chain_fps') WHEN 'array' THEN ev -> 'cert_chain_fps' END) a
		WHERE jsonb_typeof(a) = 'string'
)
SELECT format('EINFO|%s|%s|%s|%s|%s',
			  (SELECT count(DISTINCT (c.type, c.observable))
				 FROM v, anomali_ts.anomali_classify(v.s) c
				WHERE v.s IS NOT NULL AND c.type <> 'unsupported' AND NOT c.non_public),
			  (SELECT entries FROM anomali_ts.anomali_cache_stats()),
			  current_setting('anomali_ts.batch_size'),
			  (SELECT count(*) FROM bench.ev_e
				WHERE ev #> '{arcanna,ioc,global,steps}' ? 'ThreatStream'),
			  (SELECT count(*) FROM bench.ev_e));
