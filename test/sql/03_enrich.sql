-- anomali_enrich(): configuration, field paths, verdicts, created fields.
SET search_path = public, anomali_ts;
-- The suite's values are in documentation ranges, which are non-public.
SET anomali_ts.skip_non_public = off;

-- Configuration errors name the key.
SELECT anomali_enrich('{}', '{"ioc_fields": "source.ip"}');
SELECT anomali_enrich('{}', '{"integration": "Nope", "ioc_fields": "source.ip"}');
SELECT anomali_enrich('{}', '{"integration": "Sim"}');
SELECT anomali_enrich('{}', '{"integration": "Sim", "ioc_fields": " , "}');
SELECT anomali_enrich('{}', '{"integration": "Sim", "ioc_fields": "a", "confidence_threshold": 101}');
SELECT anomali_enrich('{}', '{"integration": "Sim", "ioc_fields": "a", "confidence_threshold": "high"}');
SELECT anomali_enrich('{}', '{"integration": "Sim", "ioc_fields": "a", "positive_hits": 0}');
SELECT anomali_enrich('{}', '{"integration": "Sim", "ioc_fields": "a", "save_raw_response": "maybe"}');
SELECT anomali_enrich('{}', '{"integration": "Sim", "ioc_fields": "a", "colour": "red"}');
SELECT anomali_enrich('{}', '{"integration": "Sim", "ioc_fields": "a", "exposed_fields": ["result", "shoe_size"]}');
SELECT anomali_enrich('{}', '{"integration": "Sim", "ioc_fields": "a..b"}');
SELECT anomali_enrich('{}', '{"integration": "Sim", "ioc_fields": 7}');
SELECT anomali_enrich('[1, 2]', '{"integration": "Sim", "ioc_fields": "a"}');
SELECT anomali_enrich(NULL, '{"integration": "Sim", "ioc_fields": "a"}') IS NULL AS null_in_null_out;

-- A helper to show one path's observables compactly.
CREATE FUNCTION show(ev jsonb, path text) RETURNS TABLE (value text, type text, result text,
	reason text, positive_hits int, matches int, max_confidence int, severity text,
	statuses jsonb, itypes jsonb, error text)
LANGUAGE sql AS $$
	SELECT o->>'value', o->>'type', o->>'result', o->>'reason', (o->>'positive_hits')::int,
	       (o->>'matches')::int, (o->>'max_confidence')::int, o->>'severity',
	       o->'statuses', o->'itypes', o->>'error'
	  FROM jsonb_array_elements(ev->'arcanna'->'ioc'->'fields'->path->'observables') o
$$;

-- Verdicts at threshold 50: 90 and 50 malicious, 49 and 10 not, inactive and
-- falsepos never, two indicators reported together, unknown value clean.
SELECT s.* FROM anomali_enrich(
	'{"related": {"ip": ["198.51.100.7", "198.51.100.8", "198.51.100.9", "198.51.100.10",
	                     "198.51.100.11", "198.51.100.12", "198.51.100.13", "198.51.100.99"]}}',
	'{"integration": "Sim", "ioc_fields": "related.ip.[*]"}') ev,
	LATERAL show(ev, 'related.ip.[*]') s;

-- Threshold - 1, threshold, threshold + 1 on the indicator at confidence 50.
SELECT t AS threshold,
       anomali_enrich('{"ip": "198.51.100.8"}',
                      jsonb_build_object('integration', 'Sim', 'ioc_fields', 'ip',
                                         'confidence_threshold', t))
         #>> '{arcanna,ioc,fields,ip,result}' AS result
  FROM (VALUES (49), (50), (51)) AS v(t);

-- Inactive at 95 with active at 20: not malicious at 80.
SELECT anomali_enrich('{"ip": "198.51.100.10"}',
	'{"integration": "Sim", "ioc_fields": "ip", "confidence_threshold": 80}')
	#>> '{arcanna,ioc,fields,ip,result}' AS inactive_95_active_20;

-- positive_hits 2: two active at 90 is malicious, one is not.
SELECT v, anomali_enrich(jsonb_build_object('ip', v),
	'{"integration": "Sim", "ioc_fields": "ip", "positive_hits": 2}')
	#>> '{arcanna,ioc,fields,ip,result}' AS result
  FROM unnest(ARRAY['198.51.100.12', '198.51.100.7']) v;

-- Paths: nested keys, Zeek's dotted keys, arrays at any depth, missing and
-- null paths, non-string values; the same value under several paths is one
-- lookup reported under each path.
SELECT p.key AS path, p.value->>'result' AS result,
       (SELECT string_agg(o->>'value' || '=' || (o->>'result'), ' ' ORDER BY o->>'value')
          FROM jsonb_array_elements(p.value->'observables') o) AS observables
  FROM anomali_enrich(
	'{"id.resp_h": "203.0.113.7",
	  "source": {"ip": "203.0.113.5"}, "destination": {"ip": "203.0.113.5"},
	  "related": {"ip": ["203.0.113.5"]},
	  "answers": ["malicious.example.com", "clean.example.org", 42, null],
	  "event": [{"ip": "198.51.100.7"}, {"ip": "2001:0DB8::1"}, {"ip": {"nested": true}}],
	  "file": {"hash": {"sha256": ""}},
	  "dns": {"question": null}}',
	'{"integration": "Sim",
	  "ioc_fields": ["id.resp_h", "source.ip", "destination.ip", "related.ip.[*]",
	                 "answers.[*]", "event.[*].ip", "file.hash.sha256", "dns.question.name",
	                 "not.there"]}') ev,
	LATERAL jsonb_each(ev->'arcanna'->'ioc'->'fields') p
 ORDER BY p.key;

-- The global block.
SELECT jsonb_pretty((ev->'arcanna'->'ioc'->'global') - 'enriched_at') AS global,
       ev->'arcanna'->'ioc'->'global'->>'enriched_at' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$' AS iso_time
  FROM anomali_enrich('{"source": {"ip": "203.0.113.5"}, "destination": {"ip": "10.1.2.3"},
                        "url": "not an observable"}',
	'{"integration": "Sim", "display_name": "TS", "ioc_fields": "source.ip, destination.ip, url"}') ev;

-- Hashes of every length are asked as type md5 and matched case-insensitively;
-- a stored upper-case domain matches its lower-case observable.
SELECT s.value, s.type, s.result, s.itypes
  FROM anomali_enrich('{"h": ["E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
                               "3395856CE81F2B7382DEE72602F798B642F14140",
                               "44d88612fea8a8f36de82e1278abb02f",
                               "upper.example.net", "clean.example.org"]}',
                      '{"integration": "Sim", "ioc_fields": "h.[*]"}') ev,
       LATERAL show(ev, 'h.[*]') s;

-- Following meta.next: the only active indicator is on the second page.
SELECT s.value, s.result, s.matches, s.positive_hits
  FROM anomali_enrich('{"d": "busy.example.net"}', '{"integration": "Sim", "ioc_fields": "d"}') ev,
       LATERAL show(ev, 'd') s;

-- ... also when the request asked for 25 long values together, so that
-- meta.next (which repeats the q= filter) is longer than 2 kB.
SELECT s.value, s.result, s.matches, s.positive_hits
  FROM anomali_enrich(jsonb_build_object('d', (SELECT jsonb_agg(v ORDER BY o) FROM (
         SELECT 0 o, 'busy.example.net' v UNION ALL
         SELECT i, 'host-' || i || '.a-rather-long-internal-subdomain-name.corp-division.example.org'
           FROM generate_series(1, 24) i) x)),
       '{"integration": "Sim", "ioc_fields": "d.[*]"}') ev,
       LATERAL show(ev, 'd.[*]') s
 WHERE s.value = 'busy.example.net';

-- Non-public addresses are skipped by default, and reported as such.
SET anomali_ts.skip_non_public = on;
SELECT s.value, s.result, s.reason
  FROM anomali_enrich('{"ips": ["10.1.2.3", "172.16.0.9", "192.168.0.1", "127.0.0.1",
                                 "100.64.0.1", "169.254.169.254", "fe80::1", "198.51.100.7"]}',
                      '{"integration": "Sim", "ioc_fields": "ips.[*]"}') ev,
       LATERAL show(ev, 'ips.[*]') s;
SELECT anomali_enrich('{"ip": "10.1.2.3"}', '{"integration": "Sim", "ioc_fields": "ip"}')
	#>> '{arcanna,ioc,global,result}' AS only_private_is_unknown;
SET anomali_ts.skip_non_public = off;

-- exposed_fields restricts what is written; result and is_malicious always are.
SELECT ev->'arcanna'->'ioc'->'fields'
  FROM anomali_enrich('{"ip": "198.51.100.7"}',
	'{"integration": "Sim", "ioc_fields": "ip", "exposed_fields": "result,is_malicious"}') ev;
SELECT ev->'arcanna'->'ioc'->'fields'
  FROM anomali_enrich('{"ip": "198.51.100.7"}',
	'{"integration": "Sim", "ioc_fields": "ip", "exposed_fields": ["severity", "max_confidence"]}') ev;

-- save_raw_response stores ThreatStream's answer.
SELECT jsonb_array_length(ev->'arcanna'->'ioc'->'raw') AS answers,
       ev->'arcanna'->'ioc'->'raw'->0->'objects'->0->>'value' AS first_value,
       ev->'arcanna'->'ioc'->'raw'->0->'meta'->>'total_count' AS total_count
  FROM anomali_enrich('{"ip": "198.51.100.7"}',
	'{"integration": "Sim", "ioc_fields": "ip", "save_raw_response": true}') ev;
SELECT ev->'arcanna'->'ioc' ? 'raw' AS raw_without_asking
  FROM anomali_enrich('{"ip": "198.51.100.7"}', '{"integration": "Sim", "ioc_fields": "ip"}') ev;

-- The rest of the event is kept, including other arcanna keys.
SELECT ev - 'arcanna' AS rest, ev->'arcanna'->'other' AS other_arcanna
  FROM anomali_enrich('{"ip": "198.51.100.7", "n": 1, "arcanna": {"other": {"x": 1}}}',
	'{"integration": "Sim", "ioc_fields": "ip"}') ev;

-- A second step adds to the verdict and never clears a malicious one.
WITH first AS (
	SELECT anomali_enrich('{"ip": "198.51.100.7", "d": "clean.example.org"}',
		'{"integration": "Sim", "display_name": "one", "ioc_fields": "ip"}') AS ev
), second AS (
	-- At threshold 95 the same IP is no longer malicious; d is new.
	SELECT anomali_enrich(ev, '{"integration": "Sim", "display_name": "two",
		"ioc_fields": "ip, d", "confidence_threshold": 95}') AS ev FROM first
)
SELECT ev #>> '{arcanna,ioc,global,result}' AS global,
       ev #>> '{arcanna,ioc,global,is_malicious}' AS is_malicious,
       ev #>> '{arcanna,ioc,fields,ip,result}' AS ip,
       ev #>> '{arcanna,ioc,fields,ip,observables,0,result}' AS ip_observable,
       ev #>> '{arcanna,ioc,fields,d,result}' AS d,
       ev #> '{arcanna,ioc,global,steps}' AS steps
  FROM second;

-- skip_previously_malicious: the malicious IP is not asked again.
WITH first AS (
	SELECT anomali_enrich('{"ip": "198.51.100.7"}',
		'{"integration": "Sim", "display_name": "one", "ioc_fields": "ip"}') AS ev
)
SELECT s.value, s.result, s.reason
  FROM first, anomali_enrich(ev, '{"integration": "Sim", "display_name": "two",
		"ioc_fields": "ip", "skip_previously_malicious": true}') ev2,
       LATERAL show(ev2, 'ip') s;

-- Many values at one path: each is collected once, in linear time.
SELECT (ev #>> '{arcanna,ioc,global,observables}')::int AS observables,
       (ev #>> '{arcanna,ioc,global,skipped}')::int AS skipped
  FROM anomali_enrich(jsonb_build_object('a',
         (SELECT jsonb_agg('value ' || (i % 20000)) FROM generate_series(1, 40000) i)),
       '{"integration": "Sim", "ioc_fields": "a.[*]"}') ev;

-- Queryable as the README shows.
SELECT ev #>> '{arcanna,ioc,global,result}' AS global,
       ev #>> '{arcanna,ioc,fields,destination.ip,result}' AS destination_ip
  FROM anomali_enrich('{"destination": {"ip": "203.0.113.7"}}',
	'{"integration": "Sim", "ioc_fields": "destination.ip"}') ev;

-- The event's other members are copied as stored, not rebuilt: events of 0
-- to 80 members of every jsonb type (numerics and containers need
-- alignment; past 32 children the format stores offsets), with and
-- without an earlier arcanna of any type, must come back equal to the
-- event, member for member, and survive a text round trip.
CREATE TEMP TABLE wide AS
SELECT n, k, (SELECT coalesce(jsonb_object_agg('m' || repeat('x', i % 7) || i,
		CASE i % 8 WHEN 0 THEN to_jsonb(i * 1.5) WHEN 1 THEN to_jsonb('s' || repeat('y', i % 5))
		           WHEN 2 THEN jsonb_build_object('o', i, 'p', jsonb_build_array(i, 'q'))
		           WHEN 3 THEN 'true'::jsonb WHEN 4 THEN 'null'::jsonb
		           WHEN 5 THEN jsonb_build_array(i) WHEN 6 THEN to_jsonb(-i) ELSE '""'::jsonb END),
		'{}'::jsonb) FROM generate_series(1, n) i)
	|| CASE k WHEN 1 THEN '{"arcanna": 7}'::jsonb
	          WHEN 2 THEN '{"arcanna": {"other": [1, 2.5], "ioc": "x"}}'::jsonb
	          WHEN 3 THEN '{"ip": "198.51.100.7", "a": 1, "zzzzzzzzzzzz": {"b": 2}}'::jsonb
	          ELSE '{}'::jsonb END AS ev
  FROM generate_series(0, 80) n, generate_series(0, 3) k;
SELECT count(*) AS events,
       count(*) FILTER (WHERE (e - 'arcanna') = (w.ev - 'arcanna')) AS members_kept,
       count(*) FILTER (WHERE e::text::jsonb = e AND
                              pg_column_size(e::text::jsonb) = pg_column_size(e)) AS round_trip,
       count(*) FILTER (WHERE e #>> '{arcanna,ioc,global,result}' =
                              CASE w.k WHEN 3 THEN 'malicious' ELSE 'unknown' END) AS verdicts,
       count(*) FILTER (WHERE w.k = 2 AND e -> 'arcanna' -> 'other' = '[1, 2.5]') AS arcanna_kept
  FROM wide w, LATERAL anomali_enrich(w.ev, '{"integration": "Sim", "ioc_fields": "ip"}') e;
