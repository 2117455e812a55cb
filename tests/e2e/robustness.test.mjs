// Raw protocol robustness: exact bytes on kiln's stdin, every answer checked
// for its error code and id, and after each case the server must still
// answer ping; at the end, EOF must give a clean exit 0. Each test starts its
// own `kiln serve --test-tools`.
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

import { makeStateDir, removeStateDir, waitForExit } from './lib/kiln.mjs';
import { RawServer, assertOneError } from './lib/raw.mjs';

const PARSE = -32700;
const INVALID_REQUEST = -32600;
const METHOD_NOT_FOUND = -32601;
const INVALID_PARAMS = -32602;
const T = { timeout: 120_000 };

const line = (obj) => `${JSON.stringify(obj)}\n`;
const ping = (id) => ({ jsonrpc: '2.0', id, method: 'ping' });

async function started(t, options, version = '2025-11-25') {
  const s = new RawServer(t, options);
  await s.initialize(version);
  return s;
}

test('garbage and truncated JSON are parse errors with id null', T, async (t) => {
  const s = await started(t);
  const cases = [
    'hello world\n',
    '{"jsonrpc":"2.0","id":1,"method":"pi\n',
    '{"jsonrpc":"2.0","id":2,"method":"ping"\n',
    '{"jsonrpc":"2.0","id":3,"method":"ping"}}\n',
    '{"jsonrpc":"2.0","id":4,"method":"ping"} trailing\n',
    '{\'jsonrpc\':\'2.0\'}\n',
    '\u0000\u0001\u0002\n',
    '}\n',
    'nul\n',
  ];
  for (const input of cases) {
    assertOneError(await s.exchange(input), PARSE, null, JSON.stringify(input));
  }
  // Two messages on one line are not newline-delimited JSON either.
  assertOneError(await s.exchange(line(ping(5)).trim() + line(ping(6))), PARSE, null, 'two messages, one line');
  await s.closeAndExpectCleanExit();
});

test('blank lines are ignored, CRLF and split writes still frame one message', T, async (t) => {
  const s = await started(t);
  assert.deepEqual(await s.exchange('\n\n   \n\t\n'), []);
  const crlf = await s.exchange(`${JSON.stringify(ping('crlf'))}\r\n`);
  assert.deepEqual(crlf.map((l) => l.msg), [{ jsonrpc: '2.0', id: 'crlf', result: {} }]);

  // One message dribbled in three writes, then three messages in one write.
  const text = JSON.stringify(ping('split'));
  await s.write(text.slice(0, 5));
  await new Promise((r) => setTimeout(r, 50));
  await s.write(text.slice(5, 20));
  await new Promise((r) => setTimeout(r, 50));
  const split = await s.exchange(`${text.slice(20)}\n`);
  assert.deepEqual(split.map((l) => l.msg.id), ['split']);
  const many = await s.exchange(line(ping(1)) + line(ping(2)) + line(ping(3)));
  assert.deepEqual(many.map((l) => l.msg.id), [1, 2, 3]);
  await s.closeAndExpectCleanExit();
});

test('a 10 MB line is refused with -32600 and the server keeps going', T, async (t) => {
  const s = await started(t);
  const big = `{"jsonrpc":"2.0","id":"big","method":"ping","params":{"pad":"${'x'.repeat(10 * 1024 * 1024)}"}}\n`;
  const err = assertOneError(await s.exchange(big), INVALID_REQUEST, null, '10 MB line');
  assert.match(err.error.message, /4194304|limit/);

  // The same, with the next message right behind it in the same write.
  const both = await s.exchange(`${'y'.repeat(10 * 1024 * 1024)}\n${line(ping('after'))}`);
  assert.equal(both.length, 2, JSON.stringify(both.map((l) => l.msg)));
  assertOneError([both[0]], INVALID_REQUEST, null, 'oversized then ping');
  assert.deepEqual(both[1].msg, { jsonrpc: '2.0', id: 'after', result: {} });

  // Just under the limit is a message like any other.
  const under = `{"jsonrpc":"2.0","id":"under","method":"ping","params":{"pad":"${'z'.repeat(4 * 1024 * 1024 - 200)}"}}\n`;
  const ok = await s.exchange(under);
  assert.deepEqual(ok.map((l) => l.msg), [{ jsonrpc: '2.0', id: 'under', result: {} }]);
  await s.closeAndExpectCleanExit();
});

test('--max-message-bytes sets the limit', T, async (t) => {
  const s = await started(t, { flags: ['--max-message-bytes', '1K'] });
  const pad = (n) => line({ jsonrpc: '2.0', id: n, method: 'ping', params: { pad: 'p'.repeat(n) } });
  const ok = await s.exchange(pad(900));
  assert.deepEqual(ok.map((l) => l.msg.id), [900]);
  assertOneError(await s.exchange(pad(1100)), INVALID_REQUEST, null, '1100 bytes over a 1K limit');
  await s.closeAndExpectCleanExit();
});

test('10,000-deep nesting is a parse error, 64 levels are fine', T, async (t) => {
  const s = await started(t);
  const deep = 10_000;
  assertOneError(await s.exchange(`${'['.repeat(deep)}${']'.repeat(deep)}\n`), PARSE, null, 'deep arrays');
  assertOneError(await s.exchange(`${'{"a":'.repeat(deep)}1${'}'.repeat(deep)}\n`), PARSE, null, 'deep objects');
  assertOneError(await s.exchange(`${'['.repeat(deep)}\n`), PARSE, null, 'unclosed deep arrays');
  // Deep inside an otherwise valid request.
  const inParams = `{"jsonrpc":"2.0","id":7,"method":"ping","params":{"a":${'['.repeat(deep)}${']'.repeat(deep)}}}\n`;
  assertOneError(await s.exchange(inParams), PARSE, null, 'deep params');
  // Brackets inside strings are text, not nesting.
  const inString = line({ jsonrpc: '2.0', id: 8, method: 'ping', params: { s: '['.repeat(deep) } });
  assert.deepEqual((await s.exchange(inString)).map((l) => l.msg.id), [8]);

  // The limit: 64 levels counting the message object itself.
  const nested = (levels) => `{"jsonrpc":"2.0","id":${levels},"method":"ping","params":{"a":${'['.repeat(levels - 2)}${']'.repeat(levels - 2)}}}\n`;
  assert.deepEqual((await s.exchange(nested(64))).map((l) => l.msg), [{ jsonrpc: '2.0', id: 64, result: {} }]);
  assertOneError(await s.exchange(nested(65)), PARSE, null, '65 levels');
  await s.closeAndExpectCleanExit();
});

test('invalid UTF-8 is a parse error and stdout stays valid UTF-8', T, async (t) => {
  const s = await started(t);
  const bad = [
    Buffer.concat([Buffer.from('{"jsonrpc":"2.0","id":1,"method":"ping","params":{"s":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}}\n')]),
    Buffer.concat([Buffer.from('{"jsonrpc":"2.0","id":2,"method":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}\n')]),
    // An overlong encoding of '/' and a lone surrogate (CESU) are invalid too.
    Buffer.concat([Buffer.from('{"jsonrpc":"2.0","id":3,"method":"ping","params":{"s":"'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}}\n')]),
    Buffer.concat([Buffer.from('{"jsonrpc":"2.0","id":4,"method":"ping","params":{"s":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}}\n')]),
    Buffer.concat([Buffer.from([0x80, 0x81, 0xfe, 0xff]), Buffer.from('\n')]),
  ];
  for (const [i, bytes] of bad.entries()) {
    assertOneError(await s.exchange(bytes), PARSE, null, `invalid UTF-8 case ${i}`);
  }
  // Valid multi-byte UTF-8 goes through untouched.
  const r = await s.request({ jsonrpc: '2.0', id: 'u', method: 'tools/call', params: { name: 'debug_echo', arguments: { text: 'żółw 🐢 ✓' } } });
  assert.equal(r.msg.result.structuredContent.text, 'żółw 🐢 ✓');
  await s.closeAndExpectCleanExit();
});

test('a wrong or missing jsonrpc version is -32600 echoing the id', T, async (t) => {
  const s = await started(t);
  assertOneError(await s.exchange('{"jsonrpc":"1.0","id":5,"method":"ping"}\n'), INVALID_REQUEST, 5, 'jsonrpc 1.0');
  assertOneError(await s.exchange('{"jsonrpc":2.0,"id":"v","method":"ping"}\n'), INVALID_REQUEST, 'v', 'jsonrpc as number');
  assertOneError(await s.exchange('{"id":6,"method":"ping"}\n'), INVALID_REQUEST, 6, 'no jsonrpc');
  // A notification with a wrong version has no id to answer to but is still refused.
  assertOneError(await s.exchange('{"jsonrpc":"3.0","method":"notifications/initialized"}\n'), INVALID_REQUEST, null, 'bad notification');
  await s.closeAndExpectCleanExit();
});

test('non-object messages and malformed fields are -32600', T, async (t) => {
  const s = await started(t);
  for (const input of ['42', '"x"', 'null', 'true', '3.5']) {
    assertOneError(await s.exchange(`${input}\n`), INVALID_REQUEST, null, input);
  }
  assertOneError(await s.exchange('{"jsonrpc":"2.0","id":10,"method":"ping","params":"x"}\n'), INVALID_REQUEST, 10, 'params as a string');
  assertOneError(await s.exchange('{"jsonrpc":"2.0","id":11,"method":"ping","params":7}\n'), INVALID_REQUEST, 11, 'params as a number');
  assertOneError(await s.exchange('{"jsonrpc":"2.0","id":12,"method":7}\n'), INVALID_REQUEST, 12, 'method as a number');
  assertOneError(await s.exchange('{"jsonrpc":"2.0","id":13}\n'), INVALID_REQUEST, 13, 'neither method nor result');
  assertOneError(await s.exchange('{"jsonrpc":"2.0"}\n'), INVALID_REQUEST, null, 'empty message');
  assertOneError(await s.exchange('{}\n'), INVALID_REQUEST, null, 'empty object');
  for (const id of ['1.5', 'null', 'true', '{}', '[]']) {
    assertOneError(await s.exchange(`{"jsonrpc":"2.0","id":${id},"method":"ping"}\n`), INVALID_REQUEST, null, `id ${id}`);
  }
  // MCP params are objects: an array is valid JSON-RPC but invalid here.
  assertOneError(await s.exchange('{"jsonrpc":"2.0","id":14,"method":"ping","params":[1]}\n'), INVALID_PARAMS, 14, 'params as an array');
  assertOneError(await s.exchange('{"jsonrpc":"2.0","id":15,"method":"no/such/method"}\n'), METHOD_NOT_FOUND, 15, 'unknown method');
  // Unknown notifications are ignored, as notifications must be.
  assert.deepEqual(await s.exchange('{"jsonrpc":"2.0","method":"notifications/no_such_thing","params":{}}\n'), []);
  await s.closeAndExpectCleanExit();
});

test('ids of both kinds are echoed exactly', T, async (t) => {
  const s = await started(t);
  const ids = ['0', '1', '-1', '2147483648', '9007199254740993', '18446744073709551615', '-9223372036854775808',
    '"1"', '"01"', '"1.0"', '"-0"', '""', '"ïd ✓"', '"a\\"b"', '"\\u0000"'];
  for (const id of ids) {
    const lines = await s.exchange(`{"jsonrpc":"2.0","id":${id},"method":"ping"}\n`);
    assert.equal(lines.length, 1, `id ${id}`);
    const { raw, msg } = lines[0];
    assert.deepEqual(msg.result, {}, `id ${id}: ${raw}`);
    // Compare the id's JSON text, so that "1" vs 1 and integers beyond
    // 2^53 (which JSON.parse would round) are checked exactly.
    assert.equal(JSON.stringify(msg.id), JSON.stringify(JSON.parse(id)), `id ${id}: ${raw}`);
    assert.equal(typeof msg.id, typeof JSON.parse(id), `id ${id} changed type: ${raw}`);
    if (!id.startsWith('"')) assert.match(raw, new RegExp(`"id":${id}[,}]`), `id ${id} not echoed exactly: ${raw}`);
  }
  // Errors echo the id too, string or number.
  assertOneError(await s.exchange('{"jsonrpc":"2.0","id":"7","method":"nope"}\n'), METHOD_NOT_FOUND, '7', 'string id');
  assertOneError(await s.exchange('{"jsonrpc":"2.0","id":7,"method":"nope"}\n'), METHOD_NOT_FOUND, 7, 'number id');
  await s.closeAndExpectCleanExit();
});

test('a string id and a number id with the same digits are different requests', T, async (t) => {
  const s = await started(t);
  // A running call with id 5 does not block a call with id "5", and
  // cancelling "5" does not cancel 5.
  await s.send({ jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'debug_sleep', arguments: { seconds: 1 } } });
  await s.send({ jsonrpc: '2.0', id: '5', method: 'tools/call', params: { name: 'debug_sleep', arguments: { seconds: 30 } } });
  await s.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: '5', reason: 'test' } });
  const answer = await s.answerTo(5, 20_000);
  assert.equal(answer.msg.result.isError, false, answer.raw);
  assert.equal(answer.msg.result.structuredContent.cancelled, false, answer.raw);
  assert.match(answer.raw, /"id":5[,}]/);
  assert.match(s.stderr, /cancelling call "5"/);
  // The cancelled call "5" never answers.
  assert.equal(s.lines.filter((l) => l.msg.id === '5').length, 0);

  // A second call reusing the id of a running one is refused.
  await s.send({ jsonrpc: '2.0', id: 'dup', method: 'tools/call', params: { name: 'debug_sleep', arguments: { seconds: 30 } } });
  const dup = await s.request({ jsonrpc: '2.0', id: 'dup', method: 'tools/call', params: { name: 'debug_echo', arguments: { text: 'x' } } });
  assert.equal(dup.msg.error?.code, INVALID_REQUEST, dup.raw);
  await s.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 'dup' } });
  await s.closeAndExpectCleanExit();
});

test('response-shaped messages from the client get no answer', T, async (t) => {
  const s = await started(t);
  assert.deepEqual(await s.exchange('{"jsonrpc":"2.0","id":77,"result":{}}\n'), []);
  assert.deepEqual(await s.exchange('{"jsonrpc":"2.0","id":"r","error":{"code":-32000,"message":"x"}}\n'), []);
  assertOneError(await s.exchange('{"jsonrpc":"2.0","id":79,"result":{},"error":{"code":1,"message":"x"}}\n'),
    INVALID_REQUEST, 79, 'both result and error');
  await s.closeAndExpectCleanExit();
});

test('requests before initialize are refused; ping and notifications are not', T, async (t) => {
  const s = new RawServer(t);
  assertOneError(await s.exchange(line({ jsonrpc: '2.0', id: 1, method: 'tools/list' })), INVALID_REQUEST, 1, 'tools/list first');
  assertOneError(await s.exchange(line({ jsonrpc: '2.0', id: 'c', method: 'tools/call', params: { name: 'debug_echo', arguments: { text: 'x' } } })),
    INVALID_REQUEST, 'c', 'tools/call first');
  assertOneError(await s.exchange(line({ jsonrpc: '2.0', id: 2, method: 'logging/setLevel', params: { level: 'debug' } })),
    INVALID_REQUEST, 2, 'setLevel first');
  assertOneError(await s.exchange(line({ jsonrpc: '2.0', id: 3, method: 'no/such' })), INVALID_REQUEST, 3, 'unknown method first');
  assert.deepEqual(await s.exchange(line({ jsonrpc: '2.0', method: 'notifications/initialized' })), []);
  assertOneError(await s.exchange(line([ping(4)])), INVALID_REQUEST, null, 'batch first');
  // A broken initialize is invalid params, and does not initialize.
  assertOneError(await s.exchange(line({ jsonrpc: '2.0', id: 5, method: 'initialize', params: {} })), INVALID_PARAMS, 5, 'initialize without version');
  assertOneError(await s.exchange(line({ jsonrpc: '2.0', id: 6, method: 'tools/list' })), INVALID_REQUEST, 6, 'still not initialized');

  await s.initialize();
  const list = await s.request({ jsonrpc: '2.0', id: 7, method: 'tools/list' });
  assert.ok(Array.isArray(list.msg.result.tools), list.raw);
  assertOneError(await s.exchange(line({ jsonrpc: '2.0', id: 8, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } })),
    INVALID_REQUEST, 8, 'second initialize');
  await s.closeAndExpectCleanExit();
});

test('protocol version negotiation', T, async (t) => {
  const cases = [['2025-11-25', '2025-11-25'], ['2025-06-18', '2025-06-18'], ['2025-03-26', '2025-03-26'],
    ['2024-11-05', '2025-11-25'], ['2099-01-01', '2025-11-25'], ['not a version', '2025-11-25']];
  for (const [asked, answered] of cases) {
    const s = new RawServer(t);
    const result = await s.initialize(asked);
    assert.equal(result.protocolVersion, answered, `asked ${asked}`);
    assert.equal(result.serverInfo.name, 'kiln');
    assert.ok(result.capabilities.tools);
    await s.closeAndExpectCleanExit();
  }
});

test('batches are refused in a 2025-11-25 session', T, async (t) => {
  const s = await started(t, {}, '2025-11-25');
  assertOneError(await s.exchange(line([ping(1), ping(2)])), INVALID_REQUEST, null, 'batch of pings');
  assertOneError(await s.exchange(line([{ jsonrpc: '2.0', method: 'notifications/initialized' }])), INVALID_REQUEST, null, 'batch of a notification');
  assertOneError(await s.exchange('[]\n'), INVALID_REQUEST, null, 'empty batch');
  await s.closeAndExpectCleanExit();
});

test('batches are refused in a 2025-06-18 session', T, async (t) => {
  const s = await started(t, {}, '2025-06-18');
  assertOneError(await s.exchange(line([ping(1)])), INVALID_REQUEST, null, 'batch');
  await s.closeAndExpectCleanExit();
});

test('batches work in a 2025-03-26 session: mixed requests and notifications, one array back', T, async (t) => {
  const s = await started(t, {}, '2025-03-26');
  const batch = [
    ping(1),
    { jsonrpc: '2.0', method: 'notifications/initialized' },
    { jsonrpc: '2.0', id: 'list', method: 'tools/list' },
    { jsonrpc: '2.0', id: 'echo', method: 'tools/call', params: { name: 'debug_echo', arguments: { text: 'in a batch' } } },
    { jsonrpc: '2.0', id: 'slow', method: 'tools/call', params: { name: 'debug_sleep', arguments: { seconds: 0.3 } } },
    { jsonrpc: '2.0', id: 'nope', method: 'no/such/method' },
    42,
    { jsonrpc: '1.0', id: 'v1', method: 'ping' },
  ];
  await s.write(line(batch));
  const { raw, msg } = await s.next(20_000);
  assert.ok(Array.isArray(msg), `expected one array, got ${raw}`);
  const byId = new Map(msg.map((m) => [JSON.stringify(m.id), m]));
  assert.equal(msg.length, 7, raw); // everything but the notification
  assert.deepEqual(byId.get('1'), { jsonrpc: '2.0', id: 1, result: {} });
  assert.ok(Array.isArray(byId.get('"list"').result.tools), raw);
  assert.deepEqual(byId.get('"echo"').result.structuredContent, { text: 'in a batch' });
  assert.equal(byId.get('"slow"').result.structuredContent.cancelled, false);
  assert.equal(byId.get('"nope"').error.code, METHOD_NOT_FOUND);
  assert.equal(byId.get('"v1"').error.code, INVALID_REQUEST);
  assert.equal(byId.get('null').error.code, INVALID_REQUEST); // the 42
  // Nothing else came: the next answer is the liveness ping's.
  assert.deepEqual(await s.messagesBeforePing(), []);

  // A batch of notifications only gets no answer at all.
  assert.deepEqual(await s.exchange(line([{ jsonrpc: '2.0', method: 'notifications/initialized' }])), []);
  assertOneError(await s.exchange('[]\n'), INVALID_REQUEST, null, 'empty batch');
  await s.closeAndExpectCleanExit();
});

test('tools/call and tools/list param errors are -32602', T, async (t) => {
  const s = await started(t, { set: { 'server.page_size': 2 } });
  const call = (id, params) => line({ jsonrpc: '2.0', id, method: 'tools/call', params });
  assertOneError(await s.exchange(call(1, { name: 'no_such_tool' })), INVALID_PARAMS, 1, 'unknown tool');
  assertOneError(await s.exchange(call(2, {})), INVALID_PARAMS, 2, 'no name');
  assertOneError(await s.exchange(call(3, { name: 7 })), INVALID_PARAMS, 3, 'name not a string');
  assertOneError(await s.exchange(call(4, { name: 'debug_echo', arguments: ['x'] })), INVALID_PARAMS, 4, 'arguments array');
  assertOneError(await s.exchange(call(5, { name: 'debug_echo', arguments: 'x' })), INVALID_PARAMS, 5, 'arguments string');
  assertOneError(await s.exchange(line({ jsonrpc: '2.0', id: 6, method: 'tools/call' })), INVALID_PARAMS, 6, 'no params');
  // Bad argument values are a tool result with isError, not a protocol
  // error. (Tool calls answer from a worker, hence request(), not exchange().)
  const bad = await s.request({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'debug_echo', arguments: { text: 'x', repeat: 0 } } });
  assert.equal(bad.msg.result.isError, true, bad.raw);
  assert.match(bad.msg.result.content[0].text, /'repeat'.*1.*10/);

  // Pagination: every page is at most page_size; a forged cursor is refused.
  const names = [];
  let cursor;
  do {
    const page = await s.request({ jsonrpc: '2.0', id: `p${names.length}`, method: 'tools/list', params: cursor ? { cursor } : {} });
    assert.ok(page.msg.result.tools.length <= 2, page.raw);
    names.push(...page.msg.result.tools.map((x) => x.name));
    cursor = page.msg.result.nextCursor;
  } while (cursor !== undefined);
  assert.ok(names.includes('debug_echo') && names.length > 2, names.join());
  for (const bogus of ['garbage', 'o:999999', 'o:-1', '', 42, null]) {
    assertOneError(await s.exchange(line({ jsonrpc: '2.0', id: 'c', method: 'tools/list', params: { cursor: bogus } })),
      INVALID_PARAMS, 'c', `cursor ${JSON.stringify(bogus)}`);
  }
  await s.closeAndExpectCleanExit();
});

test('a last message without a newline is still answered before the clean exit', T, async (t) => {
  const s = await started(t);
  await s.write(JSON.stringify(ping('last')));
  s.proc.stdin.end();
  const { msg } = await s.next();
  assert.deepEqual(msg, { jsonrpc: '2.0', id: 'last', result: {} });
  await s.closeAndExpectCleanExit();
});

test('EOF with calls in flight exits 0 promptly', T, async (t) => {
  const s = await started(t);
  for (let i = 0; i < 4; i++) {
    await s.send({ jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: 'debug_sleep', arguments: { seconds: 60 } } });
  }
  assert.deepEqual(await s.messagesBeforePing(), []);
  // 60 s calls; an exit within 15 s means EOF ended them.
  await s.closeAndExpectCleanExit(15_000);
});

test('a burst of 2000 requests in one write is answered in order', T, async (t) => {
  const s = await started(t);
  const ids = Array.from({ length: 2000 }, (_, i) => i);
  const answers = await s.exchange(ids.map((i) => line(ping(i))).join(''));
  assert.deepEqual(answers.map((l) => l.msg.id), ids);
  await s.closeAndExpectCleanExit();
});

test('a client that stops reading stdout does not kill the server', T, async (t) => {
  const s = await started(t);
  // Close our end of the server's stdout: its next write fails with EPIPE,
  // which must be an error it survives, not SIGPIPE.
  s.proc.stdout.destroy();
  await s.write(line(ping('into the void')));
  await s.write(line({ jsonrpc: '2.0', id: 'c', method: 'tools/call', params: { name: 'debug_echo', arguments: { text: 'x' } } }));
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(s.proc.exitCode, null, `kiln died: ${s.stderr}`);
  s.proc.stdin.end();
  assert.deepEqual(await waitForExit(s.proc, 15_000), { code: 0, signal: null });
});

test('a second server on the same state directory leaves the first one\'s workspace alone', T, async (t) => {
  // Two MCP clients (two editor windows) each launch `kiln serve` with the
  // default state directory. The second must not delete the first's live
  // session workspace as a "leftover".
  const stateDir = makeStateDir();
  t.after(() => removeStateDir(stateDir));
  const a = new RawServer(t, { stateDir });
  await a.initialize();
  const wrote = await a.request({ jsonrpc: '2.0', id: 'w', method: 'tools/call', params: { name: 'write_file', arguments: { path: 'keep.txt', content: 'mine' } } });
  assert.equal(wrote.msg.result?.isError, false, wrote.raw);
  const files = (dir) => readdirSync(dir, { recursive: true }).map(String);
  const root = join(stateDir, 'workspaces');
  const mine = files(root).filter((f) => f.endsWith('/keep.txt'));
  assert.equal(mine.length, 1, `expected one keep.txt under ${root}: ${files(root)}`);

  // Both servers share the default audit log: several processes append to
  // one hash chain (security/audit), so the second one starts normally.
  const b = new RawServer(t, { stateDir });
  await b.initialize();
  await b.messagesBeforePing();
  assert.ok(existsSync(join(root, mine[0])),
    `starting a second server removed the first server's live workspace; stderr of the second:\n${b.stderr}`);
  const read = await a.request({ jsonrpc: '2.0', id: 'r', method: 'tools/call', params: { name: 'read_file', arguments: { path: 'keep.txt' } } });
  assert.equal(read.msg.result?.structuredContent?.content, 'mine', read.raw);
  const wroteB = await b.request({ jsonrpc: '2.0', id: 'wb', method: 'tools/call', params: { name: 'write_file', arguments: { path: 'b.txt', content: 'theirs' } } });
  assert.equal(wroteB.msg.result?.isError, false, wroteB.raw);
  await b.closeAndExpectCleanExit();
  await a.closeAndExpectCleanExit();
  // One chain, written by two processes, still verifies.
  const verify = spawnSync(process.env.KILN_BIN, ['--set', `server.state_dir=${stateDir}`, 'audit', 'verify'], { encoding: 'utf8' });
  assert.equal(verify.status, 0, verify.stdout + verify.stderr);
});
