#!/usr/bin/env bash
# The benchmark, on the bundled real Zeek events:
#
#   bash scripts/bench.sh            throughput of every variant, one table
#   bash scripts/bench.sh memory     backend memory over 1,000,000 enrichments
#
# Installs what is missing (apt-get, including postgresql-plpython3-15),
# builds and installs the extension, starts a throwaway PostgreSQL 15
# cluster and the ThreatStream simulator on 127.0.0.1 (serving
# demo/intel/indicators.ndjson), measures, prints the table, and stops
# everything.  Nothing leaves the machine.  bench/README.md explains each
# measurement.
#
# Settings (environment):
#   BENCH_EVENTS         events in the slice (half DNS, half SSL)   5000
#   BENCH_D0_EVENTS      events for D0, the slow PL/Python trigger    300
#   BENCH_LATENCY_MS     simulator latency per request (ms)             2
#   BENCH_REPEAT         runs of A, B, the ceilings, F rows (median)     5
#   BENCH_COLD_REPEAT    runs of C, D1, E and F (the median is reported) 3
#   BENCH_E_BATCH_ROWS   batch_rows of anomali_enrich_table           1000
#   BENCH_STEP_TIMEOUT   seconds allowed for one measurement          240
#   BENCH_MEMORY_EVENTS  enrichments in memory mode              1000000
#   BENCH_MEMORY_TIMEOUT seconds allowed for the memory run           420
#   BENCH_WORKER_ROUNDS  memory mode: rounds of BENCH_EVENTS events    40
#                        finished by one background worker
#   KEEP_WORK=1          keep the scratch directory (logs, raw results)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

MODE=${1:-all}
case "$MODE" in
all | memory) ;;
*)
	echo "usage: bash scripts/bench.sh [memory]" >&2
	exit 2
	;;
esac

BENCH_EVENTS=${BENCH_EVENTS:-5000}
BENCH_D0_EVENTS=${BENCH_D0_EVENTS:-300}
BENCH_LATENCY_MS=${BENCH_LATENCY_MS:-2}
BENCH_REPEAT=${BENCH_REPEAT:-5}
BENCH_COLD_REPEAT=${BENCH_COLD_REPEAT:-3}
BENCH_E_BATCH_ROWS=${BENCH_E_BATCH_ROWS:-1000}
BENCH_STEP_TIMEOUT=${BENCH_STEP_TIMEOUT:-240}
BENCH_MEMORY_EVENTS=${BENCH_MEMORY_EVENTS:-1000000}
BENCH_MEMORY_TIMEOUT=${BENCH_MEMORY_TIMEOUT:-420}
BENCH_WORKER_ROUNDS=${BENCH_WORKER_ROUNDS:-40}
IOC_FIELDS="id.resp_h, query, answers.[*], server_name, cert_chain_fps.[*]"

for v in BENCH_EVENTS BENCH_D0_EVENTS BENCH_LATENCY_MS BENCH_REPEAT BENCH_COLD_REPEAT BENCH_E_BATCH_ROWS \
	BENCH_STEP_TIMEOUT BENCH_MEMORY_EVENTS BENCH_MEMORY_TIMEOUT BENCH_WORKER_ROUNDS; do
	[[ ${!v} =~ ^[0-9]+$ ]] || { echo "$v must be a whole number" >&2; exit 2; }
done
[ "$BENCH_EVENTS" -ge 1000 ] || { echo "BENCH_EVENTS must be at least 1000" >&2; exit 2; }
[ "$BENCH_D0_EVENTS" -ge 1 ] && [ "$BENCH_D0_EVENTS" -le "$BENCH_EVENTS" ] ||
	{ echo "BENCH_D0_EVENTS must be between 1 and BENCH_EVENTS" >&2; exit 2; }
[ "$BENCH_REPEAT" -ge 1 ] && [ "$BENCH_REPEAT" -le 20 ] ||
	{ echo "BENCH_REPEAT must be between 1 and 20" >&2; exit 2; }
[ "$BENCH_COLD_REPEAT" -ge 1 ] && [ "$BENCH_COLD_REPEAT" -le 10 ] ||
	{ echo "BENCH_COLD_REPEAT must be between 1 and 10" >&2; exit 2; }
[ "$BENCH_MEMORY_EVENTS" -ge 10000 ] ||
	{ echo "BENCH_MEMORY_EVENTS must be at least 10000" >&2; exit 2; }

# The only server anything here may talk to is the simulator on loopback:
# no proxy, for libcurl in the backends nor for urllib in PL/Python.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY ftp_proxy FTP_PROXY
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost

BENCH=$REPO/bench
PSQL="$PG_BIN/psql"
STARTED=$(date +%s)

ensure_deps postgresql-plpython3-15
build_install
make_workdir
trap cleanup EXIT

# GET an admin endpoint of the simulator (127.0.0.1 only) and print it
sim_get() {
	python3 - "$1" <<'PY'
import sys, urllib.request
url = sys.argv[1]
assert url.startswith("http://127.0.0.1:"), url
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
with opener.open(url, timeout=10) as r:
    sys.stdout.write(r.read().decode())
PY
}

# "requests connections" counted by the simulator so far
sim_counts() {
	sim_get "$SIM_ADMIN/stats" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["requests"], d["connections"])'
}

# psql on the throwaway cluster, bounded in time both on the server
# (statement_timeout) and on the client (timeout)
bench_psql() {
	local seconds=$1
	shift
	PGOPTIONS="-c statement_timeout=${seconds}s" \
		timeout -k 10 $((seconds + 30)) "$PSQL" -X -q -At -v ON_ERROR_STOP=1 \
		-v benchdir="$BENCH" -v copy_file="$WORK/events_plain.copy" \
		-v latency_ms="$BENCH_LATENCY_MS" -v ioc_fields="$IOC_FIELDS" \
		-v d0_events="$BENCH_D0_EVENTS" -v e_batch_rows="$BENCH_E_BATCH_ROWS" \
		-v mem_events="$BENCH_MEMORY_EVENTS" -v worker_rounds="$BENCH_WORKER_ROUNDS" "$@"
}

# One measurement: a new psql session running bench/FILE, with the
# simulator's counters read before and after.  Appends to $WORK/runs.txt:
#   RUN|label|events|seconds|VmHWM|VmRSS|RssAnon|sess requests|sess connections|sim requests|sim connections
measure() {
	local label=$1 file=$2 what=$3
	local before after line t0 breq bconn areq aconn n secs
	say "$label: $what"
	before=$(sim_counts)
	t0=$(date +%s%N)
	if ! bench_psql "$BENCH_STEP_TIMEOUT" -v label="$label" -f "$BENCH/$file" \
		>"$WORK/out/$label.out" 2>"$WORK/out/$label.err"; then
		echo "FAILED: $label (bench/$file); its output:" >&2
		cat "$WORK/out/$label.out" "$WORK/out/$label.err" >&2
		tail -n 30 "$WORK/server.log" >&2
		echo "FAILED|$label" >>"$WORK/runs.txt"
		return 0
	fi
	after=$(sim_counts)
	read -r breq bconn <<<"$before"
	read -r areq aconn <<<"$after"
	# The "after" read of the counters opened one connection of its own.
	# (A file may report several results, as F does; each gets the counts.)
	while IFS= read -r line; do
		echo "RUN|${line#RESULT|}|$((areq - breq))|$((aconn - bconn - 1))" >>"$WORK/runs.txt"
	done < <(grep '^RESULT|' "$WORK/out/$label.out")
	line=$(grep '^RESULT|' "$WORK/out/$label.out" | tail -n 1)
	# Anything the server said but E's progress NOTICEs is worth showing
	if grep -v -q 'NOTICE:  anomali_ts: .* rows read' "$WORK/out/$label.err"; then
		echo "MESSAGES|$label|$(grep -v 'NOTICE:  anomali_ts: .* rows read' "$WORK/out/$label.err" |
			head -c 2000 | tr '\n' ' ')" >>"$WORK/runs.txt"
	fi
	IFS='|' read -r _ _ n secs _ <<<"$line"
	say "$label: $n events in ${secs}s (whole session $((($(date +%s%N) - t0) / 1000000)) ms)"
}

mkdir -p "$WORK/out"
: >"$WORK/runs.txt"

say "preparing $BENCH_EVENTS events from demo/events (zeek-dns and zeek-ssl, interleaved)"
python3 "$BENCH/make_events.py" "$BENCH_EVENTS" "$REPO/demo/events/zeek-dns.ndjson.gz" \
	"$REPO/demo/events/zeek-ssl.ndjson.gz" "$WORK/events.copy" >"$WORK/make_events.txt"
say "$(cat "$WORK/make_events.txt")"

say "starting the simulator with demo/intel/indicators.ndjson"
start_simulator "$REPO/demo/intel/indicators.ndjson"

# A new cluster creates every WAL segment it fills, zeroing 16 MB each time,
# in whichever session crosses into it; a server that has run a while
# recycles old segments instead.  wal_init_zero = off keeps that cost of a
# first boot out of the measurements (every variant alike).
start_cluster <<CONF || { tail -n 20 "$WORK/server.log" >&2; exit 1; }
anomali_ts.allow_plain_http = on
log_min_messages = warning
wal_init_zero = off
CONF

say "setting up: extensions, staging table, integrations, steps, PL/Python trigger"
bench_psql 300 -v events_file="$WORK/events.copy" -f "$BENCH/setup.sql" >"$WORK/setup.out" 2>&1 ||
	{ cat "$WORK/setup.out" >&2; exit 1; }

if [ "$MODE" = memory ]; then
	say "memory: $BENCH_MEMORY_EVENTS anomali_enrich() calls in one session, warm cache (limit ${BENCH_MEMORY_TIMEOUT}s)"
	: >"$WORK/memory.out"
	status=0
	bench_psql "$BENCH_MEMORY_TIMEOUT" -f "$BENCH/memory.sql" 2>"$WORK/memory.err" |
		while IFS= read -r line; do
			echo "$line" >>"$WORK/memory.out"
			case "$line" in
			MEM\|*)
				IFS='|' read -r _ what n rss anon _ <<<"$line"
				say "memory: $what: $n enrichments, VmRSS $rss kB, RssAnon $anon kB"
				;;
			esac
		done || status=$?
	if [ "$status" -ne 0 ] || [ -s "$WORK/memory.err" ]; then
		echo "memory run: psql exit $status; messages:" >&2
		cat "$WORK/memory.err" >&2
		tail -n 30 "$WORK/server.log" >&2
	fi
	say "memory: one background worker, $BENCH_WORKER_ROUNDS rounds of $BENCH_EVENTS queued events"
	if ! bench_psql "$BENCH_MEMORY_TIMEOUT" -f "$BENCH/memory_worker.sql" \
		>>"$WORK/memory.out" 2>"$WORK/memory_worker.err" || [ -s "$WORK/memory_worker.err" ]; then
		echo "worker memory run failed; messages:" >&2
		cat "$WORK/memory_worker.err" >&2
		tail -n 30 "$WORK/server.log" >&2
		status=1
	fi
	python3 "$BENCH/report.py" memory "$WORK/memory.out" "$BENCH_MEMORY_EVENTS"
	say "done in $(($(date +%s) - STARTED))s"
	exit "$status"
fi

for i in $(seq 1 "$BENCH_REPEAT"); do
	measure "A_insert#$i" a_insert.sql "plain INSERT ... SELECT, no trigger (run $i of $BENCH_REPEAT)"
	measure "A_copy#$i" a_copy.sql "plain COPY, no trigger (run $i of $BENCH_REPEAT)"
	measure "A_rows#$i" a_rows.sql "plain INSERT, one row per statement, no trigger (run $i of $BENCH_REPEAT)"
done
measure B_warmup b_warmup.sql "anomali_ts trigger, filling the cache (not a measurement)"
say "ceilings: storing B's and F's rows without their triggers"
bench_psql 300 -f "$BENCH/ceiling_setup.sql" >"$WORK/ceiling_setup.out" 2>&1 ||
	{ cat "$WORK/ceiling_setup.out" >&2; exit 1; }
for i in $(seq 1 "$BENCH_REPEAT"); do
	measure "A_enriched#$i" a_enriched.sql "plain INSERT ... SELECT of B's rows, no trigger (run $i of $BENCH_REPEAT)"
	measure "A_pending#$i" a_pending.sql "plain INSERT ... SELECT of F's rows, queue index, no trigger (run $i of $BENCH_REPEAT)"
	measure "B_insert#$i" b_insert.sql "anomali_ts trigger, warm cache, INSERT ... SELECT (run $i of $BENCH_REPEAT)"
	measure "B_copy#$i" b_copy.sql "anomali_ts trigger, warm cache, COPY (run $i of $BENCH_REPEAT)"
	measure "B_lean#$i" b_lean.sql "anomali_ts trigger, warm cache, results only (run $i of $BENCH_REPEAT)"
	measure "B_lz4#$i" b_lz4.sql "anomali_ts trigger, warm cache, lz4 column (run $i of $BENCH_REPEAT)"
done
measure D0 d0_python.sql "PL/Python trigger, one request per observable, first $BENCH_D0_EVENTS events"
# The cold-cache measurements, alternating, each run from a cold start
for i in $(seq 1 "$BENCH_COLD_REPEAT"); do
	measure "C#$i" c_cold.sql "anomali_ts trigger, cold cache, ${BENCH_LATENCY_MS} ms per request (run $i of $BENCH_COLD_REPEAT)"
	measure "D1#$i" d1_python_cache.sql "PL/Python trigger with a dict cache in GD (run $i of $BENCH_COLD_REPEAT)"
	measure "E#$i" e_bulk.sql "CALL anomali_enrich_table(batch_rows => $BENCH_E_BATCH_ROWS), cold cache (run $i of $BENCH_COLD_REPEAT)"
	measure "F#$i" f_async.sql "asynchronous step: inserts, then the background worker, cold cache (run $i of $BENCH_COLD_REPEAT)"
done
for i in $(seq 1 "$BENCH_REPEAT"); do
	measure "F_rows#$i" f_rows.sql "asynchronous step, one row per INSERT (run $i of $BENCH_REPEAT)"
done

sim_get "$SIM_ADMIN/log?tag=E" >"$WORK/E.log.json"
bench_psql 120 -f "$BENCH/checks.sql" >"$WORK/checks.out" 2>&1 || cat "$WORK/checks.out" >&2

python3 "$BENCH/report.py" table "$WORK/runs.txt" "$WORK/out/E#$BENCH_COLD_REPEAT.out" \
	"$WORK/out/E#$BENCH_COLD_REPEAT.err" "$WORK/E.log.json" \
	"$WORK/checks.out" "$BENCH_LATENCY_MS" "$BENCH_E_BATCH_ROWS" "$(cat "$WORK/make_events.txt")"
say "done in $(($(date +%s) - STARTED))s"
