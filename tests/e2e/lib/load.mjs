// Helpers for the HTTP load and slow-client tests: MCP sessions driven with
// plain fetch (keep-alive), the server's memory, and what a run leaves on
// the host (cgroups, mounts, workspaces).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { initialize, postHeaders } from './http.mjs';

// VmRSS of a process, in KiB.
export function rssKiB(pid) {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]);
}

// One MCP session over HTTP: initialize, then JSON-RPC calls by POST. Each
// call returns {status, body} so that a caller can count 429s apart from
// errors.
export class Session {
  static async open(url) {
    const { res, session, body } = await initialize(url);
    if (res.status !== 200 || !session) throw new Error(`initialize: ${res.status} ${JSON.stringify(body)}`);
    const s = new Session(url, session);
    const note = await s.post({ jsonrpc: '2.0', method: 'notifications/initialized' });
    if (note.status !== 202) throw new Error(`notifications/initialized: ${note.status}`);
    return s;
  }

  constructor(url, id) {
    this.url = url;
    this.id = id;
    this.nextId = 1;
  }

  async post(message) {
    const res = await fetch(this.url, {
      method: 'POST',
      headers: postHeaders(this.id, { 'MCP-Protocol-Version': '2025-11-25' }),
      body: JSON.stringify(message),
    });
    const text = await res.text();
    let body = null;
    if (text) {
      // A call that sent progress first is answered as an SSE stream: its
      // last data line is the response.
      const json = res.headers.get('content-type')?.startsWith('text/event-stream')
        ? text.split('\n').filter((l) => l.startsWith('data: ') && l.length > 6).map((l) => l.slice(6)).pop()
        : text;
      try { body = JSON.parse(json); } catch { body = { unparsed: text }; }
    }
    return { status: res.status, body };
  }

  call(method, params) {
    return this.post({ jsonrpc: '2.0', id: this.nextId++, method, params });
  }

  async close() {
    const res = await fetch(this.url, {
      method: 'DELETE',
      headers: { 'MCP-Session-Id': this.id, 'MCP-Protocol-Version': '2025-11-25' },
    });
    await res.arrayBuffer();
    return res.status;
  }
}

// The calls of the mix, each with the check of a right answer.
export const calls = {
  ping: {
    send: (s) => s.call('ping', {}),
    ok: (b) => b?.result && Object.keys(b.result).length === 0,
  },
  'tools/list': {
    send: (s) => s.call('tools/list', {}),
    ok: (b) => Array.isArray(b?.result?.tools) && b.result.tools.some((t) => t.name === 'run_code'),
  },
  run_code: {
    send: (s) => s.call('tools/call', { name: 'run_code', arguments: { language: 'python', code: 'print(1)' } }),
    ok: (b) => b?.result?.isError === false && b.result.structuredContent?.stdout === '1\n',
  },
};

// What the server at `pid` left on the host: its cgroups (kiln/<pid> under
// any v1 controller or the v2 tree), mounts under its state directory, and
// session workspaces.
export function leftovers(pid, stateDir) {
  const found = [];
  const roots = ['/sys/fs/cgroup'];
  for (const c of readdirSync('/sys/fs/cgroup')) roots.push(join('/sys/fs/cgroup', c));
  for (const root of roots) {
    const dir = join(root, 'kiln', String(pid));
    if (existsSync(dir)) found.push(`cgroup ${dir}`);
  }
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mountPoint = line.split(' ')[4];
    if (mountPoint?.startsWith(stateDir)) found.push(`mount ${mountPoint}`);
  }
  const workspaces = join(stateDir, 'workspaces');
  if (existsSync(workspaces)) for (const w of readdirSync(workspaces)) found.push(`workspace ${w}`);
  return found;
}
