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
