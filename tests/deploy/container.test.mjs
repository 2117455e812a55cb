// Kiln's image (deploy/build-image.sh), started under Docker with the
// privileges the Deployment grants its pod (dockerFlagsForPod reads them from
// deploy/kubernetes/deployment.yaml) and nothing more: no --privileged, no
// added capability. Inside it: `kiln selftest`, the whole jail suite
// (tests/sandbox, every hostile program), and an MCP call over HTTP from the
// host with a bearer token.
//
// The pod's user namespace (hostUsers: false) is reproduced by a second
// daemon this test starts and stops, with --userns-remap=default (Docker
// 20.10 maps users per daemon, not per container): selftest and the jail
// suite run under both daemons.
//
// Needs a Docker daemon (tests/docker/start-dockerd.sh starts one): without
// it the tests skip with the reason, and fail under KILN_MUST_WORK=1.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { loadManifests, findKind, dockerFlagsForPod, repoRoot } from "./lib/manifests.mjs";

const mustWork = process.env.KILN_MUST_WORK === "1";
const buildDir = process.env.DEPLOY_BUILD_DIR ?? path.join(repoRoot, "build");
const sandboxTests = process.env.DEPLOY_SANDBOX_TESTS ?? path.join(buildDir, "tests/sandbox/sandbox_tests");
const pod = dockerFlagsForPod(findKind(loadManifests(), "Deployment"));
const names = [];
let image;

// The second daemon's files, apart from the first's.
const userns = { root: "/var/lib/kiln-test-docker-userns", exec: "/run/kiln-test-docker-userns" };
userns.socket = `unix://${userns.exec}/docker.sock`;

function docker(args, { timeout = 120_000, host } = {}) {
  const env = host ? { ...process.env, DOCKER_HOST: host } : process.env;
  return spawnSync("docker", args, { encoding: "utf8", timeout, maxBuffer: 64 << 20, env });
}

function daemonMissing() {
  const r = docker(["version", "--format", "{{.Server.Version}}"], { timeout: 20_000 });
  if (r.error) return `no docker client (${r.error.code}): apt-get install docker.io`;
  if (r.status !== 0) return `no Docker daemon answers (${r.stderr.trim().split("\n").pop()}): start one with tests/docker/start-dockerd.sh`;
  return null;
}
const missing = daemonMissing();
// A skip says why; under KILN_MUST_WORK=1 the same reason is a failure.
const opts = missing && !mustWork ? { skip: missing } : {};

// The pod's flags without the ones named (to show each is needed).
function podFlagsWithout(...dropped) {
  const out = [];
  for (let i = 0; i < pod.flags.length; i += 2) {
    const pair = [pod.flags[i], pod.flags[i + 1]];
    if (pair[0] === "--read-only") { out.push(pair[0]); i -= 1; continue; }
    if (!dropped.some((d) => pair[1].startsWith(d))) out.push(...pair);
  }
  return out;
}

function containerName() {
  const name = `kiln-deploy-test-${process.pid}-${names.length}`;
  names.push(name);
  return name;
}

// `docker run --rm` of the image with the pod's flags (or `flags`).
function runInPod(args, { flags = pod.flags, extra = [], timeout, host } = {}) {
  return docker(["run", "--rm", "--name", containerName(), "--network", "none", ...flags, ...extra, image, ...args],
                { timeout, host });
}

// Starts the user-namespace daemon (dockerd makes its `dockremap` user and
// subordinate ids on first use) and loads the image into it.
async function startUsernsDaemon() {
  fs.mkdirSync(userns.exec, { recursive: true });
  const log = fs.openSync(path.join(userns.exec, "dockerd.log"), "a");
  const daemon = spawn("dockerd", ["--userns-remap=default", "--data-root", userns.root, "--exec-root", `${userns.exec}/exec`,
                                   "--pidfile", `${userns.exec}/dockerd.pid`, "-H", userns.socket,
                                   "--bridge=none", "--iptables=false", "--ip6tables=false"],
                       { stdio: ["ignore", log, log], detached: true });
  const exited = new Promise((resolve) => daemon.once("exit", resolve));
  for (let i = 0; i < 150 && daemon.exitCode === null; i++) {
    if (docker(["version"], { host: userns.socket, timeout: 5_000 }).status === 0) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const tail = () => fs.readFileSync(path.join(userns.exec, "dockerd.log"), "utf8").slice(-2000);
  assert.equal(docker(["version"], { host: userns.socket }).status, 0, `the --userns-remap dockerd did not start:\n${tail()}`);
  const load = spawnSync("bash", ["-o", "pipefail", "-c", `docker save "$0" | DOCKER_HOST=${userns.socket} docker load -q`, image],
                         { encoding: "utf8", timeout: 300_000 });
  assert.equal(load.status, 0, load.stderr);
  // The daemon is this test's own: the images earlier runs loaded can go.
  docker(["image", "prune", "--force"], { host: userns.socket });
  return async () => {
    daemon.kill("SIGTERM");
    await exited;
  };
}

before(() => {
  if (missing) {
    if (mustWork) throw new Error(`KILN_MUST_WORK=1: ${missing}`);
    return;
  }
  const r = spawnSync(path.join(repoRoot, "deploy/build-image.sh"), [buildDir], { encoding: "utf8", timeout: 900_000 });
  assert.equal(r.status, 0, `deploy/build-image.sh failed:\n${r.stderr}`);
  image = r.stdout.trim().split("\n").pop();
});

let stopUsernsDaemon = async () => {};
let usernsStarted = false;

after(async () => {
  for (const name of names) {
    docker(["rm", "-f", name]);
    if (usernsStarted) docker(["rm", "-f", name], { host: userns.socket });
  }
  await stopUsernsDaemon();
});

test("the image builds without a registry, and again to the same image", opts, () => {
  const first = docker(["image", "inspect", "--format", "{{.Id}}", image]).stdout.trim();
  const again = spawnSync(path.join(repoRoot, "deploy/build-image.sh"), [buildDir], { encoding: "utf8" });
  assert.equal(again.status, 0, again.stderr);
  assert.equal(again.stdout.trim(), image);
  assert.equal(docker(["image", "inspect", "--format", "{{.Id}}", image]).stdout.trim(), first);
  const config = JSON.parse(docker(["image", "inspect", "--format", "{{json .Config}}", image]).stdout);
  assert.equal(config.User, "10001:10001");
  assert.deepEqual(config.Cmd, ["serve", "--http", "0.0.0.0:8080"]);
});

test("the user-namespace daemon gives the pod's processes unprivileged host ids (hostUsers: false)", opts, async () => {
  assert.ok(pod.userNamespace, "the Deployment should set hostUsers: false");
  stopUsernsDaemon = await startUsernsDaemon();
  usernsStarted = true;
  const name = containerName();
  const started = docker(["run", "-d", "--name", name, "--network", "none", ...pod.flags, "--entrypoint", "/bin/sleep", image, "60"],
                         { host: userns.socket });
  assert.equal(started.status, 0, started.stderr);
  const pid = docker(["inspect", "--format", "{{.State.Pid}}", name], { host: userns.socket }).stdout.trim();
  const [inside, outside, count] = fs.readFileSync(`/proc/${pid}/uid_map`, "utf8").trim().split(/\s+/).map(Number);
  assert.equal(inside, 0);
  assert.ok(outside >= 65536 && count === 65536, `uid_map ${inside} ${outside} ${count}`);
  assert.equal(fs.statSync(`/proc/${pid}`).uid, outside + 10001);
  docker(["rm", "-f", name], { host: userns.socket });
});

const daemons = [["Docker", undefined], ["Docker with a user namespace (hostUsers: false)", userns.socket]];

for (const [daemon, host] of daemons)
test(`${daemon}: kiln selftest in the pod: every control a pod can have is in force, with the kernel's answers`, opts, (t) => {
  if (host && !usernsStarted) throw new Error("the user-namespace daemon did not start");
  for (const note of pod.notReproduced) t.diagnostic(`not reproduced under Docker: ${note}`);
  const r = runInPod(["selftest", "--json"], { timeout: 120_000, host });
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.equal(report.rootless, true);
  const status = Object.fromEntries(report.controls.map((c) => [c.id, c.status]));
  for (const id of ["C001", "C002", "C003", "C004", "C006", "C008", "C009", "C010", "C011", "C012"]) {
    assert.equal(status[id], "in_force", `${id}: ${JSON.stringify(report.controls.find((c) => c.id === id))}`);
    const evidence = report.controls.find((c) => c.id === id).evidence;
    assert.ok(evidence.length > 0 && evidence.every((e) => e.answer && !/no answer/.test(e.answer)), `${id} evidence`);
  }
  // A pod cannot create cgroups (its cgroupfs is read-only): per-run memory
  // is bounded by RLIMIT_AS, and the pod's own limit bounds them all.
  assert.equal(status.C007, "degraded");
  assert.equal(report.cgroup, "none (rlimits only)");
  const uidMap = report.controls.find((c) => c.id === "C001").evidence.find((e) => e.probe === "/proc/self/uid_map");
  assert.match(uidMap.answer, /65534 -> host 10001/);
});

test("each privilege the pod is given is needed: without it no jail starts", opts, () => {
  const withDefaultSeccomp = runInPod(["selftest"], { flags: podFlagsWithout("seccomp=") });
  assert.notEqual(withDefaultSeccomp.status, 0);
  assert.match(withDefaultSeccomp.stderr, /start the native sandbox runtime: .*user, pid, mount/);
  assert.match(withDefaultSeccomp.stderr, /seccomp profile must allow unshare .*deploy\/seccomp\/kiln\.json/);
  const withMaskedProc = runInPod(["selftest"], { flags: podFlagsWithout("systempaths=") });
  assert.notEqual(withMaskedProc.status, 0);
  assert.match(withMaskedProc.stderr, /start the native sandbox runtime: .*\/proc\/sys/);
  assert.match(withMaskedProc.stderr, /procMount: Unmasked.*systempaths=unconfined/);
});

for (const [daemon, host] of daemons)
test(`${daemon}: the jail suite (every hostile program of tests/sandbox) passes inside the pod`, opts, () => {
  if (host && !usernsStarted) throw new Error("the user-namespace daemon did not start");
  // The suite and its probe, kiln and kiln-init from the build tree, at the
  // same path (and the image tests' archive packer from the source tree); it
  // runs as the pod's user, so it is the rootless suite.
  const images = path.join(repoRoot, "tests/images");
  const r = runInPod([], { extra: ["-v", `${buildDir}:${buildDir}:ro`, "-v", `${images}:${images}:ro`, "--entrypoint", sandboxTests], timeout: 600_000, host });
  const summary = r.stdout.split("\n").filter((l) => l.startsWith("[doctest] test cases")).pop() ?? "";
  assert.equal(r.status, 0, `${summary}\n${r.stdout.slice(-6000)}\n${r.stderr.slice(-2000)}`);
  const [, passed, failed] = summary.match(/(\d+) passed \| (\d+) failed/) ?? [];
  assert.equal(Number(failed), 0);
  assert.ok(Number(passed) >= 50, summary);
});

// A tokens file for the image's default path, readable by the pod's user.
function tokensDir(t) {
  const secrets = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-deploy-secrets-"));
  t.after(() => fs.rmSync(secrets, { recursive: true, force: true }));
  const made = spawnSync(process.env.KILN_BIN, ["token", "new", "--principal", "deploy-test", "--scope", "kiln:run"], { encoding: "utf8" });
  assert.equal(made.status, 0, made.stderr);
  const [token, , line] = made.stdout.trim().split("\n");
  fs.writeFileSync(path.join(secrets, "tokens"), line + "\n");
  fs.chmodSync(secrets, 0o755);
  fs.chmodSync(path.join(secrets, "tokens"), 0o644);
  return { secrets, token };
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitReady(url, container) {
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(url)).status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`not ready in 10 s:\n${docker(["logs", container]).stderr}`);
}

async function mcp(url, token, body, session) {
  const headers = { "Content-Type": "application/json", Accept: "application/json, text/event-stream",
                    "MCP-Protocol-Version": "2025-11-25" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (session) headers["MCP-Session-Id"] = session;
  const res = await fetch(url, { method: "POST", headers, body: JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, session: res.headers.get("mcp-session-id"), body: text ? JSON.parse(text) : null };
}

test("an MCP client on the host calls run_code in the pod over HTTP with a bearer token", opts, async (t) => {
  const { secrets, token } = tokensDir(t);

  // Docker here has no bridge (dockerd --bridge=none), so the container
  // shares the host's network and listens on loopback only.
  const port = await freePort();
  const name = containerName();
  const started = docker(["run", "-d", "--name", name, "--network", "host", ...pod.flags,
                          "-v", `${secrets}:/etc/kiln/secrets:ro`, image, "serve", "--http", `127.0.0.1:${port}`]);
  assert.equal(started.status, 0, started.stderr);
  const base = `http://127.0.0.1:${port}`;
  await waitReady(`${base}/readyz`, name);
  assert.equal((await fetch(`${base}/healthz`)).status, 200);

  const init = { jsonrpc: "2.0", id: 1, method: "initialize",
                 params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "deploy-test", version: "1" } } };
  assert.equal((await mcp(`${base}/mcp`, null, init)).status, 401);
  assert.equal((await mcp(`${base}/mcp`, "kiln_" + "x".repeat(43), init)).status, 401);
  const opened = await mcp(`${base}/mcp`, token, init);
  assert.equal(opened.status, 200, JSON.stringify(opened.body));
  assert.ok(opened.session);
  assert.equal((await mcp(`${base}/mcp`, token, { jsonrpc: "2.0", method: "notifications/initialized" }, opened.session)).status, 202);
  const code = "import os\nprint(6 * 7, os.getuid(), os.path.exists('/etc/kiln'))\n";
  const call = await mcp(`${base}/mcp`, token,
    { jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "run_code", arguments: { language: "python", code } } },
    opened.session);
  assert.equal(call.status, 200, JSON.stringify(call.body));
  const result = call.body.result.structuredContent;
  assert.equal(result.exit_code, 0, JSON.stringify(result));
  // The jail's own user and root: the pod's configuration and tokens are not in it.
  assert.equal(result.stdout, "42 65534 False\n");

  const stopped = docker(["stop", "--time", "20", name], { timeout: 60_000 });
  assert.equal(stopped.status, 0, stopped.stderr);
  assert.equal(docker(["inspect", "--format", "{{.State.ExitCode}}", name]).stdout.trim(), "0");
});

test("the image's own command serves 0.0.0.0:8080 with the mounted tokens, and refuses without them", opts, async (t) => {
  const { secrets } = tokensDir(t);
  const name = containerName();
  const started = docker(["run", "-d", "--name", name, "--network", "none", ...pod.flags,
                          "-v", `${secrets}:/etc/kiln/secrets:ro`, image]);
  assert.equal(started.status, 0, started.stderr);
  // The container's own loopback, from inside it (its network is its own).
  const ask = "import urllib.request as u\nfor i in range(100):\n  try:\n    print(u.urlopen('http://127.0.0.1:8080/readyz').status); break\n"
              + "  except Exception:\n    __import__('time').sleep(0.1)\n";
  const ready = docker(["exec", name, "python3", "-c", ask]);
  assert.equal(ready.stdout.trim(), "200", `${ready.stderr}\n${docker(["logs", name]).stderr}`);
  assert.match(docker(["logs", name]).stderr, /serving MCP over HTTP at http:\/\/0\.0\.0\.0:8080\/mcp \(authentication required\)/);
  docker(["rm", "-f", name]);

  const noTokens = runInPod([]);
  assert.notEqual(noTokens.status, 0);
  assert.match(noTokens.stderr, /\/etc\/kiln\/secrets\/tokens/);
  const noAuth = runInPod([], { extra: ["-e", "KILN_SERVER_AUTH_MODE=none"] });
  assert.notEqual(noAuth.status, 0);
  assert.match(noAuth.stderr, /allow_unauthenticated_remote/);
});
