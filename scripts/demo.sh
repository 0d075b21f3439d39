#!/usr/bin/env bash
# demo.sh: start a throwaway PostgreSQL seeded with the shop data and serve
# examples/demo.yaml over streamable HTTP on loopback. Ctrl-C stops both.
#
#   MCP_GUARD_DEMO_ADDR  where to listen (default 127.0.0.1:8080)
#   MCP_GUARD_DEMO_PGPORT  the database's port (default 55432)
set -euo pipefail
cd "$(dirname "$0")/.."

addr=${MCP_GUARD_DEMO_ADDR:-127.0.0.1:8080}
pgport=${MCP_GUARD_DEMO_PGPORT:-55432}
pgdir=$PWD/var/demo/pg

mkdir -p var/demo
APPDB_DSN=$(bash scripts/pg.sh start "$pgdir" "$pgport")
export APPDB_DSN
cleanup() { bash scripts/pg.sh stop "$pgdir" >/dev/null 2>&1 || true; }
trap cleanup EXIT

cat <<MSG

mcp-guard demo: PostgreSQL (database appdb, shop data) on 127.0.0.1:$pgport,
the guard on http://$addr/mcp with the bundled default policy.
Transcripts go to var/demo/mcp-guard.db.

Connect an MCP client:

  Claude Code, Cursor, VS Code: see examples/ (HTTP form):
    {"mcpServers": {"mcp-guard": {"type": "http", "url": "http://$addr/mcp"}}}

  MCP Inspector CLI:
    npx @modelcontextprotocol/inspector@1.0.3 --cli http://$addr/mcp --transport http --method tools/list
    npx @modelcontextprotocol/inspector@1.0.3 --cli http://$addr/mcp --transport http \\
      --method tools/call --tool-name query_database --tool-arg target=appdb \\
      --tool-arg 'sql=SELECT id, company, email FROM customers ORDER BY id LIMIT 5'

Try a write (needs approval), a read of .env (denied), and the transcript:
  bin/mcp-guard audit sessions --config examples/demo.yaml

Press Ctrl-C to stop.

MSG

bin/mcp-guard serve --config examples/demo.yaml --http "$addr" &
guard=$!
trap 'kill -TERM $guard 2>/dev/null; wait $guard 2>/dev/null; cleanup' INT TERM
wait $guard
