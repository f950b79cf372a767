#!/usr/bin/env bash
# Tests of asynchronous steps and their background workers: things a
# pg_regress file cannot do, such as killing a worker, restarting the
# server or dropping a database.  Run by scripts/test.sh against its
# cluster and simulator (it needs PGHOST, PGPORT, WORK, SIM_* and the
# functions of scripts/lib.sh); prints "ok N - ..." or "not ok N - ..." per
# check and exits non-zero if any failed.  Every wait is bounded.
set -uo pipefail
. "$(dirname "$0")/../scripts/lib.sh"

DB=async_test
PSQL=(psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB")
checks=0
failures=0

# Record one check: check DESCRIPTION COMMAND... (one command: join several
# conditions inside it, as in test "$((a == 0 && b == 1))" = 1)
check() {
	local what=$1
	shift
	checks=$((checks + 1))
	if "$@"; then
		echo "ok $checks - $what"
	else
		echo "not ok $checks - $what"
		failures=$((failures + 1))
	fi
}

# Run SQL in the test database and print the result
q() { "${PSQL[@]}" -c "$1"; }

# True when the SQL's result equals the expected text
is() { [ "$(q "$1")" = "$2" ]; }

# Wait (at most $2 seconds) until the SQL returns t
wait_for() { wait_for_in "$DB" "$@"; }

# The same in another database: wait_for_in DB SQL [SECONDS]
wait_for_in() {
	local db=$1 sql=$2 limit=${3:-30} i
	for i in $(seq 1 $((limit * 10))); do
		[ "$(psql -X -q -At -d "$db" -c "$sql" 2>/dev/null)" = "t" ] && return 0
		sleep 0.1
	done
	return 1
}

# Set the simulator's global fault options (JSON), e.g. '{"status": 503}'
sim_control() {
	python3 - "$SIM_ADMIN/control" "$1" <<'PY'
import sys, urllib.request
req = urllib.request.Request(sys.argv[1], data=sys.argv[2].encode(), method="POST",
                             headers={"Content-Type": "application/json"})
urllib.request.urlopen(req, timeout=5).read()
PY
}

# In a database: the extension, integration "Sim" on the simulator, an
# asynchronous step "async" attached to events(ev)
setup_database() {
	psql -X -q -v ON_ERROR_STOP=1 -d "$1" -v sim_url="$SIM_URL" -v sim_user="$SIM_USER" >/dev/null <<'SQL'
CREATE EXTENSION anomali_ts CASCADE;
SET search_path = public, anomali_ts;
SET log_statement = 'none';
SET log_min_error_statement = 'panic';
\getenv sim_key SIM_KEY
SELECT anomali_create_integration('Sim', :'sim_user', :'sim_key', :'sim_url');
RESET log_statement;
RESET log_min_error_statement;
SELECT anomali_create_step('async', '{"integration": "Sim", "ioc_fields": "ip"}', mode => 'async');
CREATE TABLE events (id bigserial PRIMARY KEY, ev jsonb, note text);
SELECT anomali_attach_step('events', 'ev', 'async');
SQL
}

QUEUED="(SELECT count(*) FROM events WHERE ev #>> '{arcanna,ioc,global,pending_step}' IS NOT NULL)"

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
psql -X -q -d postgres >/dev/null <<SQL
ALTER SYSTEM SET anomali_ts.worker_retry_delay = '300ms';
ALTER SYSTEM SET anomali_ts.worker_max_attempts = 3;
ALTER SYSTEM SET anomali_ts.worker_batch_size = 50;
SELECT pg_reload_conf();
SQL
# 0. Two sessions storing the first key of a cluster at once agree on one
#    master key (the file is created by the first, read by the second).
psql -X -q -d postgres -c "CREATE DATABASE ${DB}_race" >/dev/null
psql -X -q -d "${DB}_race" -c "CREATE EXTENSION anomali_ts CASCADE" >/dev/null 2>&1
as_pg mv "$WORK/pgdata/anomali_ts_master.key" "$WORK/pgdata/anomali_ts_master.key.before-race"
for i in 1 2 3 4; do
	psql -X -q -v ON_ERROR_STOP=1 -d "${DB}_race" -v i="$i" -v sim_url="$SIM_URL" -v sim_user="$SIM_USER" >/dev/null 2>&1 <<'SQL' &
SET log_statement = 'none';
SET log_min_error_statement = 'panic';
SET client_min_messages = warning;
\getenv sim_key SIM_KEY
SELECT anomali_ts.anomali_create_integration('Race' || :'i', :'sim_user', :'sim_key', :'sim_url',
	skip_health_check => true);
SQL
done
wait
check "four integrations stored at once with no master key file can all be decrypted" \
	[ "$(psql -X -q -At -d "${DB}_race" -c "SELECT count(*) FILTER (WHERE credentials_accepted) FROM anomali_ts.anomali_health() WHERE title LIKE 'Race%'")" = "4" ]
psql -X -q -d postgres -c "DROP DATABASE ${DB}_race" >/dev/null

setup_database "$DB"
# Documentation addresses are non-public; let the worker send them.
psql -X -q -d postgres -c "ALTER SYSTEM SET anomali_ts.skip_non_public = off" -c "SELECT pg_reload_conf()" >/dev/null

# 1. Inserts return at once with "pending"; committed rows are finished by
#    the worker, rolled-back rows never existed.
q "INSERT INTO events (ev) SELECT jsonb_build_object('ip', '198.51.100.' || (1 + i % 20)) FROM generate_series(1, 200) i"
q "BEGIN; INSERT INTO events (ev, note) SELECT '{\"ip\": \"198.51.100.7\"}', 'rolled back' FROM generate_series(1, 50); ROLLBACK;"
check "an inserted row is stored with result pending (or already finished)" \
	is "SELECT count(*) FROM events WHERE ev #>> '{arcanna,ioc,global,result}' IN ('pending', 'malicious', 'not_malicious')" "200"
check "the worker finishes every committed row" wait_for "SELECT $QUEUED = 0" 30
check "finished rows carry verdicts: 198.51.100.7 malicious, 198.51.100.9 not" \
	is "SELECT string_agg(DISTINCT (ev->>'ip') || '=' || (ev #>> '{arcanna,ioc,global,result}'), ' ' ORDER BY (ev->>'ip') || '=' || (ev #>> '{arcanna,ioc,global,result}')) FROM events WHERE ev->>'ip' IN ('198.51.100.7', '198.51.100.9')" \
	"198.51.100.7=malicious 198.51.100.9=not_malicious"
check "no rolled-back row exists or was enriched" is "SELECT count(*) FROM events WHERE note = 'rolled back'" "0"
check "every row names the step once, with queued_at kept" \
	is "SELECT count(*) FROM events WHERE ev #> '{arcanna,ioc,global,steps}' = '[\"Sim\"]' AND ev #>> '{arcanna,ioc,global,queued_at}' IS NOT NULL" "200"
check "the worker's status shows the rows it finished" \
	is "SELECT sum(rows_finished) >= 200 FROM anomali_ts.anomali_worker_status() WHERE database = (SELECT oid FROM pg_database WHERE datname = current_database())" "t"

# 2. The API is down for a while: rows stay queued, are retried with
#    back-off (the queue and health show it), and end enriched when it is back.
#    (Each section asks about values not yet in the cache.)
sim_control '{"status": 503}'
q "INSERT INTO events (ev) SELECT jsonb_build_object('ip', '203.0.113.7', 'n', i) FROM generate_series(1, 30) i"
check "while the API fails, rows are retried (attempts recorded, still queued)" \
	wait_for "SELECT count(*) = 30 FROM events WHERE (ev #>> '{arcanna,ioc,global,attempts}')::int >= 1 AND ev #>> '{arcanna,ioc,global,pending_step}' IS NOT NULL" 20
check "the queue view shows them queued and retrying" \
	is "SELECT queued >= 30 AND retrying >= 1 AND oldest_age IS NOT NULL FROM anomali_ts.queue WHERE step_name = 'async'" "t"
check "anomali_health() shows the queue of the integration" \
	is "SELECT queued >= 30 AND oldest_queued_s >= 0 FROM anomali_ts.anomali_health('Sim')" "t"
sim_control '{}'
check "when the API is back, every queued row ends enriched" wait_for "SELECT $QUEUED = 0" 30
check "and none of them was lost or left as error" \
	is "SELECT count(*) FROM events WHERE ev->>'n' IS NOT NULL AND ev #>> '{arcanna,ioc,global,result}' = 'malicious'" "30"

# 3. An API that never recovers: after worker_max_attempts the errors are final.
sim_control '{"status": 503}'
q "INSERT INTO events (ev, note) VALUES ('{\"ip\": \"203.0.113.5\"}', 'gives up')"
check "after the last attempt the row keeps its error and leaves the queue" \
	wait_for "SELECT ev #>> '{arcanna,ioc,global,result}' = 'error' AND ev #>> '{arcanna,ioc,global,pending_step}' IS NULL FROM events WHERE note = 'gives up'" 30
sim_control '{}'

# 4. A row updated or deleted before the worker reaches it: another session
#    holds the rows (the worker skips locked rows), changes them, commits.
q "INSERT INTO events (ev, note) VALUES ('{\"ip\": \"198.51.100.7\"}', 'to update'), ('{\"ip\": \"198.51.100.7\"}', 'to delete')" >/dev/null
# (inserted and held in one transaction, so the worker cannot have them yet)
psql -X -q -d "$DB" >/dev/null <<'SQL'
BEGIN;
INSERT INTO events (ev, note) VALUES ('{"ip": "198.51.100.9"}', 'held update'), ('{"ip": "198.51.100.9"}', 'held delete');
SELECT pg_sleep(0.5);
UPDATE events SET ev = jsonb_set(ev, '{ip}', '"198.51.100.7"') WHERE note = 'held update';
DELETE FROM events WHERE note = 'held delete';
COMMIT;
SQL
check "a row updated before its turn is enriched once, with its new content" \
	wait_for "SELECT ev #>> '{arcanna,ioc,global,result}' = 'malicious' FROM events WHERE note = 'held update'" 30
check "a row deleted before its turn is simply gone" is "SELECT count(*) FROM events WHERE note = 'held delete'" "0"

# 4b. A table owned by an ordinary role: the worker writes with the owner's
#     rights, so the owner's own trigger cannot borrow the worker's.
q "CREATE ROLE async_owner NOSUPERUSER" >/dev/null
q "CREATE TABLE owned (id serial, ev jsonb)" >/dev/null
q "SELECT anomali_ts.anomali_attach_step('owned', 'ev', 'async')" >/dev/null
q "ALTER TABLE owned OWNER TO async_owner" >/dev/null
q "CREATE FUNCTION owned_probe() RETURNS trigger LANGUAGE plpgsql AS \$\$ BEGIN NEW.ev := jsonb_set(NEW.ev, '{ran_as}', to_jsonb(current_user::text)); RETURN NEW; END \$\$" >/dev/null
q "ALTER FUNCTION owned_probe() OWNER TO async_owner" >/dev/null
q "CREATE TRIGGER probe BEFORE UPDATE ON owned FOR EACH ROW EXECUTE FUNCTION owned_probe()" >/dev/null
q "INSERT INTO owned (ev) VALUES ('{\"ip\": \"198.51.100.7\"}')" >/dev/null
check "the worker updates an owned table with the owner's rights, not a superuser's" \
	wait_for "SELECT ev ->> 'ran_as' = 'async_owner' AND ev #>> '{arcanna,ioc,global,result}' = 'malicious' FROM owned" 30

# 4c. A malformed queued row (written with triggers bypassed) neither stops
#     the table's queue nor breaks the queue view.
q "SET session_replication_role = replica; INSERT INTO events (ev, note) VALUES ('{\"ip\": \"198.51.100.7\", \"arcanna\": {\"ioc\": {\"global\": {\"pending_step\": \"async\", \"attempts\": \"abc\", \"retry_at\": \"zzz\", \"queued_at\": \"never\"}}}}', 'malformed')" >/dev/null
q "INSERT INTO events (ev, note) SELECT '{\"ip\": \"198.51.100.9\"}', 'after malformed' FROM generate_series(1, 10)" >/dev/null
check "rows queued after a malformed one are finished" \
	wait_for "SELECT count(*) = 10 FROM events WHERE note = 'after malformed' AND ev #>> '{arcanna,ioc,global,pending_step}' IS NULL" 30
check "the queue view still answers, counting the malformed row" \
	is "SELECT queued FROM anomali_ts.queue WHERE tbl = 'events'::regclass" "1"
q "DELETE FROM events WHERE note = 'malformed'" >/dev/null

# 5. The worker killed in the middle of a batch: its rows stay queued and
#    are finished exactly once by its successor.
psql -X -q -d postgres -c "ALTER SYSTEM SET anomali_ts.worker_batch_size = 400" -c "SELECT pg_reload_conf()" >/dev/null
sim_control '{"latency_ms": 400}'
q "INSERT INTO events (ev, note) SELECT jsonb_build_object('ip', '198.51.' || (i / 250) || '.' || (i % 250)), 'kill' FROM generate_series(1, 400) i"
if wait_for "SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'anomali_ts worker' AND datname = current_database() AND wait_event_type = 'Extension'" 20; then
	pid=$(q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'anomali_ts worker' AND datname = current_database()")
	q "SELECT pg_terminate_backend($pid)" >/dev/null
	killed=yes
else
	killed=no
fi
check "a worker was caught mid-batch and terminated" [ "$killed" = yes ]
sim_control '{}'
check "its successor finishes every row" wait_for "SELECT $QUEUED = 0" 60
check "each of those rows was finished exactly once (one step, not pending, no error)" \
	is "SELECT count(*) FROM events WHERE note = 'kill' AND ev #> '{arcanna,ioc,global,steps}' = '[\"Sim\"]' AND ev #>> '{arcanna,ioc,global,result}' = 'not_malicious'" "400"

# 5b. The worker reads a queue through its index, never the whole table:
#     the planner guesses that a partial index on the pending mark holds
#     most of the table, and would read all of it for every batch.
q "CREATE TABLE scan_events (id bigserial PRIMARY KEY, ev jsonb) WITH (autovacuum_enabled = off)"
q "SELECT anomali_ts.anomali_attach_step('scan_events', 'ev', 'async')" >/dev/null
# (building the table's two indexes scanned it: count from here)
scans_before=$(q "SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'scan_events'")
q "INSERT INTO scan_events (ev) SELECT jsonb_build_object('ip', '198.51.100.' || (1 + i % 20)) FROM generate_series(1, 2000) i"
check "2,000 queued rows, in batches of worker_batch_size (400), are finished" \
	wait_for "SET enable_seqscan = off; SELECT NOT EXISTS (SELECT 1 FROM scan_events WHERE ev #>> '{arcanna,ioc,global,pending_step}' IS NOT NULL)" 60
check "the worker's statistics show its 2,000 updates" \
	wait_for "SELECT n_tup_upd >= 2000 FROM pg_stat_user_tables WHERE relname = 'scan_events'" 20
check "and not one sequential scan of the table" \
	is "SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'scan_events'" "$scans_before"

# 6. A server restart with a non-empty queue: the launcher starts a worker.
sim_control '{"status": 503}'
q "INSERT INTO events (ev, note) SELECT '{\"ip\": \"192.0.2.10\"}', 'restart' FROM generate_series(1, 20)" >/dev/null
wait_for "SELECT count(*) = 20 FROM events WHERE note = 'restart' AND (ev #>> '{arcanna,ioc,global,attempts}')::int >= 1" 20 >/dev/null
as_pg env -u SIM_KEY -u ANOMALI_SIM_KEY "$PG_BIN/pg_ctl" -D "$WORK/pgdata" -m fast -w -t 60 \
	restart -l "$WORK/server.log" >/dev/null
sim_control '{}'
check "after a restart, rows queued before it are finished" wait_for "SELECT $QUEUED = 0" 60
check "all of them malicious" is "SELECT count(*) FROM events WHERE note = 'restart' AND ev #>> '{arcanna,ioc,global,result}' = 'malicious'" "20"

# 7. DROP EXTENSION while the worker is busy: it completes, and the worker
#    neither fails nor hangs.
sim_control '{"latency_ms": 300}'
q "INSERT INTO events (ev) SELECT jsonb_build_object('ip', '203.0.' || (i / 250) || '.' || (i % 250)) FROM generate_series(1, 200) i" >/dev/null
start=$(date +%s)
q "DROP EXTENSION anomali_ts CASCADE" >/dev/null 2>&1
check "DROP EXTENSION with the worker running completes within 30 s" [ $(($(date +%s) - start)) -le 30 ]
# (a pass that began before the DROP committed may end in an error, and the
# worker come back 5 s later to find nothing to do: 7b times an idle one)
check "and the worker leaves the database" wait_for "SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'anomali_ts worker' AND datname = current_database()" 20
sim_control '{}'

# 7b. DROP EXTENSION with the worker idle: its commit wakes the worker,
#     which leaves at once rather than after worker_idle_timeout (10 s).
psql -X -q -d postgres -c "CREATE DATABASE ${DB}_ext" >/dev/null
setup_database "${DB}_ext"
psql -X -q -d "${DB}_ext" -c "INSERT INTO events (ev) VALUES ('{\"ip\": \"198.51.100.7\"}')" >/dev/null
wait_for_in "${DB}_ext" "SELECT count(*) = 1 FROM events WHERE ev #>> '{arcanna,ioc,global,pending_step}' IS NULL" 20
psql -X -q -d "${DB}_ext" -c "DROP EXTENSION anomali_ts CASCADE" >/dev/null 2>&1
check "DROP EXTENSION wakes an idle worker, which leaves within 3 s" \
	wait_for "SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'anomali_ts worker' AND datname = '${DB}_ext'" 3
psql -X -q -d postgres -c "DROP DATABASE ${DB}_ext WITH (FORCE)" >/dev/null 2>&1

# 8. DROP DATABASE: an idle worker leaves on its own, a busy one is ended by
#    WITH (FORCE); neither hangs.
start=$(date +%s)
psql -X -q -d postgres -c "DROP DATABASE $DB" >/dev/null 2>&1
dropped=$?
check "plain DROP DATABASE succeeds once the worker is idle, within 30 s" \
	test "$((dropped == 0 && $(date +%s) - start <= 30))" = 1

# 8b. An idle worker, which stays for worker_idle_timeout (10 s by
#     default), does not hold up a plain DROP DATABASE: the drop tells it
#     to leave.
psql -X -q -d postgres -c "CREATE DATABASE ${DB}_idle" >/dev/null
setup_database "${DB}_idle"
psql -X -q -d "${DB}_idle" -c "INSERT INTO events (ev) SELECT jsonb_build_object('ip', '198.51.100.' || i) FROM generate_series(1, 10) i" >/dev/null
idle_done=1
for i in $(seq 1 100); do
	[ "$(psql -X -q -At -d "${DB}_idle" -c "SELECT count(*) FROM events WHERE ev #>> '{arcanna,ioc,global,pending_step}' IS NULL")" = 10 ] && { idle_done=0; break; }
	sleep 0.1
done
idle_workers=$(psql -X -q -At -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'anomali_ts worker' AND datname = '${DB}_idle'")
check "a worker finished the rows and stays, idle ($idle_workers running)" \
	test "$((idle_done == 0 && idle_workers == 1))" = 1
start=$(date +%s%N)
psql -X -q -d postgres -c "DROP DATABASE ${DB}_idle" >/dev/null 2>&1
dropped=$?
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
check "plain DROP DATABASE with that idle worker succeeds, in ${elapsed_ms} ms (under 5 s)" \
	test "$((dropped == 0 && elapsed_ms < 5000))" = 1

# 8c. A DROP DATABASE that fails (a session is still connected) has told
#     the worker to leave; its transaction's abort brings the worker back,
#     and the rows queued before the DROP are finished with no new commit.
psql -X -q -d postgres -c "CREATE DATABASE ${DB}_kept" >/dev/null
setup_database "${DB}_kept"
psql -X -q -d postgres -c "ALTER SYSTEM SET anomali_ts.worker_batch_size = 50" -c "SELECT pg_reload_conf()" >/dev/null
sim_control '{"latency_ms": 1500}'
psql -X -q -d "${DB}_kept" -c "INSERT INTO events (ev) SELECT jsonb_build_object('ip', 'h' || i || '.kept.example.net') FROM generate_series(1, 300) i" >/dev/null
psql -X -q -d "${DB}_kept" -c "SELECT pg_sleep(8)" >/dev/null 2>&1 &
holder=$!
sleep 0.5
psql -X -q -d postgres -c "DROP DATABASE ${DB}_kept" >/dev/null 2>&1
drop_failed=$?
sim_control '{}'
check "DROP DATABASE with another session connected fails" [ "$drop_failed" -ne 0 ]
pending_at_failure=$(psql -X -q -At -d "${DB}_kept" -c "SELECT count(*) FROM events WHERE ev #>> '{arcanna,ioc,global,pending_step}' IS NOT NULL")
wait_for_in "${DB}_kept" "SELECT count(*) = 300 FROM events WHERE ev #>> '{arcanna,ioc,global,pending_step}' IS NULL" 30
kept_done=$?
check "the $pending_at_failure rows still queued then are finished with no commit since" \
	test "$((pending_at_failure > 0 && kept_done == 0))" = 1
wait "$holder" 2>/dev/null
psql -X -q -d postgres -c "DROP DATABASE ${DB}_kept WITH (FORCE)" >/dev/null 2>&1

# 9. A busy worker and DROP DATABASE ... WITH (FORCE): ended, no hang.
psql -X -q -d postgres -c "CREATE DATABASE ${DB}_force" >/dev/null
setup_database "${DB}_force"
sim_control '{"latency_ms": 3000}'
psql -X -q -d "${DB}_force" -c "INSERT INTO events (ev) SELECT jsonb_build_object('ip', '198.18.0.' || i) FROM generate_series(1, 100) i" >/dev/null
busy=$(psql -X -q -At -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'anomali_ts worker' AND datname = '${DB}_force'")
start=$(date +%s)
psql -X -q -d postgres -c "DROP DATABASE ${DB}_force WITH (FORCE)" >/dev/null 2>&1
dropped=$?
sim_control '{}'
check "DROP DATABASE WITH (FORCE) ends a busy worker ($busy running) within 10 s" \
	test "$((dropped == 0 && $(date +%s) - start <= 10))" = 1
# (a worker ended that way used to be restarted, every 5 s, into a database
# that no longer exists)
fatal_before=$(grep -c 'FATAL:  database [0-9]* does not exist' "$WORK/server.log" || true)
sleep 7
fatal_after=$(grep -c 'FATAL:  database [0-9]* does not exist' "$WORK/server.log" || true)
check "and is not restarted into the dropped database" [ "$fatal_after" -eq "$fatal_before" ]

# 9b. A failed DROP of a database that takes no connections (template0)
#     starts no worker there; a successful DROP while a session commits
#     queued rows in it leaves no worker restarting into the dropped
#     database.
fatal_t0=$(grep -c 'FATAL:  database "template0" is not currently accepting connections' "$WORK/server.log" || true)
psql -X -q -d postgres -c "DROP DATABASE template0" >/dev/null 2>&1
psql -X -q -d postgres -c "CREATE DATABASE ${DB}_race2" >/dev/null
setup_database "${DB}_race2"
race_oid=$(psql -X -q -At -d postgres -c "SELECT oid FROM pg_database WHERE datname = '${DB}_race2'")
psql -X -q -d "${DB}_race2" -c "BEGIN" -c "INSERT INTO events (ev) VALUES ('{\"ip\": \"198.51.100.7\"}')" \
	-c "SELECT pg_sleep(2)" -c "COMMIT" >/dev/null 2>&1 &
committer=$!
sleep 0.5
psql -X -q -d postgres -c "DROP DATABASE ${DB}_race2" >/dev/null 2>&1
race_dropped=$?
wait "$committer" 2>/dev/null
fatal_r0=$(grep -c "FATAL:  database $race_oid does not exist" "$WORK/server.log" || true)
sleep 7
fatal_t1=$(grep -c 'FATAL:  database "template0" is not currently accepting connections' "$WORK/server.log" || true)
fatal_r1=$(grep -c "FATAL:  database $race_oid does not exist" "$WORK/server.log" || true)
check "a failed DROP DATABASE template0 starts no worker there" [ "$fatal_t1" -eq "$fatal_t0" ]
check "a DROP DATABASE that waited for a session committing queued rows succeeds, and no worker restarts into it" \
	test "$((race_dropped == 0 && fatal_r1 == fatal_r0))" = 1

# 9c. The launcher comes back after a crash restart (here a worker killed
#     with SIGKILL), and so does its retrying of failed starts.
psql -X -q -d postgres -c "CREATE DATABASE ${DB}_crash" >/dev/null
setup_database "${DB}_crash"
sim_control '{"latency_ms": 3000}'
psql -X -q -d "${DB}_crash" -c "INSERT INTO events (ev) SELECT jsonb_build_object('ip', '198.18.1.' || i) FROM generate_series(1, 20) i" >/dev/null
sleep 1
crash_pid=$(psql -X -q -At -d postgres -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'anomali_ts worker' AND datname = '${DB}_crash'")
[ -n "$crash_pid" ] && kill -9 "$crash_pid"
sim_control '{}'
check "after a crash restart the launcher runs again" \
	wait_for_in postgres "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'anomali_ts launcher'" 30
check "and the rows queued before the crash are finished" \
	wait_for_in "${DB}_crash" "SELECT count(*) = 20 FROM events WHERE ev #>> '{arcanna,ioc,global,pending_step}' IS NULL" 40
psql -X -q -d postgres -c "DROP DATABASE ${DB}_crash WITH (FORCE)" >/dev/null 2>&1

# 10. More databases with queued rows than background worker slots: the
#     start that finds no free slot is tried again by the launcher, so every
#     database's rows are finished, with no new commit.  (Five databases,
#     three slots for workers: five, less the launcher and the logical
#     replication launcher.)
restart_server() {
	as_pg env -u SIM_KEY -u ANOMALI_SIM_KEY "$PG_BIN/pg_ctl" -D "$WORK/pgdata" -m fast -w -t 60 \
		restart -l "$WORK/server.log" >/dev/null
}
psql -X -q -d postgres -c "ALTER SYSTEM SET max_worker_processes = 5" \
	-c "ALTER SYSTEM SET anomali_ts.worker_idle_timeout = '2s'" >/dev/null
restart_server
for i in 1 2 3 4 5; do
	psql -X -q -d postgres -c "CREATE DATABASE ${DB}_slot$i" >/dev/null
	setup_database "${DB}_slot$i"
done
sleep 3 # every worker of the setup has left
retries_before=$(grep -c 'could not start a worker for database' "$WORK/server.log" || true)
sim_control '{"latency_ms": 1500}'
for i in 1 2 3 4 5; do
	psql -X -q -d "${DB}_slot$i" -c "INSERT INTO events (ev) SELECT jsonb_build_object('ip', '198.51.100.' || g) FROM generate_series(1, 5) g" >/dev/null
done
sim_control '{}'
slots_done=0
for i in 1 2 3 4 5; do
	wait_for_in "${DB}_slot$i" "SELECT count(*) = 5 FROM events WHERE ev #>> '{arcanna,ioc,global,pending_step}' IS NULL" 40 &&
		slots_done=$((slots_done + 1))
done
retries_after=$(grep -c 'could not start a worker for database' "$WORK/server.log" || true)
check "a worker start found no free slot ($((retries_after - retries_before)) times)" \
	[ "$retries_after" -gt "$retries_before" ]
check "all five databases' rows are finished all the same ($slots_done of 5)" [ "$slots_done" -eq 5 ]
for i in 1 2 3 4 5; do
	psql -X -q -d postgres -c "DROP DATABASE ${DB}_slot$i WITH (FORCE)" >/dev/null 2>&1
done
psql -X -q -d postgres -c "ALTER SYSTEM RESET max_worker_processes" \
	-c "ALTER SYSTEM RESET anomali_ts.worker_idle_timeout" >/dev/null
restart_server

psql -X -q -d postgres -c "ALTER SYSTEM RESET anomali_ts.worker_retry_delay" \
	-c "ALTER SYSTEM RESET anomali_ts.worker_max_attempts" \
	-c "ALTER SYSTEM RESET anomali_ts.worker_batch_size" \
	-c "ALTER SYSTEM RESET anomali_ts.skip_non_public" -c "SELECT pg_reload_conf()" >/dev/null

echo "async: $((checks - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
