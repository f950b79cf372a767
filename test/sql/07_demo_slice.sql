-- The main job's path on a slice of the bundled Zeek events, with the
-- report's numbers checked against counts computed independently from the
-- raw events and the documented list of malicious demo indicators.
SET search_path = public, anomali_ts;
\getenv sim_url ANOMALI_SIM_URL
\getenv sim_user ANOMALI_SIM_USER
\getenv sim_key ANOMALI_SIM_KEY

SET log_statement = 'none';
SET log_min_error_statement = 'panic';
SELECT anomali_create_integration('Demo', :'sim_user', :'sim_key', :'sim_url');
RESET log_statement;
RESET log_min_error_statement;

SELECT anomali_create_step('demo', '{"integration": "Demo",
	"ioc_fields": "id.resp_h, id.orig_h, query, answers.[*], server_name, cert_chain_fps.[*]"}');
CREATE TABLE zeek_events (id bigserial PRIMARY KEY, ev jsonb NOT NULL);
SELECT anomali_attach_step('zeek_events', 'ev', 'demo');
SELECT count(*) FROM anomali_create_report_views('zeek_events', 'ev', 'zeek');

-- The same slice, raw, for the independent counts (files cut by the test command).
\getenv work ANOMALI_WORK
\set slice :work '/demo-slice.ndjson'
\set hits :work '/demo-hits.json'
CREATE TABLE raw_events (ev jsonb NOT NULL);
COPY raw_events FROM :'slice' WITH (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02');
COPY zeek_events (ev) FROM :'slice' WITH (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02');

-- The observables the demo's intelligence marks malicious at threshold 50.
CREATE TABLE demo_hits (doc jsonb);
COPY demo_hits FROM :'hits' WITH (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02');
CREATE TABLE malicious_values AS
SELECT lower(h ->> 'value') AS value FROM demo_hits, jsonb_array_elements(doc) h
 WHERE h ->> 'expected_verdict_at_threshold_50' = 'malicious';

-- Every value at the configured paths of a raw event, read without anomali_ts.
CREATE VIEW raw_values AS
SELECT r.ctid AS row_ctid, lower(v) AS value
  FROM raw_events r,
       LATERAL (SELECT r.ev ->> 'id.resp_h' UNION ALL SELECT r.ev ->> 'id.orig_h'
                UNION ALL SELECT r.ev ->> 'query' UNION ALL SELECT r.ev ->> 'server_name'
                UNION ALL SELECT jsonb_array_elements_text(coalesce(r.ev -> 'answers', '[]'))
                UNION ALL SELECT jsonb_array_elements_text(coalesce(r.ev -> 'cert_chain_fps', '[]'))) x(v)
 WHERE v IS NOT NULL;

-- Events enriched, and malicious events: report versus independent count.
SELECT (SELECT count(*) FROM zeek_events WHERE ev ? 'arcanna') AS enriched,
       (SELECT count(*) FROM raw_events) AS raw_events;
SELECT (SELECT events FROM zeek_ioc_results WHERE result = 'malicious') AS report_malicious,
       (SELECT count(DISTINCT row_ctid) FROM raw_values WHERE value IN (SELECT value FROM malicious_values))
         AS independent_malicious;

-- Per malicious observable: events in the report versus in the raw events.
SELECT t.observable, t.events AS report_events, i.events AS independent_events
  FROM zeek_ioc_top_observables t
  FULL JOIN (SELECT value, count(DISTINCT row_ctid) AS events FROM raw_values
              WHERE value IN (SELECT value FROM malicious_values) GROUP BY value) i
    ON i.value = t.observable
 ORDER BY 1;

-- No lookup failed, and every event's verdict is one of the documented results.
SELECT * FROM zeek_ioc_errors;
SELECT result, events > 0 AS present FROM zeek_ioc_results ORDER BY 1;
SELECT observables_failed, observables_seen > 0 AS saw_observables,
       observables_answered <= observables_seen AS consistent
  FROM zeek_ioc_lookups;
