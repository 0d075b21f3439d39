#!/usr/bin/env bash
# install-deps.sh: installs what building and testing mcp-guard needs on a
# Debian machine, as root. Idempotent, and quick when all is present: it
# only runs apt-get (and its update) when something is missing.
#
#   - PostgreSQL server binaries (initdb, pg_ctl), for internal/pgtest and
#     scripts/pg.sh; the package is told not to create a cluster of its own
#   - runuser and a postgres OS user (initdb refuses to run as root)
#   - make and a C compiler (the SQL parser binding uses cgo)
#   - Node and the packages of interop/ (the SDK interop client)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "install-deps: $*" >&2; }

apt_updated=
apt_install() {
	if [ "$(id -u)" -ne 0 ]; then
		log "missing $*; run this script as root to install it"
		exit 1
	fi
	if [ -z "$apt_updated" ]; then
		log "apt-get update"
		apt-get update -qq
		apt_updated=1
	fi
	log "installing $*"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends "$@" >/dev/null
}

have_postgres() {
	local f
	for f in /usr/lib/postgresql/*/bin/initdb; do
		[ -x "$f" ] && return 0
	done
	command -v initdb >/dev/null 2>&1
}

if ! have_postgres; then
	# Tests start their own throwaway clusters; the package's default
	# cluster would only hold a port and memory.
	mkdir -p /etc/postgresql-common/createcluster.d
	echo "create_main_cluster = false" \
		>/etc/postgresql-common/createcluster.d/mcp-guard.conf
	apt_install postgresql
	have_postgres || { log "initdb still missing after install"; exit 1; }
fi

command -v runuser >/dev/null 2>&1 || apt_install util-linux

if ! id -u postgres >/dev/null 2>&1; then
	[ "$(id -u)" -eq 0 ] || { log "no postgres OS user; run as root"; exit 1; }
	log "adding the postgres OS user"
	if getent group postgres >/dev/null; then
		group=(--gid postgres)
	else
		group=(--user-group)
	fi
	useradd --system "${group[@]}" --home-dir /var/lib/postgresql \
		--no-create-home --shell /bin/sh postgres
fi

command -v make >/dev/null 2>&1 || apt_install make
command -v gcc >/dev/null 2>&1 || apt_install gcc libc6-dev

if [ ! -d interop/node_modules ]; then
	command -v npm >/dev/null 2>&1 || apt_install nodejs npm
	log "installing interop/ packages"
	if [ -f interop/package-lock.json ]; then
		(cd interop && npm ci --no-audit --no-fund --loglevel=error)
	else
		(cd interop && npm install --no-audit --no-fund --loglevel=error)
	fi
fi
