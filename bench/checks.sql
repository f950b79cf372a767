-- After the measurements: what each variant wrote, so a fast but wrong
-- result cannot pass unnoticed.  One line per table and global result:
--   CHECK|table|result|events
-- and, for the tables that saw the same events (C, E, D1), the events each
-- calls malicious and the events on which the extension and the PL/Python
-- baseline disagree:
--   AGREE|pair|events both malicious|only first|only second
\set ON_ERROR_STOP on
SET client_min_messages = warning;
SELECT format('CHECK|%s|%s|%s', t, coalesce(r, '(none)'), count(*))
  FROM (SELECT 'B' t, ev #>> '{arcanna,ioc,global,result}' r FROM bench.ev_b
		UNION ALL SELECT 'B_copy', ev #>> '{arcanna,ioc,global,result}' FROM bench.ev_b_copy
		UNION ALL SELECT 'B_lean', ev #>> '{arcanna,ioc,global,result}' FROM bench.ev_b_lean
		UNION ALL SELECT 'B_lz4', ev #>> '{arcanna,ioc,global,result}' FROM bench.ev_b_lz4
		UNION ALL SELECT 'C', ev #>> '{arcanna,ioc,global,result}' FROM bench.ev_c
		UNION ALL SELECT 'E', ev #>> '{arcanna,ioc,global,result}' FROM bench.ev_e
		UNION ALL SELECT 'D0', ev #>> '{py_ioc,result}' FROM bench.ev_d0
		UNION ALL SELECT 'D1', ev #>> '{py_ioc,result}' FROM bench.ev_d1) x
 GROUP BY t, r ORDER BY t, r;

-- Rows are matched by the uid and ts of the Zeek event (the identity
-- columns differ between tables only by the warm-up's sequence use).
WITH c AS (SELECT ev ->> 'uid' u, ev ->> 'ts' ts, ev ->> '_write_ts' w,
				  ev #>> '{arcanna,ioc,global,result}' = 'malicious' m FROM bench.ev_c),
	 e AS (SELECT ev ->> 'uid' u, ev ->> 'ts' ts, ev ->> '_write_ts' w,
				  ev #>> '{arcanna,ioc,global,result}' = 'malicious' m FROM bench.ev_e),
	 d AS (SELECT ev ->> 'uid' u, ev ->> 'ts' ts, ev ->> '_write_ts' w,
				  ev #>> '{py_ioc,result}' = 'malicious' m FROM bench.ev_d1)
SELECT format('AGREE|%s|%s|%s|%s', pair,
			  count(*) FILTER (WHERE a AND b),
			  count(*) FILTER (WHERE a AND NOT b),
			  count(*) FILTER (WHERE b AND NOT a))
  FROM (SELECT 'C/D1' pair, c.m a, d.m b FROM c JOIN d USING (u, ts, w)
		UNION ALL
		SELECT 'E/D1', e.m, d.m FROM e JOIN d USING (u, ts, w)) j
 GROUP BY pair ORDER BY pair;

-- Size of an event: jsonb bytes before compression (ev || '{}' builds an
-- uncompressed copy), as stored, and the share of events past the ~2 kB
-- TOAST threshold, which PostgreSQL compresses on every insert or update
SELECT format('SIZE|%s|%s|%s|%s', t, round(avg(pg_column_size(ev || '{}'::jsonb))),
			  round(avg(pg_column_size(ev))),
			  round(100.0 * avg((pg_column_size(ev || '{}'::jsonb) > 2032)::int)))
  FROM (SELECT 'A' t, ev FROM bench.ev_a_insert
		UNION ALL SELECT 'B', ev FROM bench.ev_b
		UNION ALL SELECT 'B_lean', ev FROM bench.ev_b_lean
		UNION ALL SELECT 'B_lz4', ev FROM bench.ev_b_lz4
		UNION ALL SELECT 'E', ev FROM bench.ev_e) x
 GROUP BY t ORDER BY t;

-- Per-observable errors the extension recorded, if any (first few)
SELECT format('ERRORS|%s|%s|%s', t, err, count(*))
  FROM (SELECT 'C' t, o ->> 'error' err
		  FROM bench.ev_c, jsonb_each(ev #> '{arcanna,ioc,fields}') f,
			   jsonb_array_elements(f.value -> 'observables') o
		UNION ALL
		SELECT 'E', o ->> 'error'
		  FROM bench.ev_e, jsonb_each(ev #> '{arcanna,ioc,fields}') f,
			   jsonb_array_elements(f.value -> 'observables') o) x
 WHERE err IS NOT NULL
 GROUP BY t, err ORDER BY t, count(*) DESC LIMIT 10;
