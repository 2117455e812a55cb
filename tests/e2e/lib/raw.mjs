// A raw stdio peer for `kiln serve`: writes exact bytes and reads the
// server's stdout line by line, with no SDK in between to fix things up.
import { spawn } from 'node:child_process';
import assert from 'node:assert/strict';

import { kilnBin, makeStateDir, removeStateDir, serveArgs, serverEnv, waitForExit } from './kiln.mjs';

const utf8 = new TextDecoder('utf-8', { fatal: true });

export class RawServer {
  // Starts a server; `t` (the node:test context) kills it and removes its
  // state directory when the test ends, whatever happened.
  // `stateDir`: share one with another server (the caller removes it).
  constructor(t, { set, flags, stateDir } = {}) {
    this.ownsStateDir = !stateDir;
    this.stateDir = stateDir ?? makeStateDir();
    this.proc = spawn(kilnBin(), serveArgs(this.stateDir, { set, flags }), {
      env: serverEnv(), stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.lines = [];        // every stdout line: {raw, msg}
    this.queue = [];        // lines not yet consumed by next()
    this.waiters = [];
    this.stderr = '';
    this.violations = [];   // stdout lines that are not one UTF-8 JSON message
    this.pingCount = 0;
    let pending = Buffer.alloc(0);
    this.proc.stdout.on('data', (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      for (let nl = pending.indexOf(10); nl >= 0; nl = pending.indexOf(10)) {
        this.onLine(pending.subarray(0, nl));
        pending = pending.subarray(nl + 1);
      }
    });
    this.proc.stderr.on('data', (chunk) => { this.stderr += chunk.toString(); });
    this.proc.stdin.on('error', () => {}); // EPIPE when a test kills the server
    // Cleanup asks politely first (EOF), so the server unmounts its own
    // workspaces; SIGKILL only if it does not go.
    t.after(async () => {
      if (this.proc.exitCode === null && this.proc.signalCode === null) {
        this.proc.stdin.end();
        await waitForExit(this.proc, 5_000).catch(() => {});
      }
      if (this.ownsStateDir) removeStateDir(this.stateDir);
    });
  }

  onLine(bytes) {
    let raw;
    let msg;
    try {
      raw = utf8.decode(bytes);
      msg = JSON.parse(raw);
    } catch (e) {
      this.violations.push(`${e.message}: ${bytes.subarray(0, 200).toString('latin1')}`);
      return;
    }
    const line = { raw, msg };
    this.lines.push(line);
    const waiter = this.waiters.shift();
    if (waiter) waiter(line);
    else this.queue.push(line);
  }

  // The next stdout message, or a rejection after `ms`.
  next(ms = 10_000) {
    if (this.queue.length) return Promise.resolve(this.queue.shift());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`no message from the server within ${ms} ms; stderr:\n${this.stderr}`));
      }, ms);
      const waiter = (line) => { clearTimeout(timer); resolve(line); };
      this.waiters.push(waiter);
    });
  }

  write(data) {
    return new Promise((resolve, reject) => {
      this.proc.stdin.write(data, (err) => (err ? reject(err) : resolve()));
    });
  }

  send(message) {
    return this.write(`${JSON.stringify(message)}\n`);
  }

  // Writes `data`, then a ping, and returns every message that came before
  // the ping's answer. Lines are handled in order and everything but tool
  // calls answers at once, so these are exactly the answers to `data`; the
  // ping's answer proves the server is still alive and reading.
  async exchange(data) {
    await this.write(data);
    return this.messagesBeforePing();
  }

  async messagesBeforePing() {
    const id = `alive-${++this.pingCount}`;
    await this.send({ jsonrpc: '2.0', id, method: 'ping' });
    const before = [];
    for (;;) {
      const line = await this.next();
      if (line.msg?.id === id) {
        assert.deepEqual(line.msg, { jsonrpc: '2.0', id, result: {} }, 'ping answered wrongly');
        return before;
      }
      before.push(line);
    }
  }

  // Sends a request and returns its answer (the next message with its id;
  // notifications in between are kept in `skipped`).
  async request(message, ms) {
    await this.send(message);
    return this.answerTo(message.id, ms);
  }

  async answerTo(id, ms) {
    this.skipped = this.skipped ?? [];
    for (;;) {
      const line = await this.next(ms);
      if (line.msg?.id === id && ('result' in line.msg || 'error' in line.msg)) return line;
      this.skipped.push(line);
    }
  }

  async initialize(protocolVersion = '2025-11-25') {
    const { msg } = await this.request({
      jsonrpc: '2.0', id: 'init', method: 'initialize',
      params: { protocolVersion, capabilities: {}, clientInfo: { name: 'kiln-e2e-raw', version: '1.0.0' } },
    });
    assert.ok(msg.result, `initialize failed: ${JSON.stringify(msg)}`);
    await this.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    return msg.result;
  }

  // EOF on stdin: the server must exit 0, having written only protocol
  // messages on stdout.
  async closeAndExpectCleanExit(ms = 15_000) {
    this.proc.stdin.end();
    const status = await waitForExit(this.proc, ms);
    assert.deepEqual(this.violations, [], 'stdout carried something other than UTF-8 JSON lines');
    assert.deepEqual(status, { code: 0, signal: null }, `kiln exited badly; stderr:\n${this.stderr}`);
  }
}

// Asserts that `lines` is exactly one JSON-RPC error with `code` and `id`.
export function assertOneError(lines, code, id, what) {
  assert.equal(lines.length, 1, `${what}: expected one answer, got ${JSON.stringify(lines.map((l) => l.msg))}`);
  const { msg } = lines[0];
  assert.equal(msg.jsonrpc, '2.0', what);
  assert.ok(msg.error, `${what}: expected an error, got ${JSON.stringify(msg)}`);
  assert.equal(msg.error.code, code, `${what}: ${JSON.stringify(msg.error)}`);
  assert.equal(typeof msg.error.message, 'string', what);
  assert.ok(!('result' in msg), what);
  assert.deepEqual(msg.id, id, `${what}: id`);
  return msg;
}
