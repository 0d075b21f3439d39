#!/usr/bin/env node
// client.mjs drives an MCP server with the official TypeScript SDK, so the
// guard is checked against an implementation other than its own library.
//
// Usage:
//   node client.mjs [--ops FILE] --http URL [--header K:V ...]
//   node client.mjs [--ops FILE] --stdio CMD [ARGS...]
//
// --stdio takes every argument after it as the server command line, so it
// must come last. Operations are a JSON array read from --ops FILE, or from
// stdin when --ops is absent:
//
//   [{"op":"list"},
//    {"op":"call","name":"query_database","arguments":{"sql":"select 1"}}]
//
// Each operation prints one JSON line on stdout:
//   {"op":"list","result":{"tools":[...]}}
//   {"op":"call","name":"...","result":{...CallToolResult...}}
//   {"op":"call","name":"...","error":"message"}
//
// Tools are listed once before the first operation, so callTool() knows
// every output schema and checks structuredContent against it, also on
// isError results. A result that breaks its schema is reported as an error.
//
// The stdio server gets this process's whole environment (the SDK would
// otherwise pass only a few variables) and shares its stderr.
//
// Exit status: 0 when all operations ran (each may still have failed),
// 2 on bad usage or bad operations, 3 when the connection failed.

import { readFileSync } from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const EXIT_USAGE = 2;
const EXIT_CONNECT = 3;

class UsageError extends Error {}

function parseArgs(argv) {
  const opts = { headers: {} };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new UsageError(`${arg} needs a value`);
      return argv[++i];
    };
    switch (arg) {
      case '--ops':
        opts.opsFile = value();
        break;
      case '--http':
        opts.url = value();
        break;
      case '--header': {
        const h = value();
        const colon = h.indexOf(':');
        if (colon <= 0) throw new UsageError(`--header wants K:V, got ${JSON.stringify(h)}`);
        opts.headers[h.slice(0, colon).trim()] = h.slice(colon + 1).trim();
        break;
      }
      case '--stdio':
        if (i + 1 >= argv.length) throw new UsageError('--stdio needs a command');
        opts.command = argv[i + 1];
        opts.args = argv.slice(i + 2);
        i = argv.length;
        break;
      default:
        throw new UsageError(`unknown argument ${JSON.stringify(arg)}`);
    }
  }
  if (!opts.url === !opts.command) {
    throw new UsageError('give exactly one of --http URL or --stdio CMD');
  }
  if (opts.command && Object.keys(opts.headers).length > 0) {
    throw new UsageError('--header works only with --http');
  }
  return opts;
}

function readOps(opsFile) {
  let text;
  try {
    text = readFileSync(opsFile ?? 0, 'utf8');
  } catch (err) {
    throw new UsageError(`read operations: ${err.message}`);
  }
  let ops;
  try {
    ops = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`parse operations: ${err.message}`);
  }
  if (!Array.isArray(ops)) throw new UsageError('operations must be a JSON array');
  const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
  ops.forEach((op, i) => {
    const bad = (why) => new UsageError(`operation ${i}: ${why}`);
    if (!isObject(op)) throw bad('not an object');
    if (op.op === 'list') return;
    if (op.op !== 'call') throw bad(`unknown op ${JSON.stringify(op.op)}`);
    if (typeof op.name !== 'string' || op.name === '') throw bad('call needs a name');
    if (op.arguments !== undefined && !isObject(op.arguments)) {
      throw bad('arguments must be an object');
    }
  });
  return ops;
}

function makeTransport(opts) {
  if (opts.url) {
    let url;
    try {
      url = new URL(opts.url);
    } catch {
      throw new UsageError(`bad URL ${JSON.stringify(opts.url)}`);
    }
    return new StreamableHTTPClientTransport(url, { requestInit: { headers: opts.headers } });
  }
  const env = Object.fromEntries(Object.entries(process.env).filter(([, v]) => v !== undefined));
  return new StdioClientTransport({
    command: opts.command,
    args: opts.args,
    env,
    stderr: 'inherit',
  });
}

// listAllTools follows pagination, then caches every tool's metadata at
// once: the SDK's own cache keeps only the page it fetched last.
async function listAllTools(client) {
  const tools = [];
  let cursor;
  do {
    const page = await client.listTools(cursor ? { cursor } : undefined);
    tools.push(...page.tools);
    cursor = page.nextCursor;
  } while (cursor);
  client.cacheToolMetadata(tools);
  return tools;
}

function print(line) {
  process.stdout.write(JSON.stringify(line) + '\n');
}

async function runOp(client, op) {
  if (op.op === 'list') {
    try {
      print({ op: 'list', result: { tools: await listAllTools(client) } });
    } catch (err) {
      print({ op: 'list', error: err.message });
    }
    return;
  }
  try {
    const result = await client.callTool({ name: op.name, arguments: op.arguments ?? {} });
    print({ op: 'call', name: op.name, result });
  } catch (err) {
    print({ op: 'call', name: op.name, error: err.message });
  }
}

async function main() {
  let opts, ops, transport;
  try {
    opts = parseArgs(process.argv.slice(2));
    ops = readOps(opts.opsFile);
    transport = makeTransport(opts);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`client.mjs: ${err.message}\n`);
    return EXIT_USAGE;
  }

  const client = new Client({ name: 'mcp-guard-interop', version: '0.0.0' });
  try {
    await client.connect(transport);
    await listAllTools(client);
  } catch (err) {
    process.stderr.write(`client.mjs: connect: ${err.message}\n`);
    await client.close().catch(() => {});
    return EXIT_CONNECT;
  }

  for (const op of ops) {
    await runOp(client, op);
  }
  await client.close();
  return 0;
}

process.exitCode = await main();
