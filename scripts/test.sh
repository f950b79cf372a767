#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine:
#
#   bash scripts/test.sh
#
# Installs what is missing (apt-get), builds with -Werror, starts a
# throwaway PostgreSQL 15 cluster and the ThreatStream simulator on
# 127.0.0.1, replays the fuzz targets' saved inputs, runs the simulator's
# own tests, the pg_regress suite and the asynchronous steps' checks
# (test/async_test.sh), searches every log for the clear API key, and stops
# everything.  Nothing leaves the machine.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

ensure_deps ${ANOMALI_VALGRIND:+valgrind}
build_install
make_workdir
trap cleanup EXIT

say "fuzz regression inputs (classifier, response parser, path walker)"
make -C "$REPO" -s fuzz-regress PG_CONFIG="$PG_BIN/pg_config" >"$WORK/fuzz-regress.log" 2>&1 ||
	{ cat "$WORK/fuzz-regress.log" >&2; exit 1; }

say "simulator self-test"
python3 "$REPO/test/simulator/test_sim.py" >"$WORK/sim-test.log" 2>&1 ||
	{ cat "$WORK/sim-test.log" >&2; exit 1; }

python3 "$REPO/test/data/make_fixture.py" >"$WORK/indicators.ndjson"
start_simulator "$WORK/indicators.ndjson" "$REPO/demo/intel/indicators.ndjson"
make_test_ca
start_tls_simulator --data "$WORK/indicators.ndjson"

start_cluster <<CONF
anomali_ts.allow_plain_http = on
anomali_ts.retry_max_wait = 200ms
shared_preload_libraries = 'anomali_ts,pg_stat_statements'
pg_stat_statements.track = 'all'
log_statement = 'all'
log_min_messages = 'debug5'
log_min_error_statement = 'debug5'
CONF

export ANOMALI_SIM_URL="$SIM_URL" ANOMALI_SIM_USER="$SIM_USER" ANOMALI_SIM_KEY="$SIM_KEY"
export ANOMALI_SIM_BASE="http://127.0.0.1:$SIM_PORT" ANOMALI_WORK="$WORK" ANOMALI_REPO="$REPO" \
	ANOMALI_TLS_URL="$TLS_URL" ANOMALI_TLS_CA="$WORK/tls/ca.pem"

# A slice of the demo's real events (3,000 DNS, 2,000 SSL) and its list of
# malicious observables, for the test that checks the report's numbers.
{ { zcat "$REPO/demo/events/zeek-dns.ndjson.gz" || true; } | head -n 3000
  { zcat "$REPO/demo/events/zeek-ssl.ndjson.gz" || true; } | head -n 2000; } >"$WORK/demo-slice.ndjson"
python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))))' \
	"$REPO/demo/intel/expected-traffic-hits.json" >"$WORK/demo-hits.json"
chmod a+r "$WORK/demo-slice.ndjson" "$WORK/demo-hits.json"

say "pg_regress suite"
rm -rf "$REPO/test/results"
if ! make -C "$REPO" -s installcheck PG_CONFIG="$PG_BIN/pg_config" \
	REGRESS_OPTS="--inputdir=test --outputdir=test --host=$WORK --port=$PGPORT --user=postgres" \
	| tee "$WORK/regress.log"; then
	[ -f "$REPO/test/regression.diffs" ] && head -c 20000 "$REPO/test/regression.diffs" >&2
	KEEP_WORK=1
	exit 1
fi

# (Not under Valgrind: its checks wait for workers with time limits that a
# tenfold slower server does not meet; the pg_regress suite is what
# Valgrind runs.)
: >"$WORK/async.log"
if [ -z "${ANOMALI_VALGRIND:-}" ]; then
	say "asynchronous steps and their background workers"
	export SIM_KEY SIM_USER SIM_URL SIM_ADMIN WORK PG_BIN
	bash "$REPO/test/async_test.sh" | tee "$WORK/async.log" || { KEEP_WORK=1; exit 1; }
fi

say "searching for the clear API key: server log, pg_dump, pg_stat_statements, simulator log"
psql -X -q -At -d regression -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" \
	-c "SELECT query FROM pg_stat_statements" >"$WORK/pg_stat_statements.txt"
pg_dump -d regression >"$WORK/dump.sql"
for f in server.log dump.sql pg_stat_statements.txt sim.log; do
	if grep -F -q "$SIM_KEY" "$WORK/$f"; then
		echo "FAIL: the API key appears in $f" >&2
		KEEP_WORK=1
		exit 1
	fi
done
python3 - "$WORK/sim.log" <<'PY'
import json, sys
entries = [json.loads(line) for line in open(sys.argv[1])]
in_url = sum(1 for e in entries if e.get("credentials_in_url"))
header = sum(1 for e in entries if e.get("auth") == "header")
print("== simulator saw %d requests: %d with the key in the Authorization header, %d with credentials in the URL"
      % (len(entries), header, in_url), file=sys.stderr)
sys.exit(1 if in_url or header == 0 else 0)
PY

if [ -n "${ANOMALI_VALGRIND:-}" ]; then
	as_pg "$PG_BIN/pg_ctl" -D "$WORK/pgdata" -m fast -w -t 300 stop >/dev/null
	python3 "$REPO/scripts/valgrind_summary.py" "$WORK"/valgrind.*.log || { KEEP_WORK=1; exit 1; }
fi

passed=$(( $(grep -c ' \.\.\. ok' "$WORK/regress.log" || true) + $(grep -c '^ok ' "$WORK/async.log" || true) ))
failed=$(( $(grep -c ' \.\.\. FAILED' "$WORK/regress.log" || true) + $(grep -c '^not ok ' "$WORK/async.log" || true) ))
say "all tests passed"
echo "$passed passed, $failed failed"
