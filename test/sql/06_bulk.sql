-- Enrichment of stored rows in batches: resumable, one lookup per unique
-- observable of each batch.
SET search_path = public, anomali_ts;
SET anomali_ts.skip_non_public = off;
SET anomali_ts.cache_ttl = 0;

CREATE TABLE stored (id int PRIMARY KEY, ev jsonb);
INSERT INTO stored
SELECT i, jsonb_build_object('ip', (ARRAY['198.51.100.7', '198.51.100.9', '203.0.113.7',
                                          '198.51.100.99'])[1 + i % 4],
                             'd', CASE WHEN i % 5 = 0 THEN 'malicious.example.com' END)
  FROM generate_series(1, 250) i;
SELECT anomali_create_step('bulk', '{"integration": "Sim", "display_name": "Bulk",
	"ioc_fields": "ip, d"}');

-- One batch: 100 rows, 5 unique observables, looked up together in one request.
SELECT rows_seen, rows_enriched, observables, requests
  FROM anomali_enrich_batch('stored', 'ev', 'bulk', '(0,0)', 100);

-- The procedure does the rest, a committed batch at a time, and skips the
-- rows already done.
SET client_min_messages = warning;
CALL anomali_enrich_table('stored', 'ev', 'bulk', batch_rows => 100);
RESET client_min_messages;
SELECT ev #>> '{arcanna,ioc,global,result}' AS result, count(*)
  FROM stored GROUP BY 1 ORDER BY 1;
SELECT count(*) AS enriched_twice FROM stored
 WHERE jsonb_array_length(ev #> '{arcanna,ioc,global,steps}') <> 1;

-- Running it again finds nothing to do: no row is enriched twice.
SELECT sum(rows_enriched) FROM (
	SELECT (anomali_enrich_batch('stored', 'ev', 'bulk', '(0,0)', 1000)).rows_enriched
) s;
SELECT anomali_enrich_batch('stored', 'ev', 'nope', '(0,0)', 10);
SELECT anomali_enrich_batch('stored', 'ev', 'bulk', '(0,0)', 0);

-- Rows the step cannot enrich are skipped, never a crash: NULL, not an object.
CREATE TABLE odd (id int PRIMARY KEY, ev jsonb);
INSERT INTO odd VALUES (1, NULL), (2, '[1, 2]'), (3, '"text"'), (4, '{"ip": "198.51.100.7"}');
SELECT rows_seen, rows_enriched FROM anomali_enrich_batch('odd', 'ev', 'bulk', '(0,0)', 100);
SELECT id, ev #>> '{arcanna,ioc,global,result}' AS result FROM odd ORDER BY id;

-- A partitioned table is refused (ctid is unique only within a partition);
-- each partition can be enriched on its own.
CREATE TABLE parted (id int, ev jsonb) PARTITION BY RANGE (id);
CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (1000);
CREATE TABLE parted_2 PARTITION OF parted FOR VALUES FROM (1000) TO (2000);
BEGIN;
INSERT INTO parted SELECT i, jsonb_build_object('ip', '198.51.100.7', 'n', i) FROM generate_series(1, 5) i;
INSERT INTO parted SELECT i, jsonb_build_object('ip', '198.51.100.9', 'n', i) FROM generate_series(1001, 1005) i;
COMMIT;
CALL anomali_enrich_table('parted', 'ev', 'bulk');
SET client_min_messages = warning;
CALL anomali_enrich_table('parted_1', 'ev', 'bulk', batch_rows => 2);
CALL anomali_enrich_table('parted_2', 'ev', 'bulk', batch_rows => 2);
RESET client_min_messages;
SELECT id, (ev ->> 'n')::int = id AS own_event, ev ->> 'ip' AS ip,
       ev #>> '{arcanna,ioc,global,result}' AS result
  FROM parted ORDER BY id;

-- Two steps with the same display name but different paths both run; an
-- event that merely claims a step in global.steps is still enriched.
SELECT anomali_create_step('bulk_ip', '{"integration": "Sim", "ioc_fields": "ip"}');
SELECT anomali_create_step('bulk_d', '{"integration": "Sim", "ioc_fields": "d"}');
CREATE TABLE two (id int PRIMARY KEY, ev jsonb);
INSERT INTO two VALUES
	(1, '{"ip": "198.51.100.9", "d": "malicious.example.com"}'),
	(2, '{"ip": "198.51.100.9", "arcanna": {"ioc": {"global": {"steps": ["Sim"]}}}}');
SELECT rows_enriched FROM anomali_enrich_batch('two', 'ev', 'bulk_ip', '(0,0)', 100);
SELECT rows_enriched FROM anomali_enrich_batch('two', 'ev', 'bulk_d', '(0,0)', 100);
SELECT id, ev #>> '{arcanna,ioc,fields,ip,result}' AS ip, ev #>> '{arcanna,ioc,fields,d,result}' AS d,
       ev #>> '{arcanna,ioc,global,result}' AS result
  FROM two ORDER BY id;

-- Look-ahead.  A request carries batch_size observables; a batch whose last
-- request would be part full fills it with observables of the rows after it,
-- looked up and cached but not written, so the next batch finds them in the
-- cache.  13 rows: 10 unique addresses (one repeated), a NULL and a
-- non-object; batches of 3 rows, 4 addresses a request.
SET anomali_ts.batch_size = 4;
SELECT anomali_create_step('ahead', '{"integration": "Sim", "ioc_fields": "ip"}');
CREATE TABLE ahead_nocache (id int PRIMARY KEY, ev jsonb);
INSERT INTO ahead_nocache VALUES
	(1, '{"ip": "192.0.2.201"}'), (2, '{"ip": "192.0.2.202"}'), (3, '{"ip": "192.0.2.203"}'),
	(4, NULL), (5, '{"ip": "192.0.2.204"}'), (6, '{"ip": "192.0.2.201"}'),
	(7, '{"ip": "192.0.2.205"}'), (8, '{"ip": "192.0.2.206"}'), (9, '{"ip": "192.0.2.207"}'),
	(10, '"text"'), (11, '{"ip": "192.0.2.208"}'), (12, '{"ip": "192.0.2.209"}'),
	(13, '{"ip": "192.0.2.210"}');
CREATE TABLE ahead (LIKE ahead_nocache INCLUDING ALL);
INSERT INTO ahead SELECT * FROM ahead_nocache ORDER BY id;

-- Without a cache to keep answers for later batches there is no look-ahead:
-- each of the 5 batches with addresses sends its own part-full request.
SET client_min_messages = warning;
SELECT requests AS before FROM anomali_session_stats() \gset
CALL anomali_enrich_table('ahead_nocache', 'ev', 'ahead', batch_rows => 3);
SELECT requests - :before AS requests FROM anomali_session_stats();

-- With the cache: ceil(10 / 4) = 3 requests for the whole table.
RESET anomali_ts.cache_ttl;
SELECT requests AS before FROM anomali_session_stats() \gset
CALL anomali_enrich_table('ahead', 'ev', 'ahead', batch_rows => 3);
SELECT requests - :before AS requests FROM anomali_session_stats();

-- A second call finds every row done and sends nothing.
SELECT requests AS before FROM anomali_session_stats() \gset
CALL anomali_enrich_table('ahead', 'ev', 'ahead', batch_rows => 3);
SELECT requests - :before AS requests FROM anomali_session_stats();
RESET client_min_messages;

-- Each row was written once, as without look-ahead.
SELECT id, a.ev #>> '{arcanna,ioc,global,result}' AS result,
       jsonb_array_length(a.ev #> '{arcanna,ioc,global,steps}') AS steps,
       (a.ev #>> '{arcanna,ioc,global,result}') IS NOT DISTINCT FROM
       (n.ev #>> '{arcanna,ioc,global,result}') AS same_without
  FROM ahead a JOIN ahead_nocache n USING (id) ORDER BY id;

-- One batch of 3 rows asks about its 3 addresses and, in the same request,
-- about row 4's, which it caches but does not write; row 5's is not asked.
CREATE TABLE ahead_one (id int PRIMARY KEY, ev jsonb);
INSERT INTO ahead_one
SELECT i, jsonb_build_object('ip', '192.0.2.' || (210 + i)) FROM generate_series(1, 5) i;
SELECT rows_seen, rows_enriched, observables, requests
  FROM anomali_enrich_batch('ahead_one', 'ev', 'ahead', '(0,0)', 3);
SELECT value AS cached FROM anomali_cache_contents()
 WHERE value IN (SELECT ev ->> 'ip' FROM ahead_one) ORDER BY value;
SELECT id, ev ? 'arcanna' AS written FROM ahead_one ORDER BY id;
RESET anomali_ts.batch_size;

-- Each batch reads only the pages it needs: a TID range scan returns rows
-- in no order the planner knows, so a batch that read "every row after
-- the last one" would read and sort the rest of the table each time, and
-- 3,000 rows in batches of 100 would read about 45,000 row versions.
SET anomali_ts.cache_ttl = '1h';
CREATE TABLE long_stored (id int, ev jsonb);
INSERT INTO long_stored
SELECT i, jsonb_build_object('ip', '198.51.100.' || (1 + i % 20)) FROM generate_series(1, 3000) i;
ANALYZE long_stored;
SELECT pg_stat_force_next_flush();
SELECT seq_tup_read AS reads_before FROM pg_stat_user_tables WHERE relname = 'long_stored' \gset
SET client_min_messages = warning;
CALL anomali_enrich_table('long_stored', 'ev', 'bulk', batch_rows => 100);
RESET client_min_messages;
SELECT pg_stat_force_next_flush();
SELECT (SELECT seq_tup_read FROM pg_stat_user_tables WHERE relname = 'long_stored') - :reads_before
         < 3 * 3000 AS each_row_read_a_few_times_at_most,
       (SELECT count(*) FROM long_stored
         WHERE ev #> '{arcanna,ioc,global,steps}' ? 'Bulk') AS enriched;
