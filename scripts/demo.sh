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
# The cluster lives outside the repository, so that neither the files
# target nor the shell target can reach its password file. The port is in
# its name, so that two demos on two ports keep apart.
pgdir=${TMPDIR:-/tmp}/mcp-guard-demo-pg-$pgport

mkdir -p var/demo
chmod 700 var/demo
superuser_dsn=$(bash scripts/pg.sh start "$pgdir" "$pgport")
cleanup() { bash scripts/pg.sh stop "$pgdir" >/dev/null 2>&1 || true; }
trap cleanup EXIT

# The guard connects as a least-privilege role: it may read and, once a
# person approves, write the shop's tables, but it is no superuser, so
# server files, programs and other roles stay out of reach even if a
# statement got past the policy.
app_password=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
# The test cluster logs every statement; this session must not, or the
# role's password would sit in the server log.
psql -q -v ON_ERROR_STOP=1 "$superuser_dsn" >/dev/null <<SQL
SET log_statement = 'none';
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'guard_app') THEN
    CREATE ROLE guard_app LOGIN;
  END IF;
END \$\$;
ALTER ROLE guard_app PASSWORD '$app_password' NOSUPERUSER NOCREATEDB NOCREATEROLE;
GRANT USAGE ON SCHEMA public TO guard_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO guard_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO guard_app;
SQL
APPDB_DSN="postgres://guard_app:$app_password@127.0.0.1:$pgport/appdb?sslmode=disable"
export APPDB_DSN
unset superuser_dsn app_password

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

Try a write: it waits up to 30 s for approval (approved in time, it runs;
otherwise it answers approval_pending with a request id, and you call again
once it is approved):
    npx @modelcontextprotocol/inspector@1.0.3 --cli http://$addr/mcp --transport http \\
      --method tools/call --tool-name query_database --tool-arg target=appdb \\
      --tool-arg "sql=UPDATE customers SET company = 'Northwind Traders Ltd' WHERE id = 1"
  and approve it from another terminal (the request shows a few seconds after
  the call starts, once npx is up):
    bin/mcp-guard approvals list --config examples/demo.yaml --state pending
    bin/mcp-guard approvals approve REQUEST_ID --as carol@example.com --config examples/demo.yaml
Read .env in the workspace (denied):
    npx @modelcontextprotocol/inspector@1.0.3 --cli http://$addr/mcp --transport http \\
      --method tools/call --tool-name read_file --tool-arg target=workspace --tool-arg path=.env
Look at the transcript (audit show takes a session id from audit sessions):
    bin/mcp-guard audit sessions --config examples/demo.yaml
    bin/mcp-guard audit show SESSION_ID --config examples/demo.yaml
    bin/mcp-guard audit verify --config examples/demo.yaml

Stop with Ctrl-C (or kill -TERM this script): PostgreSQL is removed; the
transcript (var/demo/mcp-guard.db and its journal) and keys stay.

Press Ctrl-C to stop.

MSG

bin/mcp-guard serve --config examples/demo.yaml --http "$addr" &
guard=$!
# Stopping is the normal end of the demo, so it exits 0.
trap 'kill -TERM $guard 2>/dev/null; wait $guard 2>/dev/null; cleanup; exit 0' INT TERM
wait $guard
