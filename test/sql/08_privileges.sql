-- An ordinary pipeline role granted only what the README lists can insert
-- into an enriched table and read the results, and nothing more.
SET search_path = public, anomali_ts;
SET anomali_ts.skip_non_public = off;

CREATE ROLE pipeline;
CREATE ROLE dashboard;
CREATE TABLE alerts (id serial PRIMARY KEY, ev jsonb);
SELECT anomali_create_step('alerts', '{"integration": "Sim", "ioc_fields": "source.ip"}');
SELECT anomali_attach_step('alerts', 'ev', 'alerts');
SELECT count(*) FROM anomali_create_report_views('alerts', 'ev');
-- What the README says a pipeline role needs, and a dashboard role.
GRANT INSERT, SELECT ON alerts TO pipeline;
GRANT USAGE ON SEQUENCE alerts_id_seq TO pipeline;
GRANT SELECT ON alerts_ioc_results, alerts_ioc_top_observables TO dashboard;

SET ROLE pipeline;
SET anomali_ts.skip_non_public = off;
SET anomali_ts.allow_plain_http = on;
SET anomali_ts.ca_bundle = '/tmp/evil.pem';
SET anomali_ts.max_retries = 10;
SET anomali_ts.proxy = 'http://198.51.100.1:3128';
SET anomali_ts.request_timeout = '2s';
INSERT INTO alerts (ev) VALUES ('{"source": {"ip": "203.0.113.7"}}')
	RETURNING ev #>> '{arcanna,ioc,global,result}' AS result;
SELECT ev #>> '{arcanna,ioc,fields,source.ip,result}' FROM alerts;

-- Without the schema, nothing of the extension is reachable at all.
SELECT * FROM anomali_ts.integration;
RESET ROLE;
-- Even with USAGE on the schema (for instance to call anomali_classify),
-- every table and administrative function stays closed.
GRANT USAGE ON SCHEMA anomali_ts TO pipeline;
SET ROLE pipeline;
-- No key, no ciphertext, no integration or step changes, no other URL.
SELECT * FROM anomali_ts.integration;
SELECT api_key_ciphertext FROM anomali_ts.integration;
SELECT * FROM anomali_ts.integrations;
SELECT * FROM anomali_ts.step;
SELECT anomali_ts.anomali_create_integration('Mine', 'u', 'k', 'https://198.51.100.1/');
SELECT anomali_ts.anomali_alter_integration('Sim', api_url => 'https://198.51.100.1/');
SELECT anomali_ts.anomali_alter_integration('Sim', ssl_verify => false);
SELECT anomali_ts.anomali_set_integration_key('Sim', 'k');
SELECT anomali_ts.anomali_drop_integration('Sim');
SELECT anomali_ts.anomali_rotate_master_key();
SELECT anomali_ts.anomali_create_step('x', '{"integration": "Sim", "ioc_fields": "a"}');
SELECT anomali_ts.anomali_disable_step('alerts');
SELECT anomali_ts.anomali_enrich('{}', '{"integration": "Sim", "ioc_fields": "a"}');
SELECT * FROM anomali_ts.anomali_health();
SELECT anomali_ts.anomali_cache_clear();
UPDATE anomali_ts.integration SET api_url = 'https://198.51.100.1/';
SELECT pg_read_file('anomali_ts_master.key');
SELECT (anomali_ts.anomali_classify('hxxp://evil[.]example[.]com/x')).*;
-- Nor can it attach the enrichment trigger to a table of its own.
CREATE TEMP TABLE mine (ev jsonb);
CREATE TRIGGER mine_enrich BEFORE INSERT ON mine FOR EACH ROW
	EXECUTE FUNCTION anomali_ts.anomali_enrich_trigger('alerts', 'ev');
DROP TABLE mine;
RESET ROLE;
REVOKE USAGE ON SCHEMA anomali_ts FROM pipeline;

SET ROLE dashboard;
SELECT result, events FROM alerts_ioc_results ORDER BY 1;
SELECT observable, events FROM alerts_ioc_top_observables;
SELECT * FROM alerts;
RESET ROLE;

-- Nothing in the extension's tables or views holds the clear key.
\getenv sim_key ANOMALI_SIM_KEY
SET log_statement = 'none';
SET log_min_error_statement = 'panic';
SELECT count(*) AS rows_with_clear_key
  FROM (SELECT to_jsonb(i)::text AS t FROM anomali_ts.integration i
        UNION ALL SELECT to_jsonb(s)::text FROM anomali_ts.step s
        UNION ALL SELECT to_jsonb(v)::text FROM anomali_ts.integrations v
        UNION ALL SELECT ev::text FROM alerts
        UNION ALL SELECT query FROM pg_stat_activity WHERE pid <> pg_backend_pid()) x
 WHERE t LIKE '%' || :'sim_key' || '%';
RESET log_statement;
RESET log_min_error_statement;

DROP TABLE alerts CASCADE;
DROP ROLE pipeline;
DROP ROLE dashboard;
