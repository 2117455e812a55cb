// Starts `kiln serve --http 127.0.0.1:0` (a free loopback port, or `listen`)
// and finds its URL (http or https) in the log. Shared by the SDK, raw-protocol and conformance tests.
import { spawn } from 'node:child_process';

import {
  eventually, kilnBin, makeStateDir, removeStateDir, serveArgs, serverEnv, waitForExit,
} from './kiln.mjs';

// Resolves with {proc, url, base, stateDir, stderr()}; the server is stopped
// (SIGTERM, then SIGKILL) and its state removed when the test ends.
export async function startHttpServer(t, { set = {}, flags = [], testTools = true, listen = '127.0.0.1:0' } = {}) {
  const stateDir = makeStateDir();
  // An idle keep-alive connection holds its worker this long, and SIGTERM
  // waits for it: 1 s (the least allowed) keeps each test's close short.
  set = { 'server.http.keep_alive_timeout': '1s', ...set };
  let args = serveArgs(stateDir, { set, flags: [...flags, '--http', listen] });
  if (!testTools) args = args.filter((a) => a !== '--test-tools');
  const proc = spawn(kilnBin(), args, { env: serverEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr.on('data', (chunk) => { log += chunk.toString(); });
  t.after(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      await waitForExit(proc, 20_000).catch(() => {});
    }
    removeStateDir(stateDir);
  });
  const url = await eventually(() => {
    if (proc.exitCode !== null) throw new Error(`kiln exited with ${proc.exitCode} before listening:\n${log}`);
    return /serving MCP over HTTPS? at (https?:\/\/\S+)/.exec(log)?.[1];
  }, 15_000, 'the server to listen');
  return { proc, url, base: new URL(url).origin, stateDir, stderr: () => log };
}

// The headers a 2025-11-25 client sends on every POST.
export function postHeaders(session, extra = {}) {
  const h = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', ...extra };
  if (session) h['MCP-Session-Id'] = session;
  return h;
}

export async function initialize(url, version = '2025-11-25', extra = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: postHeaders(undefined, extra),
    body: JSON.stringify({
      jsonrpc: '2.0', id: 0, method: 'initialize',
      params: { protocolVersion: version, capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
    }),
  });
  return { res, session: res.headers.get('mcp-session-id'), body: await res.json() };
}

// Reads SSE events ({id, data}) from a fetch response until `until(events)`
// is true or the stream ends.
export async function readEvents(res, until = () => false) {
  const events = [];
  const decoder = new TextDecoder();
  let buffer = '';
  const reader = res.body.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const event = {};
      for (const line of block.split('\n')) {
        const colon = line.indexOf(':');
        if (colon <= 0) continue;
        const field = line.slice(0, colon);
        const value = line.slice(colon + 1).replace(/^ /, '');
        event[field] = value;
      }
      if (Object.keys(event).length) events.push(event);
    }
    if (until(events)) {
      await reader.cancel();
      break;
    }
  }
  return events;
}
