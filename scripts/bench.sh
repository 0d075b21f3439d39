#!/usr/bin/env bash
# bench.sh: measures what mcp-guard costs and writes bench/results.md (and
# bench/results.json). `make bench` runs it after scripts/install-deps.sh.
#
# It builds mcp-guard, the plain baseline server and the load generator,
# runs the guard's decision benchmarks, starts a throwaway PostgreSQL
# (scripts/pg.sh) on a free loopback port, and runs bench/cmd/loadgen,
# which drives every server with mcp-go clients. Everything it starts is
# stopped and removed on exit. About five minutes on two cores.
#
#   BENCH_QUICK=1   a short run, to try the benchmark itself; results go to
#                   the work directory instead of bench/
#   BENCH_KEEP=1    keep the work directory (logs, configurations)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "bench: $*" >&2; }

work=$(mktemp -d /tmp/mcp-guard-bench.XXXXXX)
# The cluster's directory must be reachable by the postgres OS user, so it
# is not inside the work directory (mode 0700).
pgdir=$(mktemp -d /tmp/mcp-guard-bench-pg.XXXXXX)
cleanup() {
	bash scripts/pg.sh stop "$pgdir" >/dev/null 2>&1 || rm -rf -- "$pgdir"
	if [ -n "${BENCH_KEEP:-}" ]; then
		log "kept $work"
	else
		rm -rf -- "$work"
	fi
}
trap cleanup EXIT

# free_port prints a loopback TCP port nothing listens on.
free_port() {
	local p i
	for i in $(seq 1 50); do
		p=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	log "no free port found"
	exit 1
}

quick=()
out=bench
count=5
if [ -n "${BENCH_QUICK:-}" ]; then
	quick=(-quick)
	out=$work
	count=1
fi

log "building"
mkdir -p "$work/bin" "$work/run"
version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
go build -ldflags "-X github.com/mcp-guard/mcp-guard/app.Version=$version" \
	-o "$work/bin/mcp-guard" ./cmd/mcp-guard
go build -o "$work/bin/plainserver" ./bench/cmd/plainserver
go build -o "$work/bin/loadgen" ./bench/cmd/loadgen

log "decision benchmarks (go test -bench, $count runs)"
go test -run '^$' -bench 'Decide|Policy' -benchmem -count "$count" ./guard \
	| tee "$work/decide.txt" | grep -E '^(Benchmark|ok|FAIL)' >&2

log "recording-cost benchmarks (go test -bench, 3 runs)"
go test -run '^$' -bench 'RecordingCost' -benchtime 1000x -count 3 ./guard \
	| tee "$work/recording.txt" | grep -E '^(Benchmark|ok|FAIL)' >&2

port=$(free_port)
log "starting PostgreSQL on 127.0.0.1:$port"
dsn=$(bash scripts/pg.sh start "$pgdir" "$port")

log "load phases"
BENCH_DSN=$dsn "$work/bin/loadgen" "${quick[@]}" \
	-guard "$work/bin/mcp-guard" -plain "$work/bin/plainserver" \
	-work "$work/run" -decide "$work/decide.txt" -recording "$work/recording.txt" -notes bench/notes.md \
	-commit "$version" -json "$out/results.json" -md "$out/results.md"
log "wrote $out/results.md"
