#!/usr/bin/env bash
# pg.sh: a throwaway PostgreSQL cluster for the demo, like the one tests
# get from internal/pgtest.
#
#   scripts/pg.sh start DIR PORT   start it (making it on first use) on
#                                  127.0.0.1:PORT with database appdb seeded
#                                  from internal/pgtest/appdb.sql; prints the
#                                  superuser DSN on stdout
#   scripts/pg.sh stop DIR         stop it and remove DIR
#
# The superuser password is random, kept in DIR/password (mode 0600).
# Starting a cluster that already runs just prints its DSN. As root, the
# server runs as the postgres OS user (initdb refuses root). PGTEST_BINDIR
# picks the server binaries, as for the tests.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
fixture="$here/../internal/pgtest/appdb.sql"
marker=.pg.sh-cluster

log() { echo "pg.sh: $*" >&2; }
die() { log "$*"; exit 1; }

usage() {
	echo "usage: $0 start DIR PORT | $0 stop DIR" >&2
	exit 2
}

find_bindir() {
	if [ -n "${PGTEST_BINDIR:-}" ]; then
		[ -x "$PGTEST_BINDIR/initdb" ] || die "PGTEST_BINDIR=$PGTEST_BINDIR has no initdb"
		echo "$PGTEST_BINDIR"
		return
	fi
	local best="" dir v
	for dir in /usr/lib/postgresql/*/bin; do
		[ -x "$dir/initdb" ] || continue
		v=$(basename "$(dirname "$dir")")
		if [ -z "$best" ] || [ "$v" -gt "$(basename "$(dirname "$best")")" ]; then
			best=$dir
		fi
	done
	if [ -z "$best" ] && command -v initdb >/dev/null 2>&1; then
		best=$(dirname "$(readlink -f "$(command -v initdb)")")
	fi
	[ -n "$best" ] || die "no PostgreSQL server binaries; run scripts/install-deps.sh"
	echo "$best"
}

# as_owner runs a command as the server's OS user.
as_owner() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

running() {
	[ -f "$dir/data/postmaster.pid" ] &&
		as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1
}

dsn() { echo "postgres://postgres:$(cat "$dir/password")@127.0.0.1:$port/appdb?sslmode=disable"; }

init_cluster() {
	mkdir -p "$dir"
	touch "$dir/$marker"
	(umask 077 && od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$dir/password")
	if [ "$(id -u)" -eq 0 ]; then
		chown postgres: "$dir"
	fi

	local pwfile="$dir/pwfile"
	(umask 077 && { cat "$dir/password"; echo; } >"$pwfile")
	[ "$(id -u)" -ne 0 ] || chown postgres: "$pwfile"
	# Run from DIR: the caller's directory may be closed to postgres.
	if ! (cd "$dir" && as_owner "$bin/initdb" -D "$dir/data" -U postgres \
		--pwfile="$pwfile" --auth=scram-sha-256 --encoding=UTF8 \
		--locale=C --no-sync >"$dir/initdb.log" 2>&1); then
		rm -f "$pwfile"
		cat "$dir/initdb.log" >&2
		die "initdb failed"
	fi
	rm -f "$pwfile"

	cat >>"$dir/data/postgresql.conf" <<-CONF

	# pg.sh
	listen_addresses = '127.0.0.1'
	unix_socket_directories = '$dir'
	fsync = off
	synchronous_commit = off
	full_page_writes = off
	log_statement = 'all'
	log_line_prefix = '%m [%p] %q%u@%d '
	lc_messages = 'C'
	timezone = 'UTC'
	CONF
}

seed() {
	export PGPASSWORD
	PGPASSWORD=$(cat "$dir/password")
	local psql=("$bin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres)
	local have
	have=$("${psql[@]}" -d postgres -tA -c "SELECT 1 FROM pg_database WHERE datname = 'appdb'")
	if [ "$have" != 1 ]; then
		log "seeding database appdb"
		"${psql[@]}" -d postgres -c "CREATE DATABASE appdb" >/dev/null
		"${psql[@]}" -d appdb -1 -f "$fixture" >/dev/null
	fi
	unset PGPASSWORD
}

cmd_start() {
	[[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ] ||
		die "bad port: $port"
	[ -r "$fixture" ] || die "fixture not found: $fixture"

	if running; then
		log "already running in $dir"
		dsn
		return
	fi
	if [ ! -f "$dir/data/PG_VERSION" ]; then
		[ ! -e "$dir" ] || [ -z "$(ls -A "$dir")" ] || [ -f "$dir/$marker" ] ||
			die "$dir is not empty and was not made by pg.sh"
		init_cluster
	fi

	if ! (cd "$dir" && as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" \
		-o "-p $port" -w -t 60 start >/dev/null); then
		tail -n 20 "$dir/log" >&2 || true
		die "pg_ctl start failed"
	fi
	seed
	dsn
}

cmd_stop() {
	[ -f "$dir/$marker" ] || die "$dir was not made by pg.sh; not touching it"
	if running; then
		(cd "$dir" && as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null)
	fi
	rm -rf -- "$dir"
	log "stopped and removed $dir"
}

case "${1:-}" in
start)
	[ $# -eq 3 ] || usage
	dir=$(realpath -m -- "$2")
	port=$3
	bin=$(find_bindir)
	cmd_start
	;;
stop)
	[ $# -eq 2 ] || usage
	dir=$(realpath -m -- "$2")
	bin=$(find_bindir)
	cmd_stop
	;;
*)
	usage
	;;
esac
