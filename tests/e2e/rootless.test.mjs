// A rootless `kiln serve` (issue 14, item 10): its workspaces are tmpfs with
// a size and file quota in namespaces of the server's own, not plain
// directories on the disk that also holds the audit log. Run as the
// unprivileged test user through the official SDK client.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, chownSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

const KILN = process.env.KILN_BIN;
assert.ok(KILN, 'KILN_BIN must point to the kiln binary');
const USER = process.env.KILN_TEST_USER || 'kilntest';
const isRoot = process.getuid() === 0;
const skip = isRoot ? false : 'needs root to start the server as the unprivileged test user';

let client, stateDir;
const text = (r) => r.content.filter((c) => c.type === 'text').map((c) => c.text).join('\n');
const py = async (code) => (await client.callTool({ name: 'run_code', arguments: { language: 'python', code } })).structuredContent;

before(async () => {
  if (skip) return;
  const uid = Number(execFileSync('id', ['-u', USER]).toString());
  const gid = Number(execFileSync('id', ['-g', USER]).toString());
  stateDir = mkdtempSync(join(tmpdir(), 'kiln-e2e-rootless-'));
  chownSync(stateDir, uid, gid);
  const transport = new StdioClientTransport({
    command: 'setpriv',
    args: ['--reuid', USER, '--regid', USER, '--init-groups', 'env', '-i', 'PATH=/usr/bin:/bin', KILN,
      '--set', `server.state_dir=${stateDir}`, '--set', 'server.log_level=warn',
      '--set', 'workspace.size=4M', '--set', 'workspace.max_files=200', 'serve'],
    stderr: 'pipe',
  });
  client = new Client({ name: 'e2e-rootless', version: '1.0.0' }, { capabilities: {} });
  await client.connect(transport);
});

after(async () => {
  await client?.close();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

test('rootless: the workspace holds at most workspace.size bytes (ENOSPC past it)', { skip }, async () => {
  const r = await py(`
import errno
written = 0
try:
    with open('/workspace/big', 'wb') as f:
        for _ in range(64):
            f.write(b'x' * (128 << 10))
            f.flush()
            written += 128 << 10
    print('wrote', written)
except OSError as e:
    print('refused', errno.errorcode[e.errno], 'after', written)
`);
  assert.match(r.stdout, /^refused ENOSPC after \d+/, r.stdout + r.stderr);
  const after = Number(r.stdout.split(' ').pop());
  assert.ok(after <= 4 << 20, `wrote ${after} bytes into a 4 MiB workspace`);
  await client.callTool({ name: 'reset_workspace', arguments: {} });
});

test('rootless: the workspace holds at most workspace.max_files files', { skip }, async () => {
  const r = await py(`
import errno, os
n = 0
try:
    while n < 5000:
        os.symlink('x', f'/workspace/l{n}')
        n += 1
    print('made', n)
except OSError as e:
    print('refused', errno.errorcode[e.errno], 'after', n)
`);
  assert.match(r.stdout, /^refused ENOSPC after \d+/, r.stdout + r.stderr);
  assert.ok(Number(r.stdout.split(' ').pop()) < 200);
  await client.callTool({ name: 'reset_workspace', arguments: {} });
});

test('rootless: the audit log recorded both runs', { skip }, async () => {
  const lines = readFileSync(join(stateDir, 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const executions = lines.filter((l) => l.event === 'execution');
  assert.ok(executions.length >= 2, `execution records: ${executions.length}`);
});
