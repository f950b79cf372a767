-- A cancel request interrupts a transfer promptly with PostgreSQL's own
-- error, and the backend stays usable.  A second session (dblink) runs a
-- lookup against a peer that never answers; this one cancels it.
SET search_path = public, anomali_ts;
CREATE EXTENSION dblink;
\getenv port PGPORT
\getenv host PGHOST
SELECT dblink_connect('other', format('host=%s port=%s dbname=%s user=postgres',
                                      :'host', :'port', current_database()));
SELECT dblink_exec('other', 'SET anomali_ts.request_timeout = ''60s''');
SELECT dblink_exec('other', 'SET anomali_ts.skip_non_public = off');
SELECT dblink_exec('other', 'SET search_path = public, anomali_ts');
SELECT pid AS other_pid FROM dblink('other', 'SELECT pg_backend_pid()') AS t(pid int) \gset

SELECT dblink_send_query('other',
	'SELECT anomali_enrich(''{"ip": "198.51.100.7"}'', ''{"integration": "Hang", "ioc_fields": "ip"}'')');
-- Wait (20 s at most) until the other session waits inside the transfer.
CREATE FUNCTION wait_for_transfer(backend int) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1..400 LOOP
		IF EXISTS (SELECT 1 FROM pg_stat_activity
		            WHERE pid = backend AND wait_event_type = 'Extension') THEN
			RETURN true;
		END IF;
		PERFORM pg_sleep(0.05);
	END LOOP;
	RETURN false;
END $$;
SELECT wait_for_transfer(:other_pid) AS in_transfer;

SELECT clock_timestamp() AS cancelled_at \gset
SELECT pg_cancel_backend(:other_pid);
-- The result is PostgreSQL's own cancel error (SQLSTATE 57014).
\set VERBOSITY sqlstate
SELECT * FROM dblink_get_result('other') AS t(ev jsonb);
\set VERBOSITY default
SELECT clock_timestamp() - :'cancelled_at'::timestamptz < interval '1 second' AS within_a_second;
SELECT dblink_error_message('other') LIKE '%canceling statement due to user request%' AS own_message;
SELECT * FROM dblink_get_result('other') AS t(ev jsonb);

-- The other backend is still usable, and enriches again.
SELECT * FROM dblink('other', $q$SELECT anomali_enrich('{"ip": "198.51.100.7"}',
	'{"integration": "Sim", "ioc_fields": "ip"}') #>> '{arcanna,ioc,global,result}'$q$) AS t(r text);
SELECT dblink_disconnect('other');
DROP EXTENSION dblink;
DROP FUNCTION wait_for_transfer(int);
