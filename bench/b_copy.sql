-- B (COPY): the same trigger and warm cache, fed by COPY.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
TRUNCATE bench.ev_b_copy;
SELECT clock_timestamp() AS t0 \gset
COPY bench.ev_b_copy (ev) FROM :'copy_file';
SELECT clock_timestamp() AS t1 \gset
SELECT count(*) AS n FROM bench.ev_b_copy \gset
\ir report.sql
