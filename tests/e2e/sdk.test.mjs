// Drives `kiln serve --test-tools` with the official MCP TypeScript SDK client
// over stdio: what a real MCP client sees. Each test starts its own server.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

import {
  kilnBin, makeStateDir, removeStateDir, serveArgs, serverEnv, waitForExit,
} from './lib/kiln.mjs';
import {
  defineScenarios, isLateProgressRace, makeClient, recordMessages, startSleep,
} from './lib/scenarios.mjs';

const TEST_TIMEOUT = { timeout: 60_000 };

// Starts a server and connects the SDK client to it. `received` records every
// raw message the client got (the SDK hides ids and unsolicited responses),
// `stderr()` is the server's log so far. Whatever happens in the test, the
// server is killed and its state directory removed when the test ends.
async function connect(t, { set, flags, testTools = true } = {}) {
  const stateDir = makeStateDir();
  const args = serveArgs(stateDir, { set, flags });
  const transport = new StdioClientTransport({
    command: kilnBin(),
    args: testTools ? args : args.filter((a) => a !== '--test-tools'),
    env: serverEnv(),
    stderr: 'pipe',
  });
  let log = '';
  transport.stderr.on('data', (chunk) => { log += chunk.toString(); });

  const received = recordMessages(transport);
  // Anything on stdout that is not a well-formed message, or an answer to a
  // request the client never made (or cancelled), surfaces here.
  const { client, protocolErrors } = makeClient('kiln-e2e');
  t.after(async () => {
    const child = transport._process;
    if (child && child.exitCode === null && child.signalCode === null) {
      child.stdin.end(); // politely first: the server unmounts its workspaces
      await waitForExit(child, 5_000).catch(() => {});
    }
    await client.close();
    removeStateDir(stateDir);
  });
  await client.connect(transport);
  // The SDK keeps the child private; the exit status is part of what we test.
  const proc = transport._process;
  assert.ok(proc && typeof proc.pid === 'number', 'StdioClientTransport no longer exposes _process: update the helper');

  const cancelled = new Set(); // progress tokens of calls the test aborted
  return {
    client, transport, proc, received, stateDir, cancelled,
    stderr: () => log,
    // Ends the session the way a client does (EOF on stdin) and returns the
    // exit status; the SDK's close() would SIGTERM a slow server and hide a hang.
    async shutdown(ms = 15_000) {
      proc.stdin.end();
      const status = await waitForExit(proc, ms);
      assert.deepEqual(protocolErrors.filter((e) => !isLateProgressRace(e, received, cancelled)), [],
        'the client saw protocol errors');
      return status;
    },
  };
}

defineScenarios(connect);

test('EOF on stdin ends running calls and the server exits 0', TEST_TIMEOUT, async (t) => {
  const s = await connect(t);
  const slow = startSleep(s.client, 50, 100);
  await slow.started;
  const t0 = Date.now();
  const status = await s.shutdown(30_000);
  assert.deepEqual(status, { code: 0, signal: null });
  assert.ok(Date.now() - t0 < 30_000, 'the 50 s call was not ended at EOF');
  assert.match(s.stderr(), /stdin closed/);
});
