// Authentication, TLS, SIGHUP reload and /metrics on `kiln serve --http`:
// real servers on loopback, tokens from `kiln token new`, JWTs signed here
// with node's crypto against a JWKS file, a certificate from the openssl
// CLI, and the scrape checked by Prometheus's own promtool.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { eventually, kilnBin, serveArgs, serverEnv, makeStateDir, removeStateDir, waitForExit } from './lib/kiln.mjs';
import { initialize, postHeaders, startHttpServer } from './lib/http.mjs';

const TEST_TIMEOUT = { timeout: 60_000 };
const ISSUER = 'https://auth.kiln.test';
const RESOURCE = 'https://kiln.test/mcp';
const METADATA_URL = 'https://kiln.test/.well-known/oauth-protected-resource/mcp';

function scratch(t) {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-auth-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// A token and its tokens-file line, as an operator makes them.
function newToken(principal, scopes = []) {
  const out = execFileSync(kilnBin(), ['token', 'new', '--principal', principal, ...scopes.flatMap((s) => ['--scope', s])],
    { encoding: 'utf8', env: serverEnv() });
  const lines = out.trim().split('\n');
  return { token: lines[0], line: lines[lines.length - 1] };
}

const bearer = (token) => ({ Authorization: `Bearer ${token}` });

async function connectSdk(url, token) {
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: bearer(token) } });
  const client = new Client({ name: 'kiln-e2e-auth', version: '1.0.0' }, { capabilities: {} });
  await client.connect(transport);
  return { client, transport };
}

async function callTool(url, session, token, name, args) {
  return fetch(url, {
    method: 'POST',
    headers: postHeaders(session, { ...bearer(token), 'MCP-Protocol-Version': '2025-11-25' }),
    body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name, arguments: args } }),
  });
}

// The value of one series in Prometheus text, 0 when absent.
function sample(text, series) {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return 0;
}

function promtool(t, text) {
  const found = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' }).status === 0;
  if (!found) {
    if (process.env.KILN_MUST_WORK === '1') assert.fail('promtool is missing (Debian: apt-get install prometheus)');
    t.diagnostic('promtool not installed: the exposition was not checked by it');
    return;
  }
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.equal(r.status, 0, `promtool check metrics: ${r.stdout}${r.stderr}`);
}

test('tokens: 401 without or with a wrong token; a good one serves the SDK client; run_code needs the run scope; '
  + 'a session is its principal\'s; /metrics counts it all and passes promtool', TEST_TIMEOUT, async (t) => {
  const dir = scratch(t);
  const alice = newToken('alice', ['kiln:run']);
  const bob = newToken('bob');
  const tokensFile = join(dir, 'tokens');
  writeFileSync(tokensFile, `${alice.line}\n${bob.line}\n`, { mode: 0o600 });
  const server = await startHttpServer(t, {
    set: { 'server.auth.mode': 'tokens', 'server.auth.tokens_file': tokensFile, 'server.auth.run_scopes': 'kiln:run' },
  });
  assert.match(server.stderr(), /authentication required/);

  let r = await initialize(server.url);
  assert.equal(r.res.status, 401, 'no token');
  assert.match(r.res.headers.get('www-authenticate'), /^Bearer /);
  assert.equal(r.session, null);
  r = await initialize(server.url, '2025-11-25', bearer(`kiln_${'x'.repeat(43)}`));
  assert.equal(r.res.status, 401, 'a token not in the file');
  assert.match(r.res.headers.get('www-authenticate'), /^Bearer .*error="invalid_token"/);

  // The SDK client with the token in requestInit: the whole protocol works.
  const a = await connectSdk(server.url, alice.token);
  t.after(() => a.client.close().catch(() => {}));
  const listed = await a.client.listTools();
  assert.ok(listed.tools.some((tool) => tool.name === 'run_code'));
  const ran = await a.client.callTool({ name: 'run_code', arguments: { language: 'python', code: 'print(6*7)' } });
  assert.equal(ran.structuredContent?.stdout, '42\n', JSON.stringify(ran));

  // bob has no run scope: tools/list yes, run_code 403 insufficient_scope.
  const b = await initialize(server.url, '2025-11-25', bearer(bob.token));
  assert.equal(b.res.status, 200);
  const list = await fetch(server.url, {
    method: 'POST',
    headers: postHeaders(b.session, { ...bearer(bob.token), 'MCP-Protocol-Version': '2025-11-25' }),
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
  });
  assert.equal(list.status, 200);
  assert.ok((await list.json()).result.tools.length > 0);
  const denied = await callTool(server.url, b.session, bob.token, 'run_code', { language: 'python', code: 'print(1)' });
  assert.equal(denied.status, 403);
  assert.match(denied.headers.get('www-authenticate'), /error="insufficient_scope"/);
  assert.match(denied.headers.get('www-authenticate'), /scope="kiln:run"/);

  // alice's session presented with bob's token is not found.
  const replay = await callTool(server.url, a.transport.sessionId, bob.token, 'list_files', {});
  assert.equal(replay.status, 404, 'a session id replayed with another principal\'s token');

  // Every audit record of alice's calls names her.
  const records = readFileSync(join(server.stateDir, 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const calls = records.filter((rec) => rec.session_id === a.transport.sessionId && rec.tool === 'run_code');
  assert.ok(calls.length > 0, 'no audit record of alice\'s run_code');
  for (const rec of calls) assert.equal(rec.principal, 'alice');

  // /metrics: no MCP token needed; counts what happened above.
  const scrape = await fetch(`${server.base}/metrics`);
  assert.equal(scrape.status, 200);
  assert.match(scrape.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  const text = await scrape.text();
  promtool(t, text);
  assert.ok(sample(text, 'kiln_tool_calls_total{tool="run_code",outcome="ok"}') >= 1, 'run_code counted');
  assert.ok(sample(text, 'kiln_http_requests_total{code="200"}') >= 3, 'HTTP 200s counted');
  assert.ok(sample(text, 'kiln_http_requests_total{code="401"}') >= 2, 'HTTP 401s counted');
  assert.equal(sample(text, 'kiln_auth_failures_total{reason="missing"}'), 1);
  assert.equal(sample(text, 'kiln_auth_failures_total{reason="unknown_token"}'), 1);
  assert.equal(sample(text, 'kiln_auth_failures_total{reason="insufficient_scope"}'), 1);
  assert.ok(sample(text, 'kiln_sse_streams_active') >= 0);
});

// ---- JWT ----------------------------------------------------------------

const b64u = (data) => Buffer.from(data).toString('base64url');

function jwt(key, header, claims) {
  const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(claims))}`;
  if (header.alg === 'none') return `${input}.`;
  const signature = header.alg === 'ES256'
    ? sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' })
    : sign('sha256', Buffer.from(input), key);
  return `${input}.${b64u(signature)}`;
}

function jwk(publicKey, kid, alg) {
  return { ...publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' };
}

const now = () => Math.floor(Date.now() / 1000);
const goodClaims = (extra = {}) => ({
  iss: ISSUER, aud: RESOURCE, sub: 'carol', exp: now() + 600, scope: 'kiln:read kiln:run', ...extra,
});

test('jwt: RS256 and ES256 tokens pass; expired, wrong audience, wrong issuer, bad signature, alg none get 401 '
  + 'naming the metadata, which is served; SIGHUP loads a new key', TEST_TIMEOUT, async (t) => {
  const dir = scratch(t);
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const later = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwksFile = join(dir, 'jwks.json');
  const keys = [jwk(rsa.publicKey, 'rsa-1', 'RS256'), jwk(ec.publicKey, 'ec-1', 'ES256')];
  writeFileSync(jwksFile, JSON.stringify({ keys }));
  const server = await startHttpServer(t, {
    set: {
      'server.auth.mode': 'jwt', 'server.auth.jwks_file': jwksFile, 'server.auth.issuer': ISSUER,
      'server.auth.resource': RESOURCE, 'server.auth.scopes': 'kiln:read',
    },
  });

  const rs = jwt(rsa.privateKey, { alg: 'RS256', kid: 'rsa-1', typ: 'JWT' }, goodClaims());
  const es = jwt(ec.privateKey, { alg: 'ES256', kid: 'ec-1', typ: 'JWT' }, goodClaims());
  for (const [what, token] of [['RS256', rs], ['ES256', es]]) {
    const r = await initialize(server.url, '2025-11-25', bearer(token));
    assert.equal(r.res.status, 200, `${what}: ${JSON.stringify(r.body)}`);
  }
  const sdk = await connectSdk(server.url, es);
  t.after(() => sdk.client.close().catch(() => {}));
  assert.ok((await sdk.client.listTools()).tools.length > 0);

  const refused = {
    'no token': undefined,
    expired: jwt(rsa.privateKey, { alg: 'RS256', kid: 'rsa-1' }, goodClaims({ exp: now() - 3600 })),
    'wrong audience': jwt(rsa.privateKey, { alg: 'RS256', kid: 'rsa-1' }, goodClaims({ aud: 'https://other.test/mcp' })),
    'wrong issuer': jwt(rsa.privateKey, { alg: 'RS256', kid: 'rsa-1' }, goodClaims({ iss: 'https://evil.test' })),
    'bad signature': `${rs.slice(0, rs.lastIndexOf('.'))}.${b64u(Buffer.alloc(256, 7))}`,
    'alg none': jwt(null, { alg: 'none', kid: 'rsa-1' }, goodClaims()),
    'a key not in the JWKS': jwt(later.privateKey, { alg: 'ES256', kid: 'ec-2' }, goodClaims()),
  };
  for (const [what, token] of Object.entries(refused)) {
    const r = await initialize(server.url, '2025-11-25', token ? bearer(token) : {});
    assert.equal(r.res.status, 401, what);
    assert.match(r.res.headers.get('www-authenticate'), new RegExp(`^Bearer .*resource_metadata="${METADATA_URL}"`), what);
  }
  // Without the scope every request needs: 403.
  const noScope = jwt(rsa.privateKey, { alg: 'RS256', kid: 'rsa-1' }, goodClaims({ scope: 'other' }));
  const r403 = await initialize(server.url, '2025-11-25', bearer(noScope));
  assert.equal(r403.res.status, 403);
  assert.match(r403.res.headers.get('www-authenticate'), /error="insufficient_scope"/);

  for (const path of ['/.well-known/oauth-protected-resource', '/.well-known/oauth-protected-resource/mcp']) {
    const res = await fetch(server.base + path);
    assert.equal(res.status, 200, path);
    const doc = await res.json();
    assert.equal(doc.resource, RESOURCE);
    assert.deepEqual(doc.authorization_servers, [ISSUER]);
  }

  // Rotation: the new key in the JWKS, SIGHUP, and its token passes.
  writeFileSync(jwksFile, JSON.stringify({ keys: [...keys, jwk(later.publicKey, 'ec-2', 'ES256')] }));
  server.proc.kill('SIGHUP');
  await eventually(() => /reload: authentication reloaded/.test(server.stderr()), 10_000, 'the reload');
  const r = await initialize(server.url, '2025-11-25', bearer(refused['a key not in the JWKS']));
  assert.equal(r.res.status, 200, 'a token signed with the key added before SIGHUP');
  assert.equal(server.proc.exitCode, null, 'SIGHUP did not stop the server');

  const text = await (await fetch(`${server.base}/metrics`)).text();
  for (const reason of ['missing', 'expired', 'wrong_audience', 'wrong_issuer', 'bad_signature',
    'unsupported_algorithm', 'unknown_key', 'insufficient_scope']) {
    assert.ok(sample(text, `kiln_auth_failures_total{reason="${reason}"}`) >= 1, reason);
  }
});

// ---- TLS ------------------------------------------------------------------

function selfSigned(dir, name) {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', key, '-out', cert, '-days', '1', '-subj', `/CN=${name}`,
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
  return { cert, key };
}

// The certificate the server presents now, verified against `ca`.
function servedFingerprint(url, ca) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: hostname, port: Number(port), ca: readFileSync(ca) }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.end();
    });
    socket.on('error', reject);
  });
}

// node's fetch, in a child that trusts `ca` (fetch takes no CA option).
function fetchWithCa(url, ca) {
  const script = `fetch(${JSON.stringify(url)}).then(async (r) => console.log(r.status, await r.text()))`
    + '.catch((e) => { console.log("error", e.cause?.code ?? e.message); });';
  return execFileSync(process.execPath, ['-e', script], {
    encoding: 'utf8', env: { ...process.env, NODE_EXTRA_CA_CERTS: ca },
  }).trim();
}

test('tls: HTTPS with the configured certificate; SIGHUP serves a new one', TEST_TIMEOUT, async (t) => {
  const dir = scratch(t);
  const first = selfSigned(dir, 'first');
  const second = selfSigned(dir, 'second');
  const cert = join(dir, 'server.crt');
  const key = join(dir, 'server.key');
  writeFileSync(cert, readFileSync(first.cert));
  writeFileSync(key, readFileSync(first.key), { mode: 0o600 });
  const server = await startHttpServer(t, { set: { 'server.tls.cert_file': cert, 'server.tls.key_file': key } });
  assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+\/mcp$/);

  assert.equal(fetchWithCa(`${server.base}/healthz`, first.cert), '200 ok');
  assert.match(fetchWithCa(`${server.base}/healthz`, second.cert), /^error /, 'trusted a certificate it does not serve');
  const before = await servedFingerprint(server.url, first.cert);

  writeFileSync(cert, readFileSync(second.cert));
  writeFileSync(key, readFileSync(second.key), { mode: 0o600 });
  server.proc.kill('SIGHUP');
  await eventually(() => /reload: TLS certificate and key reloaded/.test(server.stderr()), 10_000, 'the reload');
  const after = await servedFingerprint(server.url, second.cert);
  assert.notEqual(after, before);
  assert.equal(fetchWithCa(`${server.base}/healthz`, second.cert), '200 ok');
});

test('tls: a certificate without its key is refused at start, naming the keys', TEST_TIMEOUT, async (t) => {
  const dir = scratch(t);
  const { cert } = selfSigned(dir, 'lonely');
  const stateDir = makeStateDir();
  t.after(() => removeStateDir(stateDir));
  const args = serveArgs(stateDir, { set: { 'server.tls.cert_file': cert }, flags: ['--http', '127.0.0.1:0'] });
  const r = spawnSync(kilnBin(), args, { env: serverEnv(), encoding: 'utf8', timeout: 30_000 });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /server\.tls\.key_file/);
});

test('a non-loopback bind starts when authentication is configured; /metrics off is absent', TEST_TIMEOUT, async (t) => {
  const dir = scratch(t);
  const tokensFile = join(dir, 'tokens');
  const dave = newToken('dave');
  writeFileSync(tokensFile, `${dave.line}\n`, { mode: 0o600 });
  const server = await startHttpServer(t, {
    listen: '0.0.0.0:0',
    set: { 'server.auth.mode': 'tokens', 'server.auth.tokens_file': tokensFile, 'server.metrics.enabled': 'false' },
  });
  const url = server.url.replace('0.0.0.0', '127.0.0.1');
  const r = await initialize(url, '2025-11-25', bearer(dave.token));
  assert.equal(r.res.status, 200);
  const metrics = await fetch(`${new URL(url).origin}/metrics`);
  assert.equal(metrics.status, 404);
  await metrics.text();
});

test('SIGHUP to a stdio server ends it cleanly, as SIGTERM does', TEST_TIMEOUT, async (t) => {
  const stateDir = makeStateDir();
  t.after(() => removeStateDir(stateDir));
  const proc = spawn(kilnBin(), serveArgs(stateDir), { env: serverEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
  let log = '';
  let out = '';
  proc.stderr.on('data', (c) => { log += c; });
  proc.stdout.on('data', (c) => { out += c; });
  t.after(() => proc.kill('SIGKILL'));
  proc.stdin.write(`${JSON.stringify({
    jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
  })}\n`);
  await eventually(() => out.includes('"id":1') || null, 15_000, 'the stdio server to answer initialize');
  proc.kill('SIGHUP');
  const status = await waitForExit(proc, 15_000);
  assert.deepEqual(status, { code: 0, signal: null }, log);
  assert.match(log, /signal received: shutting down/);
});
