// Three `kiln serve --http` replicas on loopback sharing one workspace store
// (workspace.store=shared), behind haproxy (round robin, sessions kept on
// their replica by a stick table on Mcp-Session-Id), driven by the official
// 2025-11-25 SDK client. Every response names its replica (Kiln-Replica), so
// the test proves which replica served each call.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { connect, connectAvoiding, freePort, makeCluster, startProxy, startReplica, verifyAudit } from './lib/cluster.mjs';
import { eventually, sleep, waitForExit } from './lib/kiln.mjs';

const TEST_TIMEOUT = { timeout: 240_000 };

// The cgroup directories a server made (kiln/<its pid> in each hierarchy).
function cgroupsOf(pid) {
  const found = spawnSync('find', ['/sys/fs/cgroup', '-maxdepth', '6', '-type', 'd', '-path', `*/kiln/${pid}`],
    { encoding: 'utf8' });
  return found.stdout.split('\n').filter(Boolean);
}

// Every pid in a cgroup directory and the groups below it.
function allProcs(dir) {
  const out = spawnSync('find', [dir, '-name', 'cgroup.procs', '-exec', 'cat', '{}', '+'], { encoding: 'utf8' });
  return out.stdout.split('\n').filter(Boolean);
}

const python = (code, workspace) => ({ name: 'run_code', arguments: { language: 'python', code, workspace } });

test('a shared workspace is written on one replica and read by code on another, each hop proven', TEST_TIMEOUT, async (t) => {
  const cluster = makeCluster(t);
  for (const id of ['r1', 'r2', 'r3']) await startReplica(cluster, id, await freePort());
  const proxy = await startProxy(t, cluster);

  const a = await connect(proxy.url, cluster.alice);
  t.after(a.close);
  const made = await a.client.callTool({ name: 'workspace_create', arguments: {} });
  assert.ok(!made.isError, made.content?.[0]?.text);
  const handle = made.structuredContent.workspace;
  assert.match(handle, /^[0-9a-f]{32}$/);
  assert.equal(made.structuredContent.store, 'shared');
  const wrote = await a.client.callTool({ name: 'write_file', arguments: { path: 'msg.txt', content: `written on ${a.replica()}`, workspace: handle } });
  assert.ok(!wrote.isError, wrote.content?.[0]?.text);

  const b = await connectAvoiding(proxy.url, cluster.alice, [a.replica()]);
  t.after(b.close);
  const ran = await b.client.callTool(python("print(open('msg.txt').read() + ' / read on', end='')", handle));
  assert.ok(!ran.isError, ran.content?.[0]?.text);
  assert.equal(ran.structuredContent.stdout, `written on ${a.replica()} / read on`);
  assert.notEqual(b.replica(), a.replica());

  // A third session on the third replica adds to it; the first reads it back.
  const c = await connectAvoiding(proxy.url, cluster.alice, [a.replica(), b.replica()]);
  t.after(c.close);
  const added = await c.client.callTool(python("open('more.txt', 'w').write('from the third')", handle));
  assert.ok(!added.isError, added.content?.[0]?.text);
  const back = await a.client.callTool({ name: 'read_file', arguments: { path: 'more.txt', workspace: handle } });
  assert.equal(back.structuredContent.content, 'from the third');
  assert.equal(new Set([a.replica(), b.replica(), c.replica()]).size, 3);

  // Without the handle a session keeps its own workspace, as before.
  const own = await b.client.callTool({ name: 'read_file', arguments: { path: 'msg.txt' } });
  assert.equal(own.isError, true);

  // Another principal: the answer of a handle that does not exist.
  const bob = await connect(proxy.url, cluster.bob);
  t.after(bob.close);
  const stolen = await bob.client.callTool({ name: 'read_file', arguments: { path: 'msg.txt', workspace: handle } });
  assert.equal(stolen.isError, true);
  assert.match(stolen.content[0].text, /no workspace [0-9a-f]{32} for this principal/);

  // The audit records say the same: each replica's own chain holds the
  // calls it served, and every chain verifies.
  for (const s of [a, b, c]) {
    const chain = readFileSync(join(cluster.replicas.get(s.replica()).stateDir, `audit-${s.replica()}.jsonl`), 'utf8');
    assert.ok(chain.split('\n').filter(Boolean).some((l) => JSON.parse(l).replica === s.replica()));
  }
  const verified = verifyAudit(cluster);
  assert.equal(verified.status, 0, verified.stdout + verified.stderr);
  assert.match(verified.stdout, /OK: 3 chains/);
});

test('SIGKILL one replica mid-burst: the others serve, the workspace stays whole, every chain verifies', TEST_TIMEOUT, async (t) => {
  const cluster = makeCluster(t);
  for (const id of ['r1', 'r2', 'r3']) await startReplica(cluster, id, await freePort());
  const proxy = await startProxy(t, cluster);
  const setup = await connect(proxy.url, cluster.alice);
  t.after(setup.close);
  const handle = (await setup.client.callTool({ name: 'workspace_create', arguments: {} })).structuredContent.workspace;

  // Each call is a fresh session (a new replica, round robin) appending one
  // line to the shared workspace. A call whose replica dies is retried in a
  // new session, as a client would.
  const calls = 24;
  let started = 0;
  let succeeded = 0;
  let retried = 0;
  let lastError;
  const served = new Set();
  const victim = cluster.replicas.get('r2');
  const oneCall = async () => {
    for (let attempt = 0; attempt < 5; attempt += 1) {
      started += 1;
      let s;
      try {
        s = await connect(proxy.url, cluster.alice);
        // Each run holds its jail for a while, so the kill below finds one running.
        const r = await s.client.callTool(python("import time\nopen('log.txt', 'a').write('x\\n')\ntime.sleep(0.3)", handle));
        if (r.isError) throw new Error(r.content[0].text);
        succeeded += 1;
        served.add(s.replica());
        return;
      } catch (e) {
        lastError = e;
        retried += 1;
        await sleep(200);
      } finally {
        if (s) await s.close();
      }
    }
    throw new Error(`a call failed five times: ${lastError?.message}`);
  };
  const burst = [];
  // Killed while one of its jails runs (the burst goes on meanwhile): that
  // jail's cgroups, left behind by a dead server, are what the clean-up
  // below checks.
  let killed;
  for (let i = 0; i < calls; i += 1) {
    burst.push(oneCall());
    if (i === 8) {
      killed = eventually(() => {
        const pids = cgroupsOf(victim.proc.pid).flatMap(allProcs);
        if (pids.length === 0) return false;
        victim.proc.kill('SIGKILL');
        return pids;
      }, 60_000, 'the victim to run a jail');
    }
    await sleep(60);
  }
  const jailPids = await killed;
  await Promise.all(burst);
  assert.equal(succeeded, calls);
  assert.ok(served.has('r1') && served.has('r3'), `served by ${[...served]}`);

  // Whole: every line is one the code wrote; each successful call's line is
  // there (a call killed after its commit may have left one more).
  const final = await connect(proxy.url, cluster.alice);
  t.after(final.close);
  const log = await final.client.callTool({ name: 'read_file', arguments: { path: 'log.txt', workspace: handle } });
  const lines = log.structuredContent.content.split('\n').filter(Boolean);
  assert.ok(lines.every((l) => l === 'x'), log.structuredContent.content);
  assert.ok(lines.length >= succeeded && lines.length <= started, `${lines.length} lines, ${succeeded} ok of ${started}`);
  const wsDir = join(cluster.shared, 'workspaces', handle);
  const trees = readdirSync(wsDir).filter((n) => n.startsWith('tree-'));
  assert.equal(trees.length, 1, `one published tree, no leftovers: ${trees}`);

  // The dead replica restarts on its state dir: it removes its dead self's
  // local copies and jails (remove_leftovers, reap_leftovers) and its chain,
  // cut back to its last whole record, verifies with the others.
  const deadPid = victim.proc.pid;
  await waitForExit(victim.proc, 5_000).catch(() => {});
  // Its jails died with it (their init has PR_SET_PDEATHSIG): every process
  // that was in its cgroups when it was killed is gone. The directories stay
  // until a server starts on this machine (sandbox::reap_leftovers): its own
  // restart below, or, when tests run side by side, any other.
  assert.ok(jailPids.length > 0);
  await eventually(() => jailPids.every((pid) => !existsSync(`/proc/${pid}`)), 5_000, "the dead replica's jails to go");
  await startReplica(cluster, 'r2', victim.port);
  assert.deepEqual(cgroupsOf(deadPid), []);
  assert.equal(existsSync(join(victim.stateDir, 'workspaces', String(deadPid))), false);
  const verified = verifyAudit(cluster);
  assert.equal(verified.status, 0, verified.stdout + verified.stderr);
  assert.match(verified.stdout, /OK: 3 chains/);
  t.diagnostic(`${succeeded} calls served by ${[...served].join(', ')}; ${retried} retried after the kill`);
});
