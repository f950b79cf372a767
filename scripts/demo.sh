#!/usr/bin/env bash
# The main job, on a fresh Debian machine:
#
#   bash scripts/demo.sh
#
# Installs what is missing, builds and installs anomali_ts, starts a
# throwaway PostgreSQL 15 cluster and the ThreatStream simulator on
# 127.0.0.1 (serving demo/intel/indicators.ndjson), creates an integration
# (showing its health check), an events table with the enrichment trigger,
# loads the bundled real Zeek DNS and SSL events (103,089) through the
# trigger, and prints a report.  Everything it started is stopped at the end.
#
# To ask a real ThreatStream instead, set all three of
#   ANOMALI_TS_URL (e.g. https://api.threatstream.com/api/v2/intelligence/),
#   ANOMALI_TS_USERNAME and ANOMALI_TS_API_KEY
# in the environment: then no simulator starts and nothing else changes.
#
# DEMO_EVENTS=N loads only the first N events of each file (default: all).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

CHUNK=5000
IOC_FIELDS='id.resp_h, id.orig_h, query, answers.[*], server_name, cert_chain_fps.[*]'

ensure_deps
build_install
make_workdir
trap cleanup EXIT

if [ -n "${ANOMALI_TS_URL:-}" ] && [ -n "${ANOMALI_TS_USERNAME:-}" ] && [ -n "${ANOMALI_TS_API_KEY:-}" ]; then
	say "using the ThreatStream at $ANOMALI_TS_URL (no simulator)"
	TS_URL=$ANOMALI_TS_URL TS_USER=$ANOMALI_TS_USERNAME TS_KEY=$ANOMALI_TS_API_KEY
	PLAIN_HTTP=off
else
	start_simulator "$REPO/demo/intel/indicators.ndjson"
	TS_URL=$SIM_URL TS_USER=$SIM_USER TS_KEY=$SIM_KEY
	PLAIN_HTTP=on
fi
export TS_URL TS_USER TS_KEY

start_cluster <<CONF
anomali_ts.allow_plain_http = $PLAIN_HTTP
CONF
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -d demo)
as_pg createdb -h "$WORK" -p "$PGPORT" -U postgres demo

say "creating the extension, the integration (health check first) and the events table"
"${PSQL[@]}" <<'SQL'
CREATE EXTENSION anomali_ts CASCADE;
SET search_path = public, anomali_ts;
\getenv ts_url TS_URL
\getenv ts_user TS_USER
\getenv ts_key TS_KEY
-- The statement that carries the key is kept out of the server log.
SET log_statement = 'none';
SET log_min_error_statement = 'panic';
SET client_min_messages = warning;
SELECT anomali_create_integration('Anomali', :'ts_user', :'ts_key', :'ts_url') \g /dev/null
RESET log_statement;
RESET log_min_error_statement;
RESET client_min_messages;
\echo
\echo 'Health check of the integration:'
SELECT title, reachable, credentials_accepted, http_status, round(latency_ms::numeric, 1) AS latency_ms, message
  FROM anomali_health();

CREATE TABLE zeek_events (id bigserial PRIMARY KEY, ev jsonb NOT NULL);
SQL
"${PSQL[@]}" -v fields="$IOC_FIELDS" <<'SQL'
SET search_path = public, anomali_ts;
SELECT anomali_create_step('threatstream', jsonb_build_object(
	'integration', 'Anomali', 'display_name', 'Anomali ThreatStream',
	'ioc_fields', :'fields', 'confidence_threshold', 50)) \g /dev/null
SELECT anomali_attach_step('zeek_events', 'ev', 'threatstream') AS trigger_name \gset
\echo Trigger :trigger_name enriches zeek_events.ev on INSERT and COPY.
SELECT count(*) AS views FROM anomali_create_report_views('zeek_events', 'ev', 'zeek');
SQL

say "splitting the bundled Zeek events into chunks of $CHUNK"
mkdir -p "$WORK/chunks"
for f in zeek-dns zeek-ssl; do
	if [ -n "${DEMO_EVENTS:-}" ]; then
		{ zcat "$REPO/demo/events/$f.ndjson.gz" || true; } | head -n "$DEMO_EVENTS"
	else
		zcat "$REPO/demo/events/$f.ndjson.gz"
	fi
done | split -l "$CHUNK" -d -a 4 - "$WORK/chunks/part-"
chmod -R a+r "$WORK/chunks"
total=$(cat "$WORK/chunks"/part-* | wc -l)

say "loading $total events through the enrichment trigger"
start=$(date +%s.%N)
loaded=0
for part in "$WORK/chunks"/part-*; do
	# CSV with a quote and delimiter that never occur, so JSON is read verbatim.
	"${PSQL[@]}" -c "\\copy zeek_events (ev) FROM '$part' WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')"
	loaded=$((loaded + $(wc -l <"$part")))
	now=$(date +%s.%N)
	printf '   %7d / %d events  %6.0f events/s\n' "$loaded" "$total" \
		"$(echo "$loaded / ($now - $start)" | bc -l)" >&2
done
elapsed=$(echo "$(date +%s.%N) - $start" | bc -l)

requests=""
if [ -n "${SIM_ADMIN:-}" ]; then
	requests=$(python3 -c 'import json,sys,urllib.request; s=json.load(urllib.request.urlopen(sys.argv[1]+"/stats")); print(s["requests"], s["connections"])' "$SIM_ADMIN")
fi

"${PSQL[@]}" -v elapsed="$elapsed" -v requests="$requests" <<'SQL'
SET search_path = public, anomali_ts;
\pset footer off
\echo
\echo '================================ anomali_ts report ================================'
\echo
SELECT count(*) AS events_enriched, round(:elapsed::numeric, 1) AS load_seconds,
       round(count(*) / :elapsed::numeric) AS events_per_second
  FROM zeek_events WHERE ev ? 'arcanna';

\echo 'Events by verdict (arcanna.ioc.global.result):'
SELECT result, events FROM zeek_ioc_results ORDER BY events DESC;

\echo 'Observables by type (unique values / occurrences on events):'
SELECT o ->> 'type' AS type, count(DISTINCT o ->> 'value') AS unique_values, count(*) AS occurrences,
       count(*) FILTER (WHERE o ->> 'result' = 'malicious') AS malicious,
       count(*) FILTER (WHERE o ->> 'result' = 'skipped') AS skipped
  FROM zeek_events, jsonb_each(ev -> 'arcanna' -> 'ioc' -> 'fields') f,
       jsonb_array_elements(f.value -> 'observables') o
 GROUP BY 1 ORDER BY 3 DESC;

\echo 'Lookups: observables seen on events versus answers that needed ThreatStream:'
SELECT * FROM zeek_ioc_lookups;
SELECT split_part(:'requests', ' ', 1) AS http_requests_received_by_simulator,
       split_part(:'requests', ' ', 2) AS connections_accepted_by_simulator
 WHERE :'requests' <> '';
SELECT shared, entries, hits, misses FROM anomali_cache_stats();

\echo 'Top malicious observables:'
SELECT observable, type, events, max_confidence, paths FROM zeek_ioc_top_observables
 ORDER BY events DESC, observable LIMIT 15;

\echo 'Errors by kind:'
SELECT * FROM zeek_ioc_errors ORDER BY events DESC;

\echo 'The first three malicious events, in full:'
SELECT id, jsonb_pretty(ev) AS event FROM zeek_events
 WHERE (ev #>> '{arcanna,ioc,global,is_malicious}')::boolean ORDER BY id LIMIT 3;
SQL
say "demo finished"
