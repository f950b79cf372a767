-- A slow, failing or hostile remote: every case ends in a clear result.
SET search_path = public, anomali_ts;
SET anomali_ts.skip_non_public = off;
\getenv sim_user ANOMALI_SIM_USER
\getenv sim_key ANOMALI_SIM_KEY
\getenv sim_base ANOMALI_SIM_BASE

-- One integration per behaviour, chosen by options in the simulator URL.
SET log_statement = 'none';
SET log_min_error_statement = 'panic';
SELECT anomali_create_integration(f, :'sim_user', :'sim_key',
	:'sim_base' || '/opt/' || opts || '/api/v2/intelligence/', skip_health_check => true)
  FROM (VALUES
	('F401', 'tag=f401,status=401'),
	('F403', 'tag=f403,status=403'),
	('F429', 'tag=f429,status=429,retry_after=1'),
	('F503', 'tag=f503,status=503'),
	('Flaky', 'tag=flaky,status=503,fail_first=2'),
	('NotJson', 'tag=notjson,fault=notjson'),
	('Html', 'tag=html,fault=html'),
	('Null', 'tag=null,fault=objects_null'),
	('Huge', 'tag=huge,fault=oversized,size_kb=20000'),
	('Hang', 'tag=hang,fault=hang'),
	('Cut', 'tag=cut,fault=close_mid_body'),
	('Trickle', 'tag=trickle,fault=trickle,trickle_ms=300'),
	('Wrong', 'tag=wrong,fault=wrong_value'),
	('BadFields', 'tag=badfields,fault=bad_fields'),
	('Deep', 'tag=deep,fault=deep_nesting'),
	('LongNext', 'tag=longnext,fault=long_next'),
	('NumberNext', 'tag=numbernext,fault=number_next'),
	('Slow', 'tag=slow,latency_ms=3000')
  ) AS v(f, opts);
RESET log_statement;
RESET log_min_error_statement;

SET anomali_ts.request_timeout = '1s';
SET anomali_ts.max_response_size = '1MB';

-- Each integration asked about the same malicious IP: never not_malicious.
SELECT f AS integration, r.global, r.error
  FROM unnest(ARRAY['F401', 'F403', 'F429', 'F503', 'Flaky', 'NotJson', 'Html', 'Null',
                    'Huge', 'Hang', 'Cut', 'Trickle', 'Slow', 'Sim500', 'LongNext',
                    'NumberNext']) f
  LEFT JOIN LATERAL (
	SELECT ev #>> '{arcanna,ioc,global,result}' AS global,
	       regexp_replace(ev #>> '{arcanna,ioc,fields,ip,observables,0,error}',
	                      '\d+ (ms|milliseconds|bytes)', 'N \1', 'g') AS error
	  FROM anomali_enrich('{"ip": "198.51.100.7"}',
	                      jsonb_build_object('integration', f, 'ioc_fields', 'ip')) ev
  ) r ON true
 ORDER BY f;

-- Answers that are wrong in shape: values nobody asked for are ignored,
-- invalid confidences never count, and nesting too deep is an error.
SELECT f AS integration, s.value, s.result, s.matches, s.positive_hits, s.error
  FROM unnest(ARRAY['Wrong', 'BadFields', 'Deep']) f,
       LATERAL anomali_enrich('{"ip": "198.51.100.7"}',
                              jsonb_build_object('integration', f, 'ioc_fields', 'ip')) ev,
       LATERAL show(ev, 'ip') s
 ORDER BY f;

-- statement_timeout interrupts a transfer with PostgreSQL's own error, and
-- the session stays usable.
SET anomali_ts.request_timeout = '60s';
SET statement_timeout = '500ms';
SELECT anomali_enrich('{"ip": "198.51.100.7"}', '{"integration": "Hang", "ioc_fields": "ip"}');
RESET statement_timeout;
SELECT anomali_enrich('{"ip": "198.51.100.7"}', '{"integration": "Sim", "ioc_fields": "ip"}')
	#>> '{arcanna,ioc,global,result}' AS still_works;

-- A host name that cannot resolve (a 64-character label is refused by the
-- resolver itself, so no DNS query leaves the machine): an error, at once.
SELECT anomali_create_integration('NoSuchHost', 'u', 'k',
	'http://' || repeat('a', 64) || '.example/api/v2/intelligence/', skip_health_check => true);
SELECT anomali_enrich('{"ip": "198.51.100.7"}', '{"integration": "NoSuchHost", "ioc_fields": "ip"}')
	#>> '{arcanna,ioc,fields,ip,observables,0,error}' LIKE '%Could not resolve host%' AS unresolvable;
SELECT reachable, message LIKE 'unreachable: Could not resolve host%' AS says_so
  FROM anomali_health('NoSuchHost');

-- A proxy is used only when configured: through a proxy that is down, the
-- lookup fails; without one, it works.
SET anomali_ts.proxy = 'http://127.0.0.1:9';
SET anomali_ts.cache_ttl = 0;
SELECT anomali_enrich('{"ip": "198.51.100.7"}', '{"integration": "Sim", "ioc_fields": "ip"}')
	#>> '{arcanna,ioc,global,result}' AS through_dead_proxy;
RESET anomali_ts.proxy;
SELECT anomali_enrich('{"ip": "198.51.100.7"}', '{"integration": "Sim", "ioc_fields": "ip"}')
	#>> '{arcanna,ioc,global,result}' AS without_proxy;
RESET anomali_ts.cache_ttl;

-- An indicator whose value is a URL is not an indicator for its host.
SELECT anomali_enrich('{"ip": "198.51.100.77"}', '{"integration": "Sim", "ioc_fields": "ip"}')
	#>> '{arcanna,ioc,fields,ip,result}' AS url_indicator_for_host;

-- An incomplete answer can confirm malicious but never clear: with one page
-- allowed, the busy domain is an error, and the IP asked in the same request,
-- whose active indicator arrived, is still malicious.
SET anomali_ts.max_pages = 1;
SET anomali_ts.cache_ttl = 0;
SELECT s.value, s.result, s.error
  FROM anomali_enrich('{"d": ["busy.example.net", "198.51.100.7"]}',
                      '{"integration": "Sim", "ioc_fields": "d.[*]"}') ev,
       LATERAL show(ev, 'd.[*]') s;
RESET anomali_ts.max_pages;
RESET anomali_ts.cache_ttl;

-- Answers are cached per account: an integration moved to another server
-- does not see the old server's answers.
SET log_statement = 'none';
SET log_min_error_statement = 'panic';
SELECT anomali_create_integration('Moving', :'sim_user', :'sim_key',
	:'sim_base' || '/api/v2/intelligence/', skip_health_check => true);
SELECT anomali_alter_integration('Moving',
	api_url => :'sim_base' || '/opt/tag=moved,status=500/api/v2/intelligence/',
	skip_health_check => true);
RESET log_statement;
RESET log_min_error_statement;
SELECT anomali_enrich('{"ip": "198.51.100.7"}', '{"integration": "Sim", "ioc_fields": "ip"}')
	#>> '{arcanna,ioc,global,result}' AS cached_for_sim;
SELECT anomali_enrich('{"ip": "198.51.100.7"}', '{"integration": "Moving", "ioc_fields": "ip"}')
	#>> '{arcanna,ioc,global,result}' AS moving_not_from_sim_cache;

-- The circuit breaker stops a single large lookup too: of 200 observables
-- sent one per request to a peer that never answers, only the first rounds
-- go out.
SET anomali_ts.batch_size = 1;
SET anomali_ts.request_timeout = '300ms';
SELECT requests AS before FROM anomali_session_stats() \gset
SELECT ev #>> '{arcanna,ioc,global,errors}' AS errors,
       (SELECT count(*) FROM jsonb_array_elements(ev #> '{arcanna,ioc,fields,ip.[*],observables}') o
         WHERE o ->> 'error' LIKE 'not sent:%') AS not_sent
  FROM anomali_enrich(jsonb_build_object('ip',
         (SELECT jsonb_agg('198.51.100.' || i) FROM generate_series(1, 200) i)),
       '{"integration": "Hang", "ioc_fields": "ip.[*]"}') ev;
SELECT requests - :before <= 2 * current_setting('anomali_ts.max_concurrency')::int
	+ current_setting('anomali_ts.breaker_failures')::int AS bounded_requests
  FROM anomali_session_stats();
RESET anomali_ts.batch_size;
RESET anomali_ts.request_timeout;

-- The circuit breaker opens after repeated failures and says so.
SET anomali_ts.breaker_failures = 2;
SELECT anomali_enrich(jsonb_build_object('ip', '198.51.100.' || i),
	'{"integration": "F503", "ioc_fields": "ip"}') #>> '{arcanna,ioc,fields,ip,observables,0,error}'
  FROM generate_series(20, 22) i;
SELECT title, circuit FROM anomali_health('F503');
