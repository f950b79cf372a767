-- Saved enrichment steps and the trigger that enriches rows as they arrive.
SET search_path = public, anomali_ts;
\set SHOW_CONTEXT never
SET anomali_ts.skip_non_public = off;

-- Steps are validated when saved.
SELECT anomali_create_step('bad', '{"integration": "Nope", "ioc_fields": "ip"}');
SELECT anomali_create_step('bad', '{"integration": "Sim", "ioc_fields": "ip", "threshold": 3}');
SELECT anomali_create_step('ts', '{"integration": "Sim", "display_name": "ThreatStream",
	"ioc_fields": "source.ip, destination.ip, dns.answers.[*]"}');
SELECT anomali_create_step('ts', '{"integration": "Sim", "ioc_fields": "ip"}');
SELECT name, integration, enabled, strict FROM steps;

CREATE TABLE events (id serial PRIMARY KEY, ev jsonb, note text);
SELECT anomali_attach_step('events', 'ev', 'ts');
SELECT anomali_attach_step('events', 'note', 'ts');
SELECT anomali_attach_step('events', 'nope', 'ts');
SELECT anomali_attach_step('events', 'ev', 'missing');

-- Single-row and multi-row INSERT.
INSERT INTO events (ev) VALUES ('{"source": {"ip": "198.51.100.7"}, "destination": {"ip": "198.51.100.99"}}');
INSERT INTO events (ev) VALUES
	('{"source": {"ip": "198.51.100.9"}}'),
	('{"dns": {"answers": ["malicious.example.com", "clean.example.org"]}}'),
	('{"nothing": "here"}'),
	(NULL);
-- COPY.
COPY events (ev) FROM stdin;
{"destination": {"ip": "2001:db8::1"}}
{"source": {"ip": "203.0.113.7"}, "destination": {"ip": "203.0.113.7"}}
\.

SELECT id, ev #>> '{arcanna,ioc,global,result}' AS global,
       ev #>> '{arcanna,ioc,fields,source.ip,result}' AS source_ip,
       ev #>> '{arcanna,ioc,fields,destination.ip,result}' AS destination_ip,
       ev #>> '{arcanna,ioc,fields,dns.answers.[*],result}' AS answers,
       ev #>> '{arcanna,ioc,global,display_name}' AS display_name
  FROM events ORDER BY id;

-- Dashboard-style queries work on the stored results.
SELECT ev #>> '{arcanna,ioc,global,result}' AS result, count(*)
  FROM events WHERE ev IS NOT NULL GROUP BY 1 ORDER BY 1;
SELECT o->>'value' AS malicious_observable, count(*)
  FROM events, jsonb_each(ev->'arcanna'->'ioc'->'fields') f,
       jsonb_array_elements(f.value->'observables') o
 WHERE o->>'result' = 'malicious' GROUP BY 1 ORDER BY 1;

-- A disabled step leaves rows untouched; enabling it uses the same configuration.
SELECT anomali_disable_step('ts');
INSERT INTO events (ev) VALUES ('{"source": {"ip": "198.51.100.7"}}') RETURNING ev;
SELECT anomali_enable_step('ts');
SELECT config->>'display_name' FROM steps WHERE name = 'ts';
INSERT INTO events (ev) VALUES ('{"source": {"ip": "198.51.100.7"}}')
	RETURNING ev #>> '{arcanna,ioc,global,result}';

-- Altering the step changes what the next row gets.
SELECT anomali_alter_step('ts', '{"integration": "Sim", "display_name": "Strict90",
	"ioc_fields": "source.ip", "confidence_threshold": 95}');
INSERT INTO events (ev) VALUES ('{"source": {"ip": "198.51.100.7"}}')
	RETURNING ev #>> '{arcanna,ioc,global,display_name}', ev #>> '{arcanna,ioc,global,result}';
SELECT anomali_alter_step('nope', '{"integration": "Sim", "ioc_fields": "a"}');

-- A value that is not a JSON object is stored as it is, with a warning.
INSERT INTO events (ev) VALUES ('[1, 2, 3]') RETURNING ev;

-- Dropping the step: rows are stored unenriched, with a warning.
SELECT anomali_drop_step('ts');
INSERT INTO events (ev) VALUES ('{"source": {"ip": "198.51.100.7"}}') RETURNING ev;
SELECT anomali_drop_step('ts');
SELECT anomali_drop_step('ts', if_exists => true);

-- A failing remote never fails or loses the insert: the error is recorded.
SELECT anomali_create_step('down', '{"integration": "Sim500", "ioc_fields": "ip"}');
CREATE TABLE events2 (id serial, ev jsonb);
SELECT anomali_attach_step('events2', 'ev', 'down');
INSERT INTO events2 (ev) VALUES ('{"ip": "198.51.100.7"}'), ('{"ip": "198.51.100.8"}');
SELECT id, ev #>> '{arcanna,ioc,global,result}' AS global,
       ev #>> '{arcanna,ioc,fields,ip,observables,0,error}' AS error
  FROM events2 ORDER BY id;
-- A strict step raises instead, and the row is not stored.
SELECT anomali_alter_step('down', strict => true);
INSERT INTO events2 (ev) VALUES ('{"ip": "198.51.100.7"}');
SELECT count(*) FROM events2;

-- The trigger can also run on UPDATE, to re-enrich stored rows.
SELECT anomali_create_step('upd', '{"integration": "Sim", "ioc_fields": "ip"}');
CREATE TABLE events3 (ev jsonb);
INSERT INTO events3 VALUES ('{"ip": "198.51.100.7"}');
SELECT anomali_attach_step('events3', 'ev', 'upd', on_update => true);
UPDATE events3 SET ev = ev;
SELECT ev #>> '{arcanna,ioc,global,result}' FROM events3;
SELECT anomali_detach_step('events3', 'upd');

-- An asynchronous step marks rows with its own name: it must be the only
-- step on its column, and it cannot be attached to a partitioned table.
SELECT anomali_create_step('later', '{"integration": "Sim", "ioc_fields": "ip"}', mode => 'async');
SELECT anomali_attach_step('events2', 'ev', 'later');
CREATE TABLE parted_events (id int, ev jsonb) PARTITION BY RANGE (id);
SELECT anomali_attach_step('parted_events', 'ev', 'later');
SELECT anomali_attach_step('events3', 'ev', 'later');
SELECT anomali_create_step('other', '{"integration": "Sim", "ioc_fields": "ip"}');
SELECT anomali_attach_step('events3', 'ev', 'other');
SELECT relid::regclass, column_name, step_name FROM attachment ORDER BY 1, 3;

-- The queue index exists only where an asynchronous step is attached:
-- events (sync steps only) has none, events3 (async) has one, and a sync
-- step switched to async gets one on each of its tables.
SELECT c.relname AS tbl, i.indexrelid::regclass AS queue_index
  FROM pg_class c LEFT JOIN pg_index i ON i.indrelid = c.oid
 WHERE c.relname IN ('events', 'events2', 'events3', 'events4') ORDER BY 1;
CREATE TABLE events4 (id serial, ev jsonb);
SELECT anomali_create_step('soon', '{"integration": "Sim", "ioc_fields": "ip"}');
SELECT anomali_attach_step('events4', 'ev', 'soon');
SELECT count(*) AS indexes_while_sync FROM pg_index WHERE indrelid = 'events4'::regclass;
SELECT anomali_alter_step('soon', mode => 'async');
SELECT indexrelid::regclass AS queue_index, pg_get_expr(indpred, indrelid) AS queued_rows
  FROM pg_index WHERE indrelid = 'events4'::regclass;

-- Switching to async skips an attachment whose column is gone (as the
-- worker does) instead of refusing the switch for every table.
CREATE TABLE events5 (ev jsonb);
CREATE TABLE stale_events (ev jsonb, other jsonb);
SELECT anomali_create_step('later2', '{"integration": "Sim", "ioc_fields": "ip"}');
SELECT anomali_attach_step('events5', 'ev', 'later2');
SELECT anomali_attach_step('stale_events', 'ev', 'later2');
ALTER TABLE stale_events DROP COLUMN ev;
SELECT anomali_alter_step('later2', mode => 'async');
SELECT mode FROM step WHERE name = 'later2';
SELECT count(*) AS events5_queue_indexes FROM pg_index WHERE indrelid = 'events5'::regclass;

-- A table whose name leaves no room for the suffix still gets its queue
-- index (PostgreSQL chooses the name), and so does each of two long
-- columns whose names would be cut to the same 63 bytes; attaching again
-- creates nothing more.
CREATE TABLE events_from_the_production_firewall_cluster_in_region_eu_west_2 (ev jsonb);
SELECT anomali_attach_step('events_from_the_production_firewall_cluster_in_region_eu_west_2', 'ev', 'later2');
SELECT count(*) AS queue_indexes
  FROM pg_index WHERE indrelid = 'events_from_the_production_firewall_cluster_in_region_eu_west_2'::regclass;
CREATE TABLE soc_events_collected_by_the_regional_collector
	(firewall_event_payload_primary jsonb, firewall_event_payload_secondary jsonb);
SELECT anomali_create_step('later3', '{"integration": "Sim", "ioc_fields": "ip"}', mode => 'async');
SELECT anomali_attach_step('soc_events_collected_by_the_regional_collector', 'firewall_event_payload_primary', 'later2');
SELECT anomali_attach_step('soc_events_collected_by_the_regional_collector', 'firewall_event_payload_secondary', 'later3');
SELECT anomali_create_queue_index('soc_events_collected_by_the_regional_collector', 'firewall_event_payload_primary');
SELECT pg_get_expr(indpred, indrelid) AS queued_rows
  FROM pg_index WHERE indrelid = 'soc_events_collected_by_the_regional_collector'::regclass
 ORDER BY 1;
-- The queue view, and so anomali_health(), skip the stale attachment too.
SELECT tbl, column_name, step_name, queued FROM queue WHERE step_name = 'later2' ORDER BY 1::text, 2;
SELECT count(*) AS health_rows FROM anomali_health('Sim');

-- A background worker cannot see a temporary table: no async step there.
CREATE TEMP TABLE temp_events (ev jsonb);
SELECT anomali_attach_step('temp_events', 'ev', 'later2');

-- Only an index of the queue's own shape counts as the queue index: a
-- user's unique index with the same predicate does not.
CREATE TABLE events6 (id int, ev jsonb);
CREATE UNIQUE INDEX events6_user ON events6 (id)
	WHERE ((ev #>> '{arcanna,ioc,global,pending_step}') IS NOT NULL);
SELECT anomali_attach_step('events6', 'ev', 'later2');
SELECT count(*) AS indexes FROM pg_index WHERE indrelid = 'events6'::regclass;
