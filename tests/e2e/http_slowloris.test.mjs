// Slow clients against the HTTP transport: hundreds of connections that
// send nothing, or trickle a request line one byte at a time, each opened
// again as soon as the server drops it. Meanwhile /healthz and a real
// run_code, each on a fresh connection, must answer within PROBE_BOUND_MS:
// a flood of idle or slow connections must never starve the server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';

import { sleep, waitForExit } from './lib/kiln.mjs';
import { startHttpServer } from './lib/http.mjs';
import { Session, leftovers } from './lib/load.mjs';

const IDLE = 200;        // connect, send nothing
const TRICKLING = 200;   // send a request line and headers a byte at a time
const TRICKLE_EVERY_MS = 1000;
const FLOOD_MS = 12_000; // longer than the server's 5 s read timeout
const PROBE_BOUND_MS = 2000;
const PARTIAL = 'POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Slow: ';

// Keeps one slow connection open until `stop.at`, reconnecting when the
// server drops it; counts the connections made.
async function slowClient(port, trickle, stop, stats) {
  while (Date.now() < stop.at) {
    await new Promise((resolve) => {
      const sock = net.connect(port, '127.0.0.1');
      stats.opened++;
      let sent = 0;
      let timer = null;
      const done = () => { clearInterval(timer); sock.destroy(); resolve(); };
      sock.on('error', done);
      sock.on('close', done);
      sock.on('data', () => {});  // a 408 or an error page: drain it
      if (trickle) {
        timer = setInterval(() => {
          if (Date.now() >= stop.at) return done();
          sock.write(PARTIAL[sent % PARTIAL.length] ?? 'x');
          sent++;
        }, TRICKLE_EVERY_MS + Math.floor(Math.random() * 100));
      } else {
        timer = setInterval(() => { if (Date.now() >= stop.at) done(); }, 200);
      }
    });
  }
}

// One request on a connection of its own (no keep-alive pool to reuse).
function oneShot(url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode, text }));
    });
    req.on('error', reject);
    // A probe stuck behind the flood fails the test with its time, not a hang.
    req.setTimeout(15_000, () => req.destroy(new Error('no answer within 15 s')));
    req.end(body);
  });
}

async function timed(fn) {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

test(`/healthz and run_code answer within ${PROBE_BOUND_MS} ms during ${IDLE} idle and ${TRICKLING} trickling connections`,
  { timeout: FLOOD_MS + 60_000 }, async (t) => {
    const server = await startHttpServer(t, { testTools: false, set: { 'server.log_level': 'warn' } });
    const { port } = new URL(server.url);
    const session = await Session.open(server.url);
    const runCode = JSON.stringify({
      jsonrpc: '2.0', id: 'probe', method: 'tools/call',
      params: { name: 'run_code', arguments: { language: 'python', code: 'print(1)' } },
    });

    const stop = { at: Date.now() + FLOOD_MS };
    const stats = { opened: 0 };
    const flood = Promise.all([
      ...Array.from({ length: IDLE }, () => slowClient(port, false, stop, stats)),
      ...Array.from({ length: TRICKLING }, () => slowClient(port, true, stop, stats)),
    ]);
    const probes = [];
    try {
      await sleep(1500);  // every slow connection is open and holding on
      while (Date.now() < stop.at - 1500) {
        const health = await timed(() => oneShot(`${server.base}/healthz`));
        assert.equal(health.value.status, 200, health.value.text);
        const run = await timed(() => oneShot(server.url, {
          method: 'POST',
          headers: {
            'Content-Type': 'application/json', Accept: 'application/json, text/event-stream',
            'MCP-Session-Id': session.id, 'MCP-Protocol-Version': '2025-11-25',
          },
          body: runCode,
        }));
        assert.equal(run.value.status, 200, run.value.text);
        assert.equal(JSON.parse(run.value.text).result?.structuredContent?.stdout, '1\n', run.value.text);
        probes.push({ healthz: Math.round(health.ms), run_code: Math.round(run.ms) });
        await sleep(500);
      }
    } finally {
      stop.at = 0;
      await flood;
    }
    t.diagnostic(`${stats.opened} slow connections opened; probe ms: ${JSON.stringify(probes)}`);
    const slow = probes.filter((p) => p.healthz > PROBE_BOUND_MS || p.run_code > PROBE_BOUND_MS);
    assert.deepEqual(slow, [], `probes slower than ${PROBE_BOUND_MS} ms`);
    assert.ok(probes.length >= 5, `only ${probes.length} probes ran`);

    assert.equal(await session.close(), 200);
    const pid = server.proc.pid;
    server.proc.kill('SIGTERM');
    assert.deepEqual(await waitForExit(server.proc, 30_000), { code: 0, signal: null }, server.stderr().slice(-3000));
    assert.deepEqual(leftovers(pid, server.stateDir), [], 'the server left these behind');
  });
