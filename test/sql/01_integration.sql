-- Installation, integrations with encrypted keys, and the health check.
CREATE EXTENSION anomali_ts CASCADE;
SELECT extname FROM pg_extension WHERE extname IN ('anomali_ts', 'pgcrypto') ORDER BY 1;
SET search_path = public, anomali_ts;

\getenv sim_url ANOMALI_SIM_URL
\getenv sim_user ANOMALI_SIM_USER
\getenv sim_key ANOMALI_SIM_KEY
\getenv sim_base ANOMALI_SIM_BASE

-- Statements that carry the clear key are kept out of the server log.
SET log_statement = 'none';
SET log_min_error_statement = 'panic';

-- A wrong key is refused by the health check, with SQLSTATE 28000.
-- (Messages that name the simulator's random port are shown by SQLSTATE.)
\set VERBOSITY sqlstate
SELECT anomali_create_integration('Sim', :'sim_user', 'wrong-key', :'sim_url');
-- Nothing is listening: refused as a connection failure (08006).
SELECT anomali_create_integration('Sim', :'sim_user', :'sim_key', 'http://127.0.0.1:9/api/v2/intelligence/');
\set VERBOSITY default
-- The right key passes, and the URL gets its trailing slash either way.
-- (The first key creates the master key file; its NOTICE names a temporary path.)
SET client_min_messages = warning;
SELECT anomali_create_integration('Sim', :'sim_user', :'sim_key', rtrim(:'sim_url', '/'));
RESET client_min_messages;
SELECT count(*) FROM pg_ls_dir('.') AS f WHERE f = 'anomali_ts_master.key';
-- The same title twice is refused.
SELECT anomali_create_integration('Sim', :'sim_user', :'sim_key', :'sim_url');
-- Skipping the check stores a row for a remote that is down.
SELECT anomali_create_integration('Down', :'sim_user', :'sim_key',
	'http://127.0.0.1:9/api/v2/intelligence/', skip_health_check => true);
-- Fault integrations used by later tests, distinguished by their URL.
SELECT anomali_create_integration('Sim500', :'sim_user', :'sim_key',
	:'sim_base' || '/opt/tag=s500,status=500/api/v2/intelligence/', skip_health_check => true);
SELECT anomali_create_integration('SimBadKey', :'sim_user', 'not-the-key', :'sim_url',
	skip_health_check => true);
-- Header injection through the key or username is refused.
SELECT anomali_create_integration('Evil', :'sim_user', E'key\r\nX-Injected: 1', :'sim_url');
SELECT anomali_create_integration('Evil', E'a b', :'sim_key', :'sim_url');

-- The key is stored only as ciphertext, under master key 1.
SELECT title, username, ssl_verify, key_id,
       position(convert_to(:'sim_key', 'UTF8') in api_key_ciphertext) = 0 AS key_not_in_clear,
       api_url = :'sim_url' AS url_normalised
  FROM integration ORDER BY title;

RESET log_statement;
RESET log_min_error_statement;

-- Bad URLs are refused with a reason.
SELECT anomali_create_integration('Bad', 'u', 'k', 'ftp://example.com/x');
SELECT anomali_create_integration('Bad', 'u', 'k', 'https://user:pw@example.com/api/');
SELECT anomali_create_integration('Bad', 'u', 'k', 'https://example.com/api/?api_key=1');
SELECT anomali_create_integration('Bad', 'u', 'k', 'not a url');

-- The view has no key material.
SELECT column_name FROM information_schema.columns
 WHERE table_schema = 'anomali_ts' AND table_name = 'integrations' ORDER BY ordinal_position;

-- Health: reported, never raised.
SELECT title, reachable, credentials_accepted, http_status,
       regexp_replace(message, 'after \d+ ms', 'after N ms') AS message, circuit,
       latency_ms >= 0 AS has_latency
  FROM anomali_health() ORDER BY title;
SELECT title, reachable, credentials_accepted FROM anomali_health('Sim');
SELECT * FROM anomali_health('Nope');

-- Changing the URL runs the health check again.
\set VERBOSITY terse
SELECT anomali_alter_integration('Down', api_url => 'http://127.0.0.1:9/other/');
\set VERBOSITY default
SELECT anomali_alter_integration('Down', api_url => 'http://127.0.0.1:9/other/', skip_health_check => true);
SELECT api_url FROM integrations WHERE title = 'Down';
-- Turning verification off is explicit and warned about.
SELECT anomali_alter_integration('Down', ssl_verify => false, skip_health_check => true);
SELECT ssl_verify FROM integrations WHERE title = 'Down';

-- Rotation re-encrypts every key under a new master key; purge drops the old one.
SELECT anomali_rotate_master_key();
SELECT DISTINCT key_id FROM integration;
SELECT anomali_purge_master_keys();
SELECT credentials_accepted FROM anomali_health('Sim');
-- Purging in the transaction that rotated is refused: a rollback would
-- bring back ciphertexts whose master key was gone.
BEGIN;
SELECT anomali_rotate_master_key();
SELECT anomali_purge_master_keys();
ROLLBACK;
SELECT DISTINCT key_id FROM integration;
SELECT credentials_accepted FROM anomali_health('Sim');

-- Drop.
SELECT anomali_drop_integration('Down');
SELECT anomali_drop_integration('Down');
SELECT anomali_drop_integration('Down', if_exists => true);
SELECT count(*) FROM integrations;
