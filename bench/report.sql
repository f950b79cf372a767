-- Included at the end of every measurement: one machine-readable line
--   RESULT|label|events|seconds|VmHWM kB|VmRSS kB|RssAnon kB|requests|connections
-- from psql variables label, n, t0 and t1 (clock_timestamp() before and
-- after the measured statement), this backend's /proc/<pid>/status (pid
-- from pg_backend_pid(); every measurement is its own session, so VmHWM,
-- the peak resident size, belongs to that measurement alone), and
-- anomali_session_stats(): the HTTP requests this backend's client sent and
-- the connections it opened (zero for the PL/Python sessions, whose
-- requests only the simulator counts).
SELECT format('RESULT|%s|%s|%s|%s|%s|%s|%s|%s', :'label', :'n',
			  extract(epoch FROM :'t1'::timestamptz - :'t0'::timestamptz),
			  substring(s FROM 'VmHWM:\s*(\d+)'),
			  substring(s FROM 'VmRSS:\s*(\d+)'),
			  substring(s FROM 'RssAnon:\s*(\d+)'),
			  st.requests, st.connections)
  FROM pg_read_file('/proc/' || pg_backend_pid() || '/status') s,
	   anomali_ts.anomali_session_stats() st;
