// Shared helpers for the end-to-end tests: where the kiln binary is, a private
// state directory per server, and waiting for a child process to exit.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

// KILN_BIN is set by meson (tests/e2e/meson.build); by hand, the default
// build directory of the README is used. A missing binary is a failure, never
// a skip: these tests need nothing from the host but the binary and node.
export function kilnBin() {
  const bin = process.env.KILN_BIN || resolve(here, '../../../build/cli/kiln');
  if (!existsSync(bin)) {
    throw new Error(`kiln binary not found at ${bin}: build it (ninja -C build) or set KILN_BIN`);
  }
  return bin;
}

// Each server gets its own state directory: servers sharing one would share
// (and clean up) each other's workspaces.
export function makeStateDir() {
  return mkdtempSync(join(tmpdir(), 'kiln-e2e-'));
}

export function removeStateDir(dir) {
  rmSync(dir, { recursive: true, force: true });
}

// Arguments for `kiln [--set ...] serve --test-tools [...]`.
export function serveArgs(stateDir, { set = {}, flags = [] } = {}) {
  const args = ['--set', `server.state_dir=${stateDir}`];
  for (const [key, value] of Object.entries(set)) args.push('--set', `${key}=${value}`);
  return [...args, 'serve', '--test-tools', '--log-level', 'info', ...flags];
}

// The environment for a server: the test's own, minus KILN_* settings that
// a developer's shell may carry (they would change the server under test).
export function serverEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('KILN_')) env[k] = v;
  }
  return env;
}

// Resolves with {code, signal} when the process exits, or rejects after
// `ms` (the process is then killed so the test run does not hang).
export function waitForExit(proc, ms, what = 'kiln') {
  if (proc.exitCode !== null || proc.signalCode !== null) {
    return Promise.resolve({ code: proc.exitCode, signal: proc.signalCode });
  }
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${what} did not exit within ${ms} ms`));
    }, ms);
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal });
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls `fn` until it returns a truthy value or `ms` pass.
export async function eventually(fn, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}
