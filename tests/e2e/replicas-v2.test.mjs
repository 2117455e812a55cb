// The official SDK's v2 client (@modelcontextprotocol/client, MCP
// 2026-07-28, stateless) through haproxy round robin over three replicas
// that share one workspace store and one requestState key: with no session,
// each request goes to the next replica, so a workspace made on one is
// written on another and read by code on a third, and an approval asked on
// one is answered on another. The answer replayed lands on the third and
// is refused (the shared ledger of redeemed states). A 2025-11-25 client
// keeps working through the same proxy (its session sticks to a replica).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';

import { connect, freePort, makeCluster, startProxy, startReplica, verifyAudit } from './lib/cluster.mjs';

// Balanced policy asks for approval of a shell command from the
// environment; each run that is let through adds a line to approvals.txt.
const RISKY = "import os, subprocess\nprint(subprocess.run(os.environ.get('E2E_CMD', 'echo approved'),shell=True,capture_output=True,text=True).stdout, end='')\nopen('approvals.txt', 'a').write('ran\\n')\n";
const text = (r) => r.content.map((c) => c.text ?? '').join('');

// A v2 client as `token`'s principal that records, for every HTTP exchange,
// the JSON-RPC method, the request's params and the replica that answered.
function recordingClient(url, token, asked) {
  const exchanges = [];
  const recording = async (input, init = {}) => {
    const headers = new Headers(init.headers);
    headers.set('Authorization', `Bearer ${token}`);
    const res = await fetch(input, { ...init, headers });
    let body = {};
    try { body = JSON.parse(init.body ?? '{}'); } catch { /* not JSON-RPC */ }
    exchanges.push({ method: body.method, params: body.params, replica: res.headers.get('kiln-replica') });
    return res;
  };
  const client = new Client({ name: 'kiln-e2e-replicas-v2', version: '1.0.0' },
    { capabilities: { elicitation: {} }, versionNegotiation: { mode: 'auto' } });
  client.setRequestHandler('elicitation/create', async (req) => {
    asked.push(req.params.message);
    return { action: 'accept', content: { choice: 'approve_once' } };
  });
  const transport = new StreamableHTTPClientTransport(new URL(url), { fetch: recording });
  return { client, transport, exchanges };
}

// The raw 2026-07-28 tools/call the SDK made, sent again: what a client
// replaying an answer does.
async function replay(url, token, params) {
  const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': { elicitation: {} } };
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', Authorization: `Bearer ${token}`,
      'MCP-Protocol-Version': '2026-07-28', 'Mcp-Method': 'tools/call', 'Mcp-Name': params.name,
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 99, method: 'tools/call', params: { ...params, _meta: meta } }),
  });
  return { status: res.status, replica: res.headers.get('kiln-replica'), body: await res.json() };
}

test('v2 client through round robin: each request on another replica, an approval finished elsewhere, its replay refused on the third', { timeout: 240_000 }, async (t) => {
  const cluster = makeCluster(t);
  for (const id of ['r1', 'r2', 'r3']) await startReplica(cluster, id, await freePort());
  const proxy = await startProxy(t, cluster);

  const asked = [];
  const v2 = recordingClient(proxy.url, cluster.alice, asked);
  await v2.client.connect(v2.transport);
  t.after(() => v2.client.close().catch(() => {}));
  assert.equal(v2.client.getProtocolEra(), 'modern');

  const made = await v2.client.callTool({ name: 'workspace_create', arguments: {} });
  assert.equal(made.isError, false, text(made));
  const handle = made.structuredContent.workspace;
  assert.equal(made.structuredContent.store, 'shared');
  const wrote = await v2.client.callTool({ name: 'write_file', arguments: { path: 'msg.txt', content: 'from the v2 client', workspace: handle } });
  assert.equal(wrote.isError, false, text(wrote));
  const read = await v2.client.callTool({ name: 'run_code', arguments: { language: 'python', code: "print(open('msg.txt').read(), end='')", workspace: handle } });
  assert.equal(read.isError, false, text(read));
  assert.equal(read.structuredContent.stdout, 'from the v2 client');

  const risky = { name: 'run_code', arguments: { language: 'python', code: RISKY, workspace: handle } };
  const approved = await v2.client.callTool(risky);
  assert.equal(asked.length, 1, 'asked once, through the InputRequiredResult');
  assert.equal(approved.structuredContent.decision, 'approved', text(approved));
  assert.equal(approved.structuredContent.stdout, 'approved\n');

  // Every request of the stateless client went to the next replica.
  const replicas = v2.exchanges.map((e) => e.replica);
  assert.ok(replicas.every(Boolean), JSON.stringify(v2.exchanges));
  for (let i = 1; i < replicas.length; i += 1)
    assert.notEqual(replicas[i], replicas[i - 1], `requests ${i - 1} and ${i}: ${replicas.join(' ')}`);
  const calls = v2.exchanges.filter((e) => e.method === 'tools/call');
  const [create, write, run, ask, answer] = calls;
  assert.equal(calls.length, 5, JSON.stringify(calls.map((c) => c.params.name)));
  assert.equal(new Set([create.replica, write.replica, run.replica]).size, 3, 'made, written and read on three replicas');
  assert.equal(ask.params.requestState, undefined);
  assert.ok(answer.params.requestState, 'the retry carried the signed requestState');
  assert.notEqual(answer.replica, ask.replica, 'the approval was answered on another replica than the one that asked');

  // The same answer again: round robin takes it to the third replica, which
  // has never seen it; the shared ledger says it was used.
  const again = await replay(proxy.url, cluster.alice, answer.params);
  assert.equal(new Set([ask.replica, answer.replica, again.replica]).size, 3, `${ask.replica} ${answer.replica} ${again.replica}`);
  assert.equal(again.status, 400, JSON.stringify(again.body));
  assert.equal(again.body.error.code, -32602);
  assert.match(again.body.error.message, /already used/);

  // A 2025-11-25 client through the same proxy: its session stays on one
  // replica, and it sees what the v2 client did (the approved code ran once).
  const old = await connect(proxy.url, cluster.alice);
  t.after(old.close);
  const log = await old.client.callTool({ name: 'read_file', arguments: { path: 'approvals.txt', workspace: handle } });
  assert.equal(log.isError, false, JSON.stringify(log.content));
  assert.equal(log.structuredContent.content, 'ran\n', 'the approved code ran once, its replay not at all');
  const ran = await old.client.callTool({ name: 'run_code', arguments: { language: 'python', code: "print(open('msg.txt').read(), end='')", workspace: handle } });
  assert.equal(ran.structuredContent.stdout, 'from the v2 client');
  assert.equal(new Set(old.seen).size, 1, `one session, one replica: ${old.seen}`);

  const verified = verifyAudit(cluster);
  assert.equal(verified.status, 0, verified.stdout + verified.stderr);
  assert.match(verified.stdout, /OK: 3 chains/);
  t.diagnostic(`v2 requests on ${replicas.join(' ')}; replay on ${again.replica}; 1.x session on ${old.seen[0]}`);
});
