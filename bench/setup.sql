-- Benchmark setup, run once per cluster by scripts/bench.sh.
--
-- psql variables: benchdir, events_file (COPY text file written by
-- make_events.py), copy_file (where the plain COPY input is written),
-- latency_ms, ioc_fields.  Environment: SIM_USER, SIM_KEY, SIM_PORT.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
-- The statements below carry the simulator's key: keep them out of the log.
SET log_statement = 'none';
SET log_min_error_statement = 'panic';

CREATE EXTENSION anomali_ts CASCADE;
CREATE EXTENSION plpython3u;
CREATE SCHEMA bench;

-- The events, in a staging table of jsonb, and as a COPY file for A (COPY)
CREATE TABLE bench.staging (id integer PRIMARY KEY, ev jsonb NOT NULL);
COPY bench.staging (id, ev) FROM :'events_file';
VACUUM ANALYZE bench.staging;
COPY (SELECT ev FROM bench.staging ORDER BY id) TO :'copy_file';

-- One integration and one step per scenario, all on the simulator with the
-- same latency; the tag in the URL lets the simulator count each apart.
\getenv sim_user SIM_USER
\getenv sim_key SIM_KEY
\getenv sim_port SIM_PORT
\set sim_base 'http://127.0.0.1:' :sim_port
SELECT anomali_ts.anomali_create_integration(
		'bench_' || t, :'sim_user', :'sim_key',
		format('%s/opt/latency_ms=%s,tag=%s/api/v2/intelligence/', :'sim_base', :'latency_ms', t))
  FROM unnest(ARRAY['B', 'C', 'E', 'F', 'M']) t;
SELECT anomali_ts.anomali_create_step('bench_' || t,
		jsonb_build_object('integration', 'bench_' || t,
						   'display_name', 'ThreatStream',
						   'ioc_fields', :'ioc_fields'))
  FROM unnest(ARRAY['B', 'C', 'E']) t;
-- F: the same step, asynchronous
SELECT anomali_ts.anomali_create_step('bench_F',
		jsonb_build_object('integration', 'bench_F',
						   'display_name', 'ThreatStream',
						   'ioc_fields', :'ioc_fields'),
		mode => 'async');
-- B (lean), for information: the same step writing only the results
SELECT anomali_ts.anomali_create_step('bench_B_lean',
		jsonb_build_object('integration', 'bench_B',
						   'display_name', 'ThreatStream',
						   'ioc_fields', :'ioc_fields',
						   'exposed_fields', jsonb_build_array('result', 'is_malicious')));

-- Event tables: an identity column and the jsonb event, no index.
CREATE TABLE bench.ev_a_insert (id bigint GENERATED ALWAYS AS IDENTITY, ev jsonb);
CREATE TABLE bench.ev_a_copy (LIKE bench.ev_a_insert INCLUDING ALL);
CREATE TABLE bench.ev_b (LIKE bench.ev_a_insert INCLUDING ALL);
CREATE TABLE bench.ev_b_copy (LIKE bench.ev_a_insert INCLUDING ALL);
CREATE TABLE bench.ev_b_lean (LIKE bench.ev_a_insert INCLUDING ALL);
CREATE TABLE bench.ev_c (LIKE bench.ev_a_insert INCLUDING ALL);
CREATE TABLE bench.ev_d0 (LIKE bench.ev_a_insert INCLUDING ALL);
CREATE TABLE bench.ev_d1 (LIKE bench.ev_a_insert INCLUDING ALL);
CREATE TABLE bench.ev_e (LIKE bench.ev_a_insert INCLUDING ALL);
CREATE TABLE bench.ev_f (LIKE bench.ev_a_insert INCLUDING ALL);
CREATE TABLE bench.ev_a_rows (LIKE bench.ev_a_insert INCLUDING ALL);
CREATE TABLE bench.ev_f_rows (LIKE bench.ev_a_insert INCLUDING ALL);

SELECT anomali_ts.anomali_attach_step('bench.ev_b', 'ev', 'bench_B');
-- ev_b_copy gets the same trigger under the same step (trigger names are
-- per table)
SELECT anomali_ts.anomali_attach_step('bench.ev_b_copy', 'ev', 'bench_B');
SELECT anomali_ts.anomali_attach_step('bench.ev_b_lean', 'ev', 'bench_B_lean');
-- B (lz4), for information: B's step, the column compressed with lz4
CREATE TABLE bench.ev_b_lz4 (LIKE bench.ev_a_insert INCLUDING ALL);
ALTER TABLE bench.ev_b_lz4 ALTER COLUMN ev SET COMPRESSION lz4;
SELECT anomali_ts.anomali_attach_step('bench.ev_b_lz4', 'ev', 'bench_B');
SELECT anomali_ts.anomali_attach_step('bench.ev_c', 'ev', 'bench_C');
SELECT anomali_ts.anomali_attach_step('bench.ev_f', 'ev', 'bench_F');
SELECT anomali_ts.anomali_attach_step('bench.ev_f_rows', 'ev', 'bench_F');

-- The PL/Python baseline
\ir py_trigger.sql
INSERT INTO bench.py_conf (base_url, latency_ms, auth, fields)
VALUES (:'sim_base', :'latency_ms', 'apikey ' || :'sim_user' || ':' || :'sim_key', :'ioc_fields');
CREATE TRIGGER py_enrich BEFORE INSERT ON bench.ev_d0
	FOR EACH ROW EXECUTE FUNCTION bench.py_enrich('nocache', 'D0');
CREATE TRIGGER py_enrich BEFORE INSERT ON bench.ev_d1
	FOR EACH ROW EXECUTE FUNCTION bench.py_enrich('cache', 'D1');

-- (E loads its stored rows itself, before each of its runs.)
CHECKPOINT;
