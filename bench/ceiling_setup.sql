-- The ceilings of B and F: the rows they store, stored without them.
--
-- Run after B's warm-up (the cache holds every observable).  The trigger
-- of B writes its output once more into bench.ev_b, and the asynchronous
-- step of F marks its pending rows into bench.ev_f_mark; both are copied,
-- in the same transaction, into staging tables whose column is never
-- compressed (STORAGE PLAIN), decompressed, so that inserting them
-- elsewhere costs what storing B's and F's rows costs (compression
-- included) and nothing more.
\set ON_ERROR_STOP on
SET client_min_messages = warning;

CREATE TABLE bench.staging_enriched (id bigint PRIMARY KEY, ev jsonb NOT NULL);
CREATE TABLE bench.staging_pending (id bigint PRIMARY KEY, ev jsonb NOT NULL);
ALTER TABLE bench.staging_enriched ALTER COLUMN ev SET STORAGE PLAIN;
ALTER TABLE bench.staging_pending ALTER COLUMN ev SET STORAGE PLAIN;

BEGIN;
TRUNCATE bench.ev_b;
INSERT INTO bench.ev_b (ev) SELECT ev FROM bench.staging ORDER BY id;
-- (ev was compressed as ev_b stored it; the text round trip gives the same
-- jsonb, uncompressed, so the ceiling's insert must compress it again)
INSERT INTO bench.staging_enriched SELECT id, ev::text::jsonb FROM bench.ev_b;
TRUNCATE bench.ev_b;
COMMIT;

-- The pending rows are copied before the commit that would queue them; the
-- table is emptied in the same transaction, so nothing is queued.
CREATE TABLE bench.ev_f_mark (LIKE bench.ev_a_insert INCLUDING ALL);
SELECT anomali_ts.anomali_attach_step('bench.ev_f_mark', 'ev', 'bench_F') \gset
BEGIN;
INSERT INTO bench.ev_f_mark (ev) SELECT ev FROM bench.staging ORDER BY id;
INSERT INTO bench.staging_pending SELECT id, ev::text::jsonb FROM bench.ev_f_mark;
TRUNCATE bench.ev_f_mark;
COMMIT;

VACUUM ANALYZE bench.staging_enriched;
VACUUM ANALYZE bench.staging_pending;

-- The targets: a plain table, and one with the queue index an asynchronous
-- step's table has, but no trigger.
CREATE TABLE bench.ev_a_enriched (LIKE bench.ev_a_insert INCLUDING ALL);
CREATE TABLE bench.ev_a_pending (LIKE bench.ev_a_insert INCLUDING ALL);
SELECT anomali_ts.anomali_create_queue_index('bench.ev_a_pending', 'ev') \gset
SELECT count(*) FILTER (WHERE ev #>> '{arcanna,ioc,global,pending_step}' IS NOT NULL) AS pending,
       count(*) AS rows
  FROM bench.staging_pending;
SELECT count(*) FILTER (WHERE ev #>> '{arcanna,ioc,global,steps,0}' = 'ThreatStream') AS enriched,
       count(*) AS rows
  FROM bench.staging_enriched;
