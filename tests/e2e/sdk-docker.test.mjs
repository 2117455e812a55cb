// The official MCP SDK client against `kiln serve --runtime docker` on
// stdio, once: run_code through the Docker runtime's warm pool, a workspace
// file seen by the session's next call, and no container left when the
// server has exited. Needs a daemon and the test image (tests/docker/); it
// skips without them, and fails under KILN_MUST_WORK=1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';

import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

import { kilnBin, makeStateDir, removeStateDir, serveArgs, serverEnv, waitForExit } from './lib/kiln.mjs';
import { makeClient } from './lib/scenarios.mjs';

const SOCKET = (process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock').replace(/^unix:\/\//, '');
const IMAGE = process.env.KILN_TEST_IMAGE ?? 'kiln-test/python:bookworm';

// GET on the Engine API: {status, body} or null when no daemon answers.
function dockerGet(path) {
  return new Promise((resolve) => {
    const req = request({ socketPath: SOCKET, path: `/v1.41${path}` }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('error', () => resolve(null));
    req.end();
  });
}

async function kilnContainers(pid) {
  const filters = encodeURIComponent(JSON.stringify({ label: ['kiln.managed=true', `kiln.pid=${pid}`] }));
  const r = await dockerGet(`/containers/json?all=true&filters=${filters}`);
  return JSON.parse(r.body);
}

const image = await dockerGet(`/images/${encodeURIComponent(IMAGE)}/json`);
const why = !image ? `no Docker daemon at ${SOCKET} (tests/docker/start-dockerd.sh)`
  : image.status !== 200 ? `image ${IMAGE} is missing (tests/docker/build-image.sh)` : '';
if (why && process.env.KILN_MUST_WORK === '1') throw new Error(`KILN_MUST_WORK=1 but ${why}`);

test('run_code through the Docker runtime, a workspace across calls, nothing left', { timeout: 120_000, skip: why || false }, async (t) => {
  const stateDir = makeStateDir();
  const set = {
    'sandbox.runtime': 'docker', 'sandbox.docker.image': IMAGE,
    'sandbox.docker.allowed_images': JSON.parse(image.body).Id,
    // C001, C010 and C012 measure missing on this daemon (docs/sandbox.md).
    'server.allow_missing_controls': 'true',
  };
  const transport = new StdioClientTransport({
    command: kilnBin(), args: serveArgs(stateDir, { set }), env: serverEnv(), stderr: 'pipe',
  });
  let log = '';
  transport.stderr.on('data', (chunk) => { log += chunk.toString(); });
  const { client, protocolErrors } = makeClient('kiln-e2e-docker');
  t.after(() => removeStateDir(stateDir));
  await client.connect(transport);
  const proc = transport._process;

  const run = async (code) => {
    const r = await client.callTool({ name: 'run_code', arguments: { language: 'python', code } });
    assert.ok(!r.isError, `run_code failed: ${JSON.stringify(r)}\n${log}`);
    return r.structuredContent;
  };
  const first = await run('print(1)\n');
  assert.equal(first.stdout, '1\n');
  await run("open('/workspace/note', 'w').write('kept')\n");
  const again = await run("import socket\nprint(open('/workspace/note').read(), socket.gethostname())\n");
  assert.match(again.stdout, /^kept [0-9a-f]{12}\n$/);
  assert.ok((await kilnContainers(proc.pid)).length > 0, 'no pooled container while the server runs');

  proc.stdin.end();
  assert.deepEqual(await waitForExit(proc, 30_000), { code: 0, signal: null });
  await client.close();
  assert.deepEqual(protocolErrors, []);
  assert.deepEqual(await kilnContainers(proc.pid), [], 'containers left behind by the server');
});
