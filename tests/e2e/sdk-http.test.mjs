// The same scenarios as sdk.test.mjs, driven by the official SDK's
// StreamableHTTPClientTransport against `kiln serve --http`, plus what only
// HTTP has: concurrent sessions, DELETE, resumption with Last-Event-ID, a
// 2025-03-26 client with batches, and the transport's HTTP-level answers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { waitForExit } from './lib/kiln.mjs';
import { initialize, postHeaders, readEvents, startHttpServer } from './lib/http.mjs';
import {
  defineScenarios, isLateProgressRace, makeClient, recordMessages,
} from './lib/scenarios.mjs';

const TEST_TIMEOUT = { timeout: 60_000 };

async function connectClient(url) {
  const transport = new StreamableHTTPClientTransport(new URL(url));
  const received = recordMessages(transport);
  const { client, protocolErrors } = makeClient('kiln-e2e-http');
  await client.connect(transport);
  return { client, transport, protocolErrors, received };
}

async function connect(t, options = {}) {
  const server = await startHttpServer(t, options);
  const { client, transport, protocolErrors, received } = await connectClient(server.url);
  t.after(() => client.close().catch(() => {}));
  const cancelled = new Set();
  return {
    client, transport, proc: server.proc, received, stateDir: server.stateDir, cancelled, url: server.url,
    stderr: server.stderr,
    // Ends the session (DELETE), then the server (SIGTERM) and returns its
    // exit status.
    async shutdown(ms = 20_000) {
      // Taken before close(), which aborts the GET stream and says so.
      const errors = protocolErrors.filter((e) => !isLateProgressRace(e, received, cancelled));
      await transport.terminateSession();
      await client.close();
      server.proc.kill('SIGTERM');
      const status = await waitForExit(server.proc, ms);
      assert.deepEqual(errors, [], 'the client saw protocol errors');
      return status;
    },
  };
}

defineScenarios(connect);

const text = (r) => r.content.map((c) => c.text ?? '').join('');

test('two concurrent sessions have their own workspaces and cannot see each other\'s files', TEST_TIMEOUT, async (t) => {
  const server = await startHttpServer(t);
  const a = await connectClient(server.url);
  const b = await connectClient(server.url);
  t.after(() => Promise.all([a.client.close(), b.client.close()]));
  assert.notEqual(a.transport.sessionId, b.transport.sessionId);
  assert.match(a.transport.sessionId, /^[\x21-\x7e]{32,}$/, 'a session id of at least 128 bits in visible ASCII');
  let r = await a.client.callTool({ name: 'write_file', arguments: { path: 'secret.txt', content: 'only a' } });
  assert.equal(r.isError, false, text(r));
  r = await b.client.callTool({ name: 'read_file', arguments: { path: 'secret.txt' } });
  assert.equal(r.isError, true, 'session b read session a\'s file');
  r = await b.client.callTool({ name: 'list_files', arguments: { recursive: true } });
  assert.deepEqual(r.structuredContent.entries, []);
  r = await a.client.callTool({ name: 'read_file', arguments: { path: 'secret.txt' } });
  assert.equal(r.structuredContent.content, 'only a');
  r = await a.client.callTool({ name: 'run_code', arguments: { language: 'python', code: 'print(open("secret.txt").read())' } });
  assert.equal(r.structuredContent.stdout, 'only a\n', text(r));
  // Every audit record of a call names the principal (anonymous: no auth).
  const records = readFileSync(join(server.stateDir, 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const calls = records.filter((rec) => rec.session_id === a.transport.sessionId && rec.tool === 'run_code');
  assert.ok(calls.length > 0, 'no audit record of session a\'s run_code');
  for (const rec of calls) assert.equal(rec.principal, 'anonymous');
});

test('DELETE ends the session: its id then gets 404 and a new client can start over', TEST_TIMEOUT, async (t) => {
  const server = await startHttpServer(t);
  const { client, transport } = await connectClient(server.url);
  const id = transport.sessionId;
  await client.callTool({ name: 'write_file', arguments: { path: 'x.txt', content: 'x' } });
  await transport.terminateSession();
  const res = await fetch(server.url, {
    method: 'POST', headers: postHeaders(id, { 'MCP-Protocol-Version': '2025-11-25' }),
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
  });
  assert.equal(res.status, 404);
  const del = await fetch(server.url, { method: 'DELETE', headers: { 'MCP-Session-Id': id } });
  assert.equal(del.status, 404);
  await client.close();
  const again = await connectClient(server.url);
  await again.client.ping();
  await again.client.close();
});

test('a session unused for server.http.session_idle_timeout expires: its id then gets 404', TEST_TIMEOUT, async (t) => {
  const server = await startHttpServer(t, { set: { 'server.http.session_idle_timeout': '1s' } });
  const { session } = await initialize(server.url);
  const ping = () => fetch(server.url, {
    method: 'POST', headers: postHeaders(session, { 'MCP-Protocol-Version': '2025-11-25' }),
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
  });
  assert.equal((await ping()).status, 200);
  await new Promise((r) => setTimeout(r, 3_000));
  assert.equal((await ping()).status, 404);
  assert.match(server.stderr(), new RegExp(`session ${session} expired`));
});

test('a dropped SSE stream is resumed with Last-Event-ID: the call goes on and nothing is lost', TEST_TIMEOUT, async (t) => {
  const server = await startHttpServer(t);
  const { session } = await initialize(server.url);
  const headers = postHeaders(session, { 'MCP-Protocol-Version': '2025-11-25' });
  const controller = new AbortController();
  const res = await fetch(server.url, {
    method: 'POST', headers, signal: controller.signal,
    body: JSON.stringify({
      jsonrpc: '2.0', id: 'slow', method: 'tools/call',
      params: { name: 'debug_sleep', arguments: { seconds: 1.5, steps: 5 }, _meta: { progressToken: 'p' } },
    }),
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /text\/event-stream/);
  // The priming event (an id, no message), then the first progress.
  const first = await readEvents(res, (events) => events.some((e) => e.data && e.data.length > 0));
  assert.equal(first[0].data, '', 'the first event primes the stream');
  assert.ok(first[0].id && first[0].retry, 'the priming event carries an id and retry');
  const last = first.filter((e) => e.id).at(-1);
  controller.abort(); // the connection drops: not a cancellation
  const resumed = await fetch(server.url, {
    method: 'GET', headers: { Accept: 'text/event-stream', 'MCP-Session-Id': session, 'MCP-Protocol-Version': '2025-11-25', 'Last-Event-ID': last.id },
  });
  assert.equal(resumed.status, 200);
  const rest = await readEvents(resumed, (events) => events.some((e) => e.data?.includes('"result"')));
  const messages = [...first, ...rest].filter((e) => e.data).map((e) => JSON.parse(e.data));
  const progress = messages.filter((m) => m.method === 'notifications/progress').map((m) => m.params.progress);
  assert.deepEqual(progress, [1, 2, 3, 4, 5], 'every progress event exactly once across the two connections');
  const result = messages.find((m) => m.id === 'slow');
  assert.equal(result.result.structuredContent.cancelled, false);
  // Message events have unique ids naming their stream; a priming event
  // repeats the position it starts from.
  const ids = [...first, ...rest].filter((e) => e.data).map((e) => e.id);
  assert.equal(new Set(ids).size, ids.length, 'event ids are unique');
  assert.equal(new Set(ids.map((id) => id.split('.')[0])).size, 1, 'all on the POST\'s stream');
  // An id the buffer never held is a clear error, not a silent empty stream.
  const bogus = await fetch(server.url, {
    method: 'GET', headers: { Accept: 'text/event-stream', 'MCP-Session-Id': session, 'Last-Event-ID': 'p99.1' },
  });
  assert.equal(bogus.status, 400);
  assert.match((await bogus.json()).error.message, /Last-Event-ID/);
});

test('a 2025-03-26 client: no MCP-Protocol-Version header, and a batch answered as an array', TEST_TIMEOUT, async (t) => {
  const server = await startHttpServer(t);
  const init = await initialize(server.url, '2025-03-26');
  assert.equal(init.body.result.protocolVersion, '2025-03-26');
  const res = await fetch(server.url, {
    method: 'POST', headers: postHeaders(init.session),
    body: JSON.stringify([
      { jsonrpc: '2.0', method: 'notifications/initialized' },
      { jsonrpc: '2.0', id: 1, method: 'ping' },
      { jsonrpc: '2.0', id: 2, method: 'tools/list' },
    ]),
  });
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.ok(Array.isArray(body));
  assert.deepEqual(body.map((m) => m.id).sort(), [1, 2]);
  assert.ok(body.find((m) => m.id === 2).result.tools.length > 0);
  // A 2025-11-25 session refuses batches.
  const modern = await initialize(server.url);
  const refused = await fetch(server.url, {
    method: 'POST', headers: postHeaders(modern.session, { 'MCP-Protocol-Version': '2025-11-25' }),
    body: JSON.stringify([{ jsonrpc: '2.0', id: 1, method: 'ping' }]),
  });
  assert.equal(refused.status, 400);
  assert.match((await refused.json()).error.message, /2025-03-26/);
});

test('HTTP-level answers: 400 without a session id or with a bad version, 403 for a foreign Origin, 413, 202', TEST_TIMEOUT, async (t) => {
  const server = await startHttpServer(t, { set: { 'server.max_message_bytes': '4K' } });
  const ping = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' });
  const { session } = await initialize(server.url);
  const post = (headers, body = ping) => fetch(server.url, { method: 'POST', headers, body });

  let res = await post(postHeaders());
  assert.equal(res.status, 400);
  assert.match((await res.json()).error.message, /MCP-Session-Id/);

  res = await post(postHeaders(session, { 'MCP-Protocol-Version': '1999-01-01' }));
  assert.equal(res.status, 400);
  assert.match((await res.json()).error.message, /MCP-Protocol-Version/);

  res = await post(postHeaders(session, { Origin: 'https://evil.example' }));
  assert.equal(res.status, 403);
  res = await post(postHeaders(session, { Origin: new URL(server.url).origin }));
  assert.equal(res.status, 200, 'the server\'s own loopback origin is allowed');

  res = await post(postHeaders(session), JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping', params: { pad: 'x'.repeat(5000) } }));
  assert.equal(res.status, 413);
  assert.match((await res.json()).error.message, /server\.max_message_bytes/);

  res = await post(postHeaders(session), JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
  assert.equal(res.status, 202);
  assert.equal(await res.text(), '');

  res = await post(postHeaders('not-a-session'));
  assert.equal(res.status, 404);

  res = await fetch(`${server.base}/healthz`);
  assert.equal(res.status, 200);
  res = await fetch(`${server.base}/readyz`);
  assert.equal(res.status, 200, await res.text());
});

test('a non-loopback address without authentication refuses to start', TEST_TIMEOUT, async (t) => {
  const { spawnSync } = await import('node:child_process');
  const { kilnBin, makeStateDir, removeStateDir, serveArgs, serverEnv } = await import('./lib/kiln.mjs');
  const dir = makeStateDir();
  t.after(() => removeStateDir(dir));
  const r = spawnSync(kilnBin(), serveArgs(dir, { flags: ['--http', '0.0.0.0:0'] }), { env: serverEnv(), encoding: 'utf8', timeout: 20_000 });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /without authentication.*allow_unauthenticated_remote/s);
});
