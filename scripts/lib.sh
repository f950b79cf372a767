# Shared shell functions of the test, demo and benchmark commands: installing
# what is missing, building the extension, and running a throwaway
# PostgreSQL cluster and the ThreatStream simulator on loopback.
#
# Source it; it defines functions only.  Every process it starts is recorded
# in $WORK and stopped by cleanup, which callers install as an EXIT trap.

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# psql, createdb, pg_dump and pg_config of that installation come first
export PATH="$PG_BIN:$PATH"

# Print a progress line
say() { printf '== %s\n' "$*" >&2; }

# Install the build and run dependencies with apt-get when they are missing
ensure_deps() {
	local missing=()
	local pkg
	for pkg in postgresql-15 postgresql-server-dev-15 \
		libcurl4-openssl-dev libssl-dev python3 openssl make gcc clang libclang-rt-14-dev bc "$@"; do
		dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		say "installing ${missing[*]}"
		if [ "$(id -u)" -eq 0 ]; then
			DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >/dev/null ||
				{ apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >/dev/null; }
		else
			sudo DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >/dev/null
		fi
	fi
}

# Build with -Werror and install into the server's directories
build_install() {
	say "building and installing anomali_ts"
	make -C "$REPO" -s PG_CONFIG="$PG_BIN/pg_config" >/dev/null
	if [ "$(id -u)" -eq 0 ]; then
		make -C "$REPO" -s install PG_CONFIG="$PG_BIN/pg_config" >/dev/null
	else
		sudo make -C "$REPO" -s install PG_CONFIG="$PG_BIN/pg_config" >/dev/null
	fi
}

# Run a command as the unprivileged server user when we are root
# (from /, which the server user can always enter, whatever the caller's
# working directory)
as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		(cd / && runuser -u postgres -- "$@")
	else
		"$@"
	fi
}

# A free TCP port on loopback
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Create $WORK, a scratch directory the server user can write
make_workdir() {
	WORK=$(mktemp -d /tmp/anomali_ts.XXXXXX)
	chmod 755 "$WORK"
	[ "$(id -u)" -eq 0 ] && chown postgres: "$WORK"
	export WORK
}

# Start a throwaway cluster in $WORK/pgdata; extra lines of
# postgresql.conf come on standard input
start_cluster() {
	PGPORT=$(free_port)
	export PGPORT PGHOST="$WORK" PGUSER=postgres PGDATABASE=postgres
	say "starting a throwaway PostgreSQL 15 cluster on port $PGPORT"
	as_pg "$PG_BIN/initdb" -D "$WORK/pgdata" -U postgres -A trust --no-sync >/dev/null
	{
		echo "port = $PGPORT"
		echo "listen_addresses = ''"
		echo "unix_socket_directories = '$WORK'"
		echo "shared_preload_libraries = 'anomali_ts'"
		echo "fsync = off"
		cat
	} | as_pg tee -a "$WORK/pgdata/postgresql.conf" >/dev/null
	local postgres=()
	if [ -n "${ANOMALI_VALGRIND:-}" ]; then
		# Every backend runs under Memcheck; logs in $WORK/valgrind.<pid>.log
		cat >"$WORK/postgres-valgrind" <<WRAP
#!/bin/sh
exec valgrind --quiet --trace-children=yes --num-callers=30 \\
	--log-file=$WORK/valgrind.%p.log "$PG_BIN/postgres" "\$@"
WRAP
		chmod 755 "$WORK/postgres-valgrind"
		postgres=(-p "$WORK/postgres-valgrind")
	fi
	# The server's environment must not carry an API key: debug logging
	# prints the postmaster's environment
	as_pg env -u SIM_KEY -u ANOMALI_SIM_KEY -u TS_KEY -u ANOMALI_TS_API_KEY \
		"$PG_BIN/pg_ctl" "${postgres[@]}" -D "$WORK/pgdata" -l "$WORK/server.log" \
		-w -t 300 start >/dev/null
}

# Start a simulator named NAME in the background with more options, and
# wait (10 s at most) for $WORK/NAME.port; its pid goes to $WORK/NAME.pid
run_simulator() {
	local name=$1 i
	shift
	python3 "$REPO/test/simulator/threatstream_sim.py" --host 127.0.0.1 --port 0 \
		--port-file "$WORK/$name.port" --user "$SIM_USER:$SIM_KEY" \
		"$@" 2>"$WORK/$name.err" &
	echo $! >"$WORK/$name.pid"
	for i in $(seq 1 100); do
		[ -s "$WORK/$name.port" ] && return 0
		sleep 0.1
	done
	cat "$WORK/$name.err" >&2
	return 1
}

# Start the simulator; arguments are NDJSON indicator files.  Sets SIM_URL,
# SIM_USER and SIM_KEY (a fresh random key) and SIM_ADMIN.
start_simulator() {
	local args=()
	local f
	for f in "$@"; do args+=(--data "$f"); done
	SIM_USER=analyst@example.com
	SIM_KEY=$(openssl rand -hex 20)
	run_simulator sim --log-file "$WORK/sim.log" --control-file "$WORK/sim.control.json" \
		"${args[@]}" || return 1
	SIM_PORT=$(cat "$WORK/sim.port")
	SIM_URL="http://127.0.0.1:$SIM_PORT/api/v2/intelligence/"
	SIM_ADMIN="http://127.0.0.1:$SIM_PORT/__admin"
	export SIM_USER SIM_KEY SIM_URL SIM_PORT SIM_ADMIN
	say "ThreatStream simulator listening on 127.0.0.1:$SIM_PORT"
}

# Make a throwaway CA and a certificate for 127.0.0.1 signed by it, in
# $WORK/tls (ca.pem, server.pem, server.key), with the openssl CLI
make_test_ca() {
	local d="$WORK/tls"
	mkdir -p "$d"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=anomali_ts test CA" \
		-keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
		-keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
	printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >"$d/ext.cnf"
	openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
		-CAcreateserial -days 2 -extfile "$d/ext.cnf" -out "$d/server.pem" 2>/dev/null
	chmod 644 "$d"/*.pem
}

# Start a second simulator serving HTTPS with the test CA's certificate;
# sets TLS_URL
start_tls_simulator() {
	run_simulator sim-tls --tls-cert "$WORK/tls/server.pem" --tls-key "$WORK/tls/server.key" \
		"$@" || return 1
	TLS_URL="https://127.0.0.1:$(cat "$WORK/sim-tls.port")/api/v2/intelligence/"
	export TLS_URL
	say "HTTPS simulator listening on $TLS_URL"
}

# Stop everything started above and remove $WORK (unless KEEP_WORK is set)
cleanup() {
	[ -n "${WORK:-}" ] || return 0
	local pidfile
	for pidfile in "$WORK"/*.pid; do
		[ -f "$pidfile" ] || continue
		kill "$(cat "$pidfile")" 2>/dev/null || true
		wait "$(cat "$pidfile")" 2>/dev/null || true
	done
	if [ -f "$WORK/pgdata/postmaster.pid" ]; then
		as_pg "$PG_BIN/pg_ctl" -D "$WORK/pgdata" -m fast -w -t 60 stop >/dev/null 2>&1 || true
	fi
	if [ -z "${KEEP_WORK:-}" ]; then
		rm -rf "$WORK"
	else
		say "kept $WORK"
	fi
}
