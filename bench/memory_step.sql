-- One tenth of the memory run (included ten times by memory.sql).
SELECT count(anomali_ts.anomali_enrich(m.ev, :'cfg')) AS done
  FROM mem_set m, generate_series(1, :passes) g \gset
SELECT format('MEM|step %s|%s|%s|%s|%s', :step, :done * :step,
			  substring(s FROM 'VmRSS:\s*(\d+)'), substring(s FROM 'RssAnon:\s*(\d+)'),
			  extract(epoch FROM clock_timestamp()))
  FROM pg_read_file('/proc/' || pg_backend_pid() || '/status') s;
SELECT :step + 1 AS step \gset
