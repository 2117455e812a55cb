// node:fs, plus globSync(pattern, { cwd }) where Node (20) has none: `*`
// matches within one path segment, `**` any number of segments, `?` one
// character; results are paths relative to cwd, as Node 22's are.
import * as fs from 'node:fs';
import path from 'node:path';

export * from 'node:fs';
export default fs.default ?? fs;

function segmentRegex(segment) {
  const escaped = segment.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]');
  return new RegExp(`^${escaped}$`);
}

function walk(base, rel, parts, out) {
  if (parts.length === 0) {
    out.push(rel);
    return;
  }
  const [head, ...rest] = parts;
  const dir = path.join(base, rel);
  if (head === '**') {
    walk(base, rel, rest, out);
    for (const e of safeReaddir(dir)) {
      if (e.isDirectory()) walk(base, rel ? path.join(rel, e.name) : e.name, parts, out);
    }
    return;
  }
  if (!/[*?]/.test(head)) {
    const next = rel ? path.join(rel, head) : head;
    if (fs.existsSync(path.join(base, next))) walk(base, next, rest, out);
    return;
  }
  const re = segmentRegex(head);
  for (const e of safeReaddir(dir)) {
    if (re.test(e.name)) walk(base, rel ? path.join(rel, e.name) : e.name, rest, out);
  }
}

function safeReaddir(dir) {
  try {
    return fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
}

export const globSync = fs.globSync ?? function globSync(patterns, options = {}) {
  const cwd = options.cwd ? String(options.cwd) : process.cwd();
  const out = [];
  for (const pattern of Array.isArray(patterns) ? patterns : [patterns]) {
    const absolute = path.isAbsolute(pattern);
    const parts = pattern.split('/').filter((p) => p !== '');
    walk(absolute ? '/' : cwd, '', parts, out);
    if (absolute) for (let i = out.length - 1; i >= 0 && !path.isAbsolute(out[i]); i--) out[i] = '/' + out[i];
  }
  return [...new Set(out)];
};
