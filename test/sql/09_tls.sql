-- TLS: verified by default, a private CA through anomali_ts.ca_bundle, and
-- verification switched off only explicitly, with a warning.
SET search_path = public, anomali_ts;
SET anomali_ts.skip_non_public = off;
\getenv tls_url ANOMALI_TLS_URL
\getenv tls_ca ANOMALI_TLS_CA
\getenv sim_user ANOMALI_SIM_USER
\getenv sim_key ANOMALI_SIM_KEY

SET log_statement = 'none';
SET log_min_error_statement = 'panic';
-- Verification on, without the CA: the health check refuses the certificate.
\set VERBOSITY sqlstate
SELECT anomali_create_integration('Tls', :'sim_user', :'sim_key', :'tls_url');
\set VERBOSITY default
SELECT anomali_create_integration('Tls', :'sim_user', :'sim_key', :'tls_url',
	skip_health_check => true);
-- Verification off: accepted with a warning.
SELECT anomali_create_integration('TlsNoVerify', :'sim_user', :'sim_key', :'tls_url',
	ssl_verify => false);
RESET log_statement;
RESET log_min_error_statement;

SELECT title, reachable, credentials_accepted, message LIKE 'unreachable: SSL certificate problem%' AS tls_error
  FROM anomali_health('Tls');
SELECT ev #>> '{arcanna,ioc,global,result}' AS result,
       ev #>> '{arcanna,ioc,fields,ip,observables,0,error}' LIKE '%SSL certificate problem%' AS tls_error
  FROM anomali_enrich('{"ip": "198.51.100.7"}', '{"integration": "Tls", "ioc_fields": "ip"}') ev;

-- With the test CA configured: verified and working.
SET anomali_ts.ca_bundle = :'tls_ca';
SELECT title, reachable, credentials_accepted, message FROM anomali_health('Tls');
SELECT anomali_enrich('{"ip": "198.51.100.7"}', '{"integration": "Tls", "ioc_fields": "ip"}')
	#>> '{arcanna,ioc,global,result}' AS with_ca;
RESET anomali_ts.ca_bundle;

-- Verification off works without the CA.
SELECT anomali_enrich('{"ip": "198.51.100.7"}', '{"integration": "TlsNoVerify", "ioc_fields": "ip"}')
	#>> '{arcanna,ioc,global,result}' AS without_verification;
