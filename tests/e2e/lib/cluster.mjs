// A cluster of `kiln serve --http` replicas on loopback sharing one
// workspace store and one requestState key, behind haproxy (lib/haproxy.cfg),
// and a 2025-11-25 SDK client that records which replica (Kiln-Replica)
// served each response. Used by replicas.test.mjs and replicas-v2.test.mjs.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { eventually, kilnBin, serveArgs, serverEnv, waitForExit } from './kiln.mjs';

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// A cluster: a shared dir, a tokens file every replica reads (docs/auth.md),
// one requestState key (server.request_state_key_file), and the replicas,
// each with a state dir of its own (its audit chain, its local copies of
// workspaces), as pods have.
export function makeCluster(t) {
  const root = mkdtempSync(join(tmpdir(), 'kiln-replicas-'));
  const cluster = { root, shared: join(root, 'shared'), tokensFile: join(root, 'tokens'), replicas: new Map(), procs: [] };
  const lines = [];
  for (const principal of ['alice', 'bob']) {
    const out = execFileSync(kilnBin(), ['token', 'new', '--principal', principal], { encoding: 'utf8', env: serverEnv() }).trim().split('\n');
    cluster[principal] = out[0];
    lines.push(out[out.length - 1]);
  }
  writeFileSync(cluster.tokensFile, lines.join('\n') + '\n', { mode: 0o600 });
  t.after(async () => {
    for (const proc of cluster.procs) {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        await waitForExit(proc, 20_000).catch(() => {});
      }
    }
    rmSync(root, { recursive: true, force: true });
  });
  return cluster;
}

export async function startReplica(cluster, id, port) {
  const stateDir = join(cluster.root, `state-${id}`);
  const set = {
    'server.replica_id': id, 'workspace.store': 'shared', 'workspace.shared_dir': cluster.shared,
    'server.auth.mode': 'tokens', 'server.auth.tokens_file': cluster.tokensFile, 'server.http.keep_alive_timeout': '1s',
    'server.request_state_key_file': join(cluster.root, 'request-state.key'),
  };
  const proc = spawn(kilnBin(), serveArgs(stateDir, { set, flags: ['--http', `127.0.0.1:${port}`] }),
    { env: serverEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr.on('data', (c) => { log += c.toString(); });
  cluster.procs.push(proc);
  await eventually(() => {
    if (proc.exitCode !== null) throw new Error(`replica ${id} exited with ${proc.exitCode}:\n${log}`);
    return /serving MCP over HTTP at/.test(log);
  }, 20_000, `replica ${id} to listen`);
  const replica = { id, port, proc, stateDir, log: () => log };
  cluster.replicas.set(id, replica);
  return replica;
}

// haproxy from Debian, configured by lib/haproxy.cfg (round robin for new
// sessions, each session kept on its replica).
export async function startProxy(t, cluster) {
  const port = await freePort();
  const servers = [...cluster.replicas.values()]
    .map((r) => `  server ${r.id} 127.0.0.1:${r.port} check inter 300ms fall 1 rise 1`).join('\n');
  const cfg = join(cluster.root, 'haproxy.cfg');
  const template = readFileSync(new URL('./haproxy.cfg', import.meta.url), 'utf8');
  writeFileSync(cfg, template.replace('@PORT@', String(port)).replace('@SERVERS@', servers));
  const proc = spawn('haproxy', ['-f', cfg, '-db'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr.on('data', (c) => { log += c.toString(); });
  t.after(async () => {
    proc.kill('SIGTERM');
    await waitForExit(proc, 5_000, 'haproxy').catch(() => {});
  });
  const url = `http://127.0.0.1:${port}/mcp`;
  await eventually(async () => {
    if (proc.exitCode !== null) throw new Error(`haproxy exited with ${proc.exitCode}:\n${log}`);
    return (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => ({ ok: false }))).ok;
  }, 10_000, 'haproxy to serve');
  return { url, proc, log: () => log };
}

// An SDK client whose every response's Kiln-Replica header is recorded.
export async function connect(url, token) {
  const seen = [];
  const recording = async (input, init) => {
    const res = await fetch(input, init);
    const replica = res.headers.get('kiln-replica');
    if (replica) seen.push(replica);
    return res;
  };
  const transport = new StreamableHTTPClientTransport(new URL(url),
    { requestInit: { headers: { Authorization: `Bearer ${token}` } }, fetch: recording });
  const client = new Client({ name: 'kiln-e2e-replicas', version: '1.0.0' }, { capabilities: {} });
  await client.connect(transport);
  return { client, seen, replica: () => seen[seen.length - 1], close: () => client.close().catch(() => {}) };
}

// A new session on a replica other than those in `avoid` (the proxy deals
// new sessions round robin, so a few tries suffice).
export async function connectAvoiding(url, token, avoid) {
  for (let i = 0; i < 8; i += 1) {
    const c = await connect(url, token);
    if (!avoid.includes(c.replica())) return c;
    await c.close();
  }
  throw new Error(`every new session landed on ${avoid.join(', ')}`);
}

export function auditFiles(cluster) {
  const files = [];
  for (const r of cluster.replicas.values()) {
    for (const name of readdirSync(r.stateDir)) if (name.startsWith('audit-')) files.push(join(r.stateDir, name));
  }
  return files;
}

export function verifyAudit(cluster) {
  const files = auditFiles(cluster);
  return spawnSync(kilnBin(), ['audit', 'verify', ...files], { encoding: 'utf8', env: serverEnv() });
}
