// The end-to-end scenarios every transport must pass, written once: each
// test file passes its own connect() (stdio: sdk.test.mjs, Streamable HTTP:
// sdk-http.test.mjs). connect(t, {set, flags, testTools}) starts a server and
// returns {client, proc, received, stderr(), cancelled, shutdown()}.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  LATEST_PROTOCOL_VERSION,
  LoggingMessageNotificationSchema,
  McpError,
} from '@modelcontextprotocol/sdk/types.js';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';

import { eventually, waitForExit } from './kiln.mjs';

// Records every raw message the transport delivers (the SDK hides ids and
// unsolicited responses) and returns the array it fills.
export function recordMessages(transport) {
  const received = [];
  let handler;
  Object.defineProperty(transport, 'onmessage', {
    configurable: true,
    get: () => handler && ((message, extra) => { received.push(message); handler(message, extra); }),
    set: (h) => { handler = h; },
  });
  return received;
}

// An SDK client whose protocol errors (malformed or unexpected messages)
// are collected for the test to assert on.
export function makeClient(name) {
  const client = new Client({ name, version: '1.0.0' }, { capabilities: {} });
  const protocolErrors = [];
  client.onerror = (e) => protocolErrors.push(String(e?.message ?? e));
  return { client, protocolErrors };
}

const TEST_TIMEOUT = { timeout: 60_000 };

// The SDK runs notification handlers a microtask late but settles a request
// at once, so a progress notification read in the same chunk as its
// request's result finds its handler gone and is reported as "unknown
// token". That is the SDK's doing when the server sent the notification
// BEFORE the result (as it must); a notification sent after the result is
// a real error and is not excused here. Likewise a notification already on
// its way when the client aborted a call; the tests that abort check that
// progress stops.
export function isLateProgressRace(error, received, cancelled) {
  const m = /progress notification for an unknown token: (\{.*\})$/.exec(error);
  if (!m) return false;
  const { progressToken: token, progress } = JSON.parse(m[1]).params ?? {};
  if (cancelled.has(token)) return true;
  const note = received.findIndex((x) => x.method === 'notifications/progress'
    && x.params.progressToken === token && x.params.progress === progress);
  const answer = received.findIndex((x) => x.id === token && ('result' in x || 'error' in x));
  return note >= 0 && answer > note;
}

// Starts a debug_sleep call and resolves `started` at its first progress
// notification, i.e. once the server is really running it. A call that ends
// before any progress (bad arguments, busy) fails `started` at once.
export function startSleep(client, seconds, steps, options = {}) {
  let onStart;
  let onEarlyEnd;
  const started = new Promise((resolve, reject) => {
    onStart = resolve;
    onEarlyEnd = reject;
    setTimeout(() => reject(new Error('no progress within 20 s')), 20_000).unref();
  });
  started.catch(() => {}); // awaited by the test; no unhandled rejection meanwhile
  let done = false;
  const result = client.callTool({ name: 'debug_sleep', arguments: { seconds, steps } }, undefined,
    { timeout: 120_000, ...options, onprogress: () => onStart() });
  result.then(
    (r) => { done = true; onEarlyEnd(new Error(`the call ended before any progress: ${JSON.stringify(r)}`)); },
    (e) => { done = true; onEarlyEnd(e); },
  );
  return { result, started, isDone: () => done };
}

export function defineScenarios(connect) {
  test('initialize negotiates the latest version and reports serverInfo and capabilities', TEST_TIMEOUT, async (t) => {
    const s = await connect(t);
    const init = s.received.find((m) => m.id !== undefined && m.result?.protocolVersion);
    assert.ok(init, 'no initialize result received');
    assert.equal(init.result.protocolVersion, LATEST_PROTOCOL_VERSION);
    assert.equal(LATEST_PROTOCOL_VERSION, '2025-11-25');

    const info = s.client.getServerVersion();
    assert.equal(info.name, 'kiln');
    assert.match(info.version, /^\d+\.\d+\.\d+/);

    const caps = s.client.getServerCapabilities();
    assert.ok(caps.tools, 'tools capability missing');
    assert.ok(caps.logging, 'logging capability missing');
    assert.equal(typeof s.client.getInstructions(), 'string');

    assert.deepEqual(await s.shutdown(), { code: 0, signal: null });
  });

  test('tools/list paginates with page_size=1 and every tool declares its contract', TEST_TIMEOUT, async (t) => {
    const s = await connect(t, { set: { 'server.page_size': 1 } });
    const tools = [];
    const cursors = new Set();
    let cursor;
    let pages = 0;
    do {
      const page = await s.client.listTools(cursor ? { cursor } : {});
      pages += 1;
      assert.equal(page.tools.length, 1, `page ${pages} should hold exactly one tool`);
      tools.push(...page.tools);
      cursor = page.nextCursor;
      if (cursor !== undefined) {
        assert.equal(typeof cursor, 'string');
        assert.ok(!cursors.has(cursor), `cursor ${cursor} repeated`);
        cursors.add(cursor);
      }
      assert.ok(pages <= 100, 'pagination does not end');
    } while (cursor !== undefined);

    const names = tools.map((t) => t.name);
    assert.equal(new Set(names).size, names.length, `duplicate tools across pages: ${names}`);
    for (const name of ['debug_echo', 'debug_sleep', 'debug_fail', 'debug_log']) {
      assert.ok(names.includes(name), `${name} missing from ${names}`);
    }
    const problems = [];
    for (const tool of tools) {
      if (tool.inputSchema?.type !== 'object') problems.push(`${tool.name}: inputSchema`);
      if (tool.outputSchema?.type !== 'object') problems.push(`${tool.name}: outputSchema`);
      const a = tool.annotations ?? {};
      for (const hint of ['readOnlyHint', 'destructiveHint', 'idempotentHint', 'openWorldHint']) {
        if (typeof a[hint] !== 'boolean') problems.push(`${tool.name}: annotations.${hint}`);
      }
      if (!tool.title || !tool.description) problems.push(`${tool.name}: title/description`);
    }
    assert.deepEqual(problems, [], 'tools missing part of their contract');
    assert.equal((await s.shutdown()).code, 0);
  });

  test('tools/list without --test-tools has no debug tools', TEST_TIMEOUT, async (t) => {
    const s = await connect(t, { testTools: false });
    const { tools } = await s.client.listTools();
    assert.ok(tools.length > 0, 'no tools at all');
    assert.deepEqual(tools.filter((tool) => tool.name.startsWith('debug_')), []);
    assert.equal((await s.shutdown()).code, 0);
  });

  test('callTool debug_echo returns structuredContent that the SDK validates', TEST_TIMEOUT, async (t) => {
    const s = await connect(t);
    await s.client.listTools(); // caches the output schemas the SDK validates against
    const result = await s.client.callTool({ name: 'debug_echo', arguments: { text: 'héllo ✓', repeat: 3 } });
    assert.equal(result.isError, false);
    assert.deepEqual(result.structuredContent, { text: 'héllo ✓'.repeat(3) });
    assert.equal(result.content[0].type, 'text');
    assert.equal(result.content[0].text, 'héllo ✓'.repeat(3));
    assert.equal((await s.shutdown()).code, 0);
  });

  test('ping is answered while a slow call is still running', TEST_TIMEOUT, async (t) => {
    const s = await connect(t);
    const slow = startSleep(s.client, 20, 100);
    await slow.started; // the call is running on the server
    await s.client.ping();
    assert.equal(slow.isDone(), false, 'ping was answered only after the slow call ended');
    // Three pings at once, each answered with the empty result the protocol
    // prescribes, all before the slow call ends.
    const pings = await Promise.all([s.client.ping(), s.client.ping(), s.client.ping()]);
    assert.deepEqual(pings, [{}, {}, {}]);
    assert.equal(slow.isDone(), false, 'the pings were answered only after the slow call ended');

    // EOF ends the running call; the server must still exit cleanly.
    assert.deepEqual(await s.shutdown(), { code: 0, signal: null });
  });

  test('progress notifications arrive for a call with a progress token', TEST_TIMEOUT, async (t) => {
    const s = await connect(t);
    await s.client.listTools();
    const progress = [];
    const result = await s.client.callTool(
      { name: 'debug_sleep', arguments: { seconds: 0.5, steps: 5 } },
      undefined,
      { onprogress: (p) => progress.push(p) },
    );
    assert.equal(result.isError, false);
    assert.equal(result.structuredContent.cancelled, false);
    assert.ok(result.structuredContent.slept_ms >= 400, `slept only ${result.structuredContent.slept_ms} ms`);
    // On the wire: one notification per step, before the result, each
    // echoing the request's _meta.progressToken.
    const wire = s.received.filter((m) => m.method === 'notifications/progress').map((m) => m.params);
    assert.deepEqual(wire.map((p) => p.progress), [1, 2, 3, 4, 5]);
    for (const p of wire) assert.equal(p.total, 5);
    assert.equal(new Set(wire.map((p) => p.progressToken)).size, 1);
    assert.match(wire[0].message, /step 1 of 5/);
    // Through onprogress: the SDK runs notification handlers a microtask late
    // and drops the progress handler as soon as the result arrives, so the
    // last step can be lost when it shares a read with the result (SDK
    // behaviour, not Kiln's). What arrives must be the steps in order.
    assert.ok(progress.length >= 1, 'onprogress never called');
    assert.deepEqual(progress.map((p) => p.progress), [1, 2, 3, 4, 5].slice(0, progress.length));
    assert.equal((await s.shutdown()).code, 0);
  });

  test('a call aborted by the client is cancelled on the server and gets no response', TEST_TIMEOUT, async (t) => {
    // One call at a time: a cancelled call that kept running would make the
    // next call "Server busy" for the whole 30 s it was asked to sleep.
    const s = await connect(t, { flags: ['--max-inflight', '1'] });
    await s.client.listTools();
    const controller = new AbortController();
    const doomed = startSleep(s.client, 30, 100, { signal: controller.signal });
    await doomed.started;
    const request = s.received.find((m) => m.method === 'notifications/progress');
    const token = request.params.progressToken; // the SDK uses the request id as token
    s.cancelled.add(token);
    controller.abort('test cancels');
    await assert.rejects(doomed.result);

    const t0 = Date.now();
    const next = await eventually(async () => {
      const r = await s.client.callTool({ name: 'debug_sleep', arguments: { seconds: 0 } });
      if (r.isError && /Server busy/.test(r.content[0].text)) return null;
      return r;
    }, 15_000, 'the cancelled call to free its slot');
    assert.equal(next.isError, false);
    assert.ok(Date.now() - t0 < 15_000);

    await eventually(() => /cancelling call/.test(s.stderr()), 5_000, 'the cancellation in the server log');
    assert.match(s.stderr(), new RegExp(`cancelling call ${token}\\b`));
    await s.client.ping();
    const answers = s.received.filter((m) => m.id === token && ('result' in m || 'error' in m));
    assert.deepEqual(answers, [], 'the cancelled request was answered');
    // Its progress stops too (the call sent one every 0.3 s while it ran).
    const progressOf = () => s.received.filter((m) => m.method === 'notifications/progress'
      && m.params.progressToken === token).length;
    const before = progressOf();
    await new Promise((r) => setTimeout(r, 1_000));
    assert.equal(progressOf(), before, 'progress kept coming after the cancellation');
    assert.equal((await s.shutdown()).code, 0);
  });

  test('logging/setLevel filters notifications/message by level', TEST_TIMEOUT, async (t) => {
    const s = await connect(t);
    const messages = [];
    s.client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => messages.push(n.params));
    const log = async (level) => {
      const r = await s.client.callTool({ name: 'debug_log', arguments: { level, message: `at ${level}` } });
      assert.equal(r.isError, false, JSON.stringify(r));
    };

    // Default threshold: warning.
    await log('info');
    await log('warning');
    await s.client.setLoggingLevel('notice');
    await log('info');
    await log('notice');
    await log('critical');
    await s.client.setLoggingLevel('emergency');
    await log('alert');
    await log('emergency');
    await s.client.ping(); // every notification sent before this answer has been handled

    assert.deepEqual(messages.map((m) => [m.level, m.data]), [
      ['warning', 'at warning'],
      ['notice', 'at notice'],
      ['critical', 'at critical'],
      ['emergency', 'at emergency'],
    ]);
    await assert.rejects(s.client.setLoggingLevel('verbose'), (e) => e instanceof McpError && e.code === -32602);
    assert.equal((await s.shutdown()).code, 0);
  });

  test('bad arguments give an isError result naming the field and the allowed range', TEST_TIMEOUT, async (t) => {
    const s = await connect(t);
    await s.client.listTools();
    const cases = [
      [{ text: 'x', repeat: 11 }, /'repeat'.*1.*10/],
      [{ text: 42 }, /'text'.*string/],
      [{}, /text/],
      [{ text: 'x', colour: 'red' }, /'colour'/],
    ];
    for (const [args, pattern] of cases) {
      const r = await s.client.callTool({ name: 'debug_echo', arguments: args });
      assert.equal(r.isError, true, `${JSON.stringify(args)} was accepted`);
      assert.match(r.content[0].text, pattern);
    }
    const sleepy = await s.client.callTool({ name: 'debug_sleep', arguments: { seconds: 61 } });
    assert.equal(sleepy.isError, true);
    assert.match(sleepy.content[0].text, /'seconds'.*0.*60/);

    const failed = await s.client.callTool({ name: 'debug_fail', arguments: {} });
    assert.equal(failed.isError, true);
    assert.match(failed.content[0].text, /debug_fail/);
    assert.equal((await s.shutdown()).code, 0);
  });

  test('an unknown tool is a JSON-RPC error -32602', TEST_TIMEOUT, async (t) => {
    const s = await connect(t);
    await assert.rejects(
      s.client.callTool({ name: 'no_such_tool', arguments: {} }),
      (e) => e instanceof McpError && e.code === -32602 && /no_such_tool/.test(e.message),
    );
    await s.client.ping(); // still serving
    assert.equal((await s.shutdown()).code, 0);
  });

  test('the server is busy, not blocked, beyond --max-inflight', TEST_TIMEOUT, async (t) => {
    const s = await connect(t, { flags: ['--max-inflight', '2'] });
    await s.client.listTools();
    const controllers = [new AbortController(), new AbortController()];
    const running = controllers.map((c) => startSleep(s.client, 30, 100, { signal: c.signal }));
    await Promise.all(running.map((r) => r.started));
    const busy = await s.client.callTool({ name: 'debug_echo', arguments: { text: 'x' } });
    assert.equal(busy.isError, true);
    assert.match(busy.content[0].text, /Server busy/);
    for (const m of s.received.filter((x) => x.method === 'notifications/progress')) s.cancelled.add(m.params.progressToken);
    for (const c of controllers) c.abort();
    await Promise.allSettled(running.map((r) => r.result));
    assert.equal((await s.shutdown()).code, 0);
  });

  test('SIGTERM ends running calls and the server exits 0', TEST_TIMEOUT, async (t) => {
    const s = await connect(t);
    const slow = startSleep(s.client, 50, 100);
    await slow.started;
    s.proc.kill('SIGTERM');
    const status = await waitForExit(s.proc, 30_000);
    assert.deepEqual(status, { code: 0, signal: null });
    assert.match(s.stderr(), /signal received/);
  });
}
