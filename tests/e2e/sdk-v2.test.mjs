// The official SDK's v2 client (@modelcontextprotocol/client), which speaks
// MCP 2026-07-28, against the real `kiln serve` over stdio and over HTTP:
// era selection by server/discover, tools/list, run_code in a real jail, and
// an approval through InputRequiredResult whose requestState the server
// signed. The 1.x client's suites (sdk, sdk-http, tools) are the 2025 era.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';

import { startHttpServer } from './lib/http.mjs';
import { eventually, kilnBin, makeStateDir, removeStateDir, serveArgs, serverEnv } from './lib/kiln.mjs';

// A shell command taken from the environment: balanced asks for approval.
const RISKY = "import os, subprocess\nprint(subprocess.run(os.environ.get('E2E_CMD', 'echo approved'),shell=True,capture_output=True,text=True).stdout, end='')\n";
const text = (r) => r.content.map((c) => c.text ?? '').join('');

function modernClient(asked) {
  const client = new Client(
    { name: 'e2e-sdk-v2', version: '1.0.0' },
    { capabilities: { elicitation: {} }, versionNegotiation: { mode: 'auto' } },
  );
  client.setRequestHandler('elicitation/create', async (req) => {
    asked.push(req.params.message);
    return { action: 'accept', content: { choice: 'approve_once' } };
  });
  return client;
}

function auditRecords(stateDir) {
  const r = spawnSync(kilnBin(), ['--set', `server.state_dir=${stateDir}`, 'audit', 'show', '--json'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

// What both transports must show a 2026-07-28 client.
async function exerciseModern(client, stateDir) {
  assert.equal(client.getProtocolEra(), 'modern');
  assert.equal(client.getNegotiatedProtocolVersion(), '2026-07-28');
  const discovered = await client.discover();
  assert.ok(discovered.supportedVersions.includes('2026-07-28'));
  assert.ok(discovered.supportedVersions.includes('2025-11-25'), 'dual era: the 2025 revisions are named too');
  assert.ok(discovered.capabilities.tools);

  const { tools } = await client.listTools();
  assert.ok(tools.some((t) => t.name === 'run_code'), JSON.stringify(tools.map((t) => t.name)));

  const ran = await client.callTool({ name: 'run_code', arguments: { language: 'python', code: 'print(6 * 7)' } });
  assert.equal(ran.isError, false, text(ran));
  assert.equal(ran.structuredContent.stdout, '42\n');
  return discovered;
}

async function exerciseApproval(client, asked, stateDir) {
  const r = await client.callTool({ name: 'run_code', arguments: { language: 'python', code: RISKY } });
  assert.equal(asked.length, 1, 'the person was asked once, through the InputRequiredResult');
  assert.match(asked[0], /needs your approval/);
  assert.equal(r.structuredContent.decision, 'approved', text(r));
  assert.equal(r.structuredContent.stdout, 'approved\n');
  // The audit log shows both rounds: the first asked, the retry ran.
  const decisions = auditRecords(stateDir).filter((rec) => rec.event === 'decision').map((rec) => rec.decision);
  assert.deepEqual(decisions.slice(-2), ['input_required', 'approved']);
}

test('SDK v2 over stdio: discover, tools/list, run_code and an approval through InputRequiredResult', { timeout: 120_000 }, async (t) => {
  const stateDir = makeStateDir();
  t.after(() => removeStateDir(stateDir));
  const asked = [];
  const client = modernClient(asked);
  const args = serveArgs(stateDir).filter((a) => a !== '--test-tools');
  await client.connect(new StdioClientTransport({ command: kilnBin(), args, env: serverEnv(), stderr: 'pipe' }));
  try {
    await exerciseModern(client, stateDir);
    await exerciseApproval(client, asked, stateDir);
  } finally {
    await client.close();
  }
});

test('SDK v2 over HTTP: the same, statelessly (no Mcp-Session-Id is ever minted)', { timeout: 120_000 }, async (t) => {
  const server = await startHttpServer(t, { testTools: false });
  const asked = [];
  const client = modernClient(asked);
  const seenSessionIds = [];
  const transport = new StreamableHTTPClientTransport(new URL(server.url), {
    fetch: async (url, init) => {
      const res = await fetch(url, init);
      if (res.headers.get('mcp-session-id')) seenSessionIds.push(res.headers.get('mcp-session-id'));
      return res;
    },
  });
  await client.connect(transport);
  try {
    await exerciseModern(client, server.stateDir);
    await exerciseApproval(client, asked, server.stateDir);
    assert.deepEqual(seenSessionIds, []);
  } finally {
    await client.close();
  }
});

// The raw protocol a 2026-07-28 request uses, for what an SDK hides.
function statelessPost(url, id, method, params, headers = {}) {
  const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': { elicitation: {} } };
  const h = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', 'MCP-Protocol-Version': '2026-07-28', 'Mcp-Method': method };
  if (params.name) h['Mcp-Name'] = params.name;
  return { url, init: { method: 'POST', headers: { ...h, ...headers }, body: JSON.stringify({ jsonrpc: '2.0', id, method, params: { ...params, _meta: meta } }) } };
}

test('HTTP: closing a stateless request\'s stream cancels its run within seconds', { timeout: 60_000 }, async (t) => {
  const server = await startHttpServer(t, { testTools: false });
  const controller = new AbortController();
  const { url, init } = statelessPost(server.url, 1, 'tools/call', { name: 'run_code', arguments: { language: 'python', code: 'import time\ntime.sleep(40)\n', timeout_seconds: 60 } });
  const res = await fetch(url, { ...init, signal: controller.signal });
  assert.equal(res.headers.get('content-type'), 'text/event-stream', 'a long call is answered as a stream');
  await new Promise((r) => setTimeout(r, 1500));
  const started = Date.now();
  controller.abort();
  const execution = await eventually(() => auditRecords(server.stateDir).find((rec) => rec.event === 'execution'), 20_000, 'the execution record');
  assert.equal(execution.result.cancelled, true, JSON.stringify(execution));
  assert.ok(Date.now() - started < 15_000, 'cancelled within seconds, not at the 40 s sleep\'s end');
});

test('HTTP: a forged or replayed requestState is refused, and the code does not run', { timeout: 60_000 }, async (t) => {
  const server = await startHttpServer(t, { testTools: false });
  const call = { name: 'run_code', arguments: { language: 'python', code: RISKY } };
  const post = async (id, params) => {
    const { url, init } = statelessPost(server.url, id, 'tools/call', params);
    const res = await fetch(url, init);
    return { status: res.status, body: await res.json() };
  };
  const first = await post(1, call);
  assert.equal(first.body.result.resultType, 'input_required');
  const state = first.body.result.requestState;
  const answer = { kiln_approval: { action: 'accept', content: { choice: 'approve_once' } } };
  // The same state on other code: refused (the state is bound to the code's hash).
  const other = await post(2, { ...call, arguments: { ...call.arguments, code: RISKY + '#x\n' }, inputResponses: answer, requestState: state });
  assert.equal(other.status, 400);
  assert.equal(other.body.error.code, -32602);
  assert.match(other.body.error.message, /another request/);
  // A state with one character changed: refused.
  const i = state.length - 12;
  const forged = state.slice(0, i) + (state[i] === 'A' ? 'B' : 'A') + state.slice(i + 1);
  assert.equal((await post(3, { ...call, inputResponses: answer, requestState: forged })).body.error.code, -32602);
  // The genuine retry runs once; its replay is refused.
  const ok = await post(4, { ...call, inputResponses: answer, requestState: state });
  assert.equal(ok.body.result.structuredContent.decision, 'approved');
  const replay = await post(5, { ...call, inputResponses: answer, requestState: state });
  assert.match(replay.body.error.message, /already used/);
  const executions = auditRecords(server.stateDir).filter((rec) => rec.event === 'execution');
  assert.equal(executions.length, 1, 'only the genuine retry ran');
});

test('HTTP: headers that disagree with the body are refused with HeaderMismatch before anything runs', { timeout: 30_000 }, async (t) => {
  const server = await startHttpServer(t, { testTools: false });
  const { url, init } = statelessPost(server.url, 7, 'tools/call', { name: 'run_code', arguments: { language: 'python', code: 'print(1)' } }, { 'Mcp-Name': 'assess_code' });
  const res = await fetch(url, init);
  assert.equal(res.status, 400);
  const body = await res.json();
  assert.equal(body.error.code, -32020);
  assert.equal(body.id, 7);
  assert.equal(auditRecords(server.stateDir).filter((rec) => rec.event === 'tool_call').length, 0);
});

// Posts run_code with the risky code as `token`'s principal; the JSON answer.
async function riskyCall(url, id, extra = {}, token = null) {
  const params = { name: 'run_code', arguments: { language: 'python', code: RISKY }, ...extra };
  const { init } = statelessPost(url, id, 'tools/call', params, token ? { Authorization: `Bearer ${token}` } : {});
  const res = await fetch(url, init);
  return { status: res.status, body: await res.json() };
}
const APPROVE = { kiln_approval: { action: 'accept', content: { choice: 'approve_once' } } };

test('HTTP with tokens: a requestState issued to one principal is refused for another', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-v2-auth-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const token = (principal) => {
    const lines = execFileSync(kilnBin(), ['token', 'new', '--principal', principal], { encoding: 'utf8', env: serverEnv() }).trim().split('\n');
    return { token: lines[0], line: lines[lines.length - 1] };
  };
  const alice = token('alice');
  const bob = token('bob');
  const tokensFile = join(dir, 'tokens');
  writeFileSync(tokensFile, `${alice.line}\n${bob.line}\n`, { mode: 0o600 });
  const server = await startHttpServer(t, { testTools: false, set: { 'server.auth.mode': 'tokens', 'server.auth.tokens_file': tokensFile } });
  const first = await riskyCall(server.url, 1, {}, alice.token);
  const state = first.body.result.requestState;
  const stolen = await riskyCall(server.url, 2, { inputResponses: APPROVE, requestState: state }, bob.token);
  assert.equal(stolen.status, 400);
  assert.match(stolen.body.error.message, /another principal/);
  const own = await riskyCall(server.url, 3, { inputResponses: APPROVE, requestState: state }, alice.token);
  assert.equal(own.body.result.structuredContent.decision, 'approved', JSON.stringify(own.body));
});

test('two servers sharing server.request_state_key_file finish each other\'s approvals; another key cannot', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-v2-key-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const shared = { 'server.request_state_key_file': join(dir, 'request-state.key') };
  const one = await startHttpServer(t, { testTools: false, set: shared });
  const two = await startHttpServer(t, { testTools: false, set: shared });
  const stranger = await startHttpServer(t, { testTools: false });
  const state = (await riskyCall(one.url, 1)).body.result.requestState;
  const elsewhere = await riskyCall(stranger.url, 2, { inputResponses: APPROVE, requestState: state });
  assert.match(elsewhere.body.error.message, /failed verification/);
  const finished = await riskyCall(two.url, 3, { inputResponses: APPROVE, requestState: state });
  assert.equal(finished.body.result.structuredContent.decision, 'approved', JSON.stringify(finished.body));
  assert.equal(finished.body.result.structuredContent.stdout, 'approved\n');
});
