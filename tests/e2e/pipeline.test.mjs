// The run pipeline through the official SDK client (issue 15): calls past
// the run slots wait in a bounded queue and say so; every refusal is in the
// audit log under the audit_id the agent gets; the execution record times
// every phase.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

const KILN = process.env.KILN_BIN;
assert.ok(KILN, 'KILN_BIN must point to the kiln binary');
const dirs = [];
const clients = [];

async function connect(settings) {
  const stateDir = mkdtempSync(join(tmpdir(), 'kiln-e2e-pipeline-'));
  dirs.push(stateDir);
  const args = ['--set', `server.state_dir=${stateDir}`, '--set', 'server.log_level=warn'];
  for (const s of settings) args.push('--set', s);
  const transport = new StdioClientTransport({ command: KILN, args: [...args, 'serve'], stderr: 'pipe' });
  const client = new Client({ name: 'e2e-pipeline', version: '1.0.0' }, { capabilities: {} });
  await client.connect(transport);
  clients.push(client);
  return { client, records: () => readFileSync(join(stateDir, 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)) };
}

after(async () => {
  for (const c of clients) await c.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const text = (r) => r.content.filter((c) => c.type === 'text').map((c) => c.text).join('\n');
const sleepy = (s) => ({ language: 'python', code: `import time\ntime.sleep(${s})\nprint('done')\n` });

test('a call past the session\'s run slots waits for one, says so, and runs', async () => {
  const { client } = await connect(['workspace.max_runs_per_session=1']);
  const progress = [];
  const first = client.callTool({ name: 'run_code', arguments: sleepy(1.5) });
  await new Promise((r) => setTimeout(r, 300));
  const second = client.callTool({ name: 'run_code', arguments: sleepy(0) }, undefined,
    { onprogress: (p) => progress.push(p.message ?? ''), timeout: 60000 });
  const [a, b] = await Promise.all([first, second]);
  assert.equal(a.isError, false, text(a));
  assert.equal(b.isError, false, text(b));
  assert.equal(b.structuredContent.stdout, 'done\n');
  assert.ok(progress.some((m) => /waiting for a run slot/.test(m)), JSON.stringify(progress));
});

test('past the queue a call is refused at once, in the log under its audit_id', async () => {
  const { client, records } = await connect(['workspace.max_runs_per_session=1', 'workspace.queue_length=0']);
  const first = client.callTool({ name: 'run_code', arguments: sleepy(1.5) });
  await new Promise((r) => setTimeout(r, 300));
  const started = Date.now();
  const b = await client.callTool({ name: 'run_code', arguments: sleepy(0) });
  assert.ok(Date.now() - started < 1000, 'refused without waiting');
  assert.equal(b.isError, true);
  assert.match(text(b), /workspace\.queue_length/);
  assert.equal(b.structuredContent.decision, 'refused');
  const id = b.structuredContent.audit_id;
  assert.match(id, /^\d+-[0-9a-f]{12}$/);
  await first;
  const log = records();
  assert.ok(log.some((r) => r.event === 'tool_call' && r.seq === Number(id.split('-')[0])), 'the call is recorded');
  const refusal = log.find((r) => r.event === 'refused' && r.call_id === id);
  assert.ok(refusal, 'the refusal is recorded with the call id');
  assert.match(refusal.reason, /queue_length/);
});

test('a call out of the policy\'s bounds is refused and recorded too', async () => {
  const { client, records } = await connect([]);
  const r = await client.callTool({ name: 'run_code', arguments: { language: 'python', code: 'pass', timeout_seconds: 100000 } });
  assert.equal(r.isError, true);
  assert.match(text(r), /timeout_seconds' must be from 1 to \d+/);
  const id = r.structuredContent.audit_id;
  assert.ok(records().some((x) => x.event === 'refused' && x.call_id === id && /timeout_seconds/.test(x.reason)));
});

test('the execution record times every phase of the call', async () => {
  const { client, records } = await connect([]);
  const r = await client.callTool({ name: 'run_code', arguments: sleepy(0) });
  assert.equal(r.isError, false, text(r));
  const exec = records().find((x) => x.event === 'execution' && x.call_id === r.structuredContent.audit_id);
  assert.ok(exec, 'an execution record under the call\'s id');
  for (const phase of ['parse', 'admit', 'validate', 'decide', 'prepare', 'execute', 'audit', 'jail_setup', 'jail_run', 'jail_teardown'])
    assert.equal(typeof exec.timings[`${phase}_us`], 'number', `${phase}_us in ${JSON.stringify(exec.timings)}`);
});
