-- A (COPY): plain server-side COPY of the same events, no trigger.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
TRUNCATE bench.ev_a_copy;
SELECT clock_timestamp() AS t0 \gset
COPY bench.ev_a_copy (ev) FROM :'copy_file';
SELECT clock_timestamp() AS t1 \gset
SELECT count(*) AS n FROM bench.ev_a_copy \gset
\ir report.sql
