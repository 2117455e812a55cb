// Three containers of Kiln's image (deploy/build-image.sh), each with the
// privileges the Deployment grants its pod (dockerFlagsForPod) and nothing
// more, behind haproxy on the host (tests/e2e/lib/haproxy.cfg: round robin,
// sessions kept on their replica). They share what the pods share: one host
// directory bind-mounted where the claim is (/var/lib/kiln-shared: the
// workspace store and the audit chains), one requestState key and one tokens
// file; each has its own server.replica_id. Through the proxy, the 1.x SDK
// client creates a workspace on one replica and reads it with run_code on
// another (Kiln-Replica proves which), the v2 client makes, writes and reads
// one on three replicas in turn; after `docker kill` of one container
// the other two serve.
//
// Docker here has no bridge (dockerd --bridge=none): the containers share
// the host's network and each listens on 127.0.0.1 only. Needs a Docker
// daemon: without it the test skips with the reason, and fails under
// KILN_MUST_WORK=1.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { loadManifests, findKind, dockerFlagsForPod, repoRoot } from "./lib/manifests.mjs";

const mustWork = process.env.KILN_MUST_WORK === "1";
const buildDir = process.env.DEPLOY_BUILD_DIR ?? path.join(repoRoot, "build");
const pod = dockerFlagsForPod(findKind(loadManifests(), "Deployment"));
const [podUser, podGroup] = pod.flags[pod.flags.indexOf("--user") + 1].split(":").map(Number);
// Every container this run starts carries it, so that the end can list them.
const label = `kiln-test=deploy-replicas-${process.pid}`;
let image;
let cluster;

function docker(args, { timeout = 120_000 } = {}) {
  return spawnSync("docker", args, { encoding: "utf8", timeout, maxBuffer: 64 << 20 });
}

function daemonMissing() {
  const r = docker(["version", "--format", "{{.Server.Version}}"], { timeout: 20_000 });
  if (r.error) return `no docker client (${r.error.code}): apt-get install docker.io`;
  if (r.status !== 0) return `no Docker daemon answers (${r.stderr.trim().split("\n").pop()}): start one with tests/docker/start-dockerd.sh`;
  if (spawnSync("haproxy", ["-v"]).error) return "no haproxy: apt-get install haproxy";
  return null;
}
const missing = daemonMissing();
const opts = missing && !mustWork ? { skip: missing } : {};

function labelled() {
  return docker(["ps", "-aq", "--filter", `label=${label}`]).stdout.split("\n").filter(Boolean);
}

function removeAll() {
  const ids = labelled();
  if (ids.length) docker(["rm", "-f", ...ids]);
}

// lib/cluster.mjs (the proxy, the recording SDK client) resolves the SDK in
// tests/e2e/node_modules: installed from that folder's lock file as
// tests/e2e/run.sh does, under the same lock.
function installE2ePackages() {
  const e2e = path.join(repoRoot, "tests/e2e");
  const r = spawnSync("sh", ["-c", "flock .npm-install.lock sh -c '[ -f node_modules/.package-lock.json ] && " +
    "[ ! package-lock.json -nt node_modules/.package-lock.json ] || npm ci --no-audit --no-fund --loglevel=error'"],
    { cwd: e2e, encoding: "utf8", timeout: 300_000 });
  assert.equal(r.status, 0, `npm ci in tests/e2e failed:\n${r.stderr}`);
}

before(async () => {
  if (missing) {
    if (mustWork) throw new Error(`KILN_MUST_WORK=1: ${missing}`);
    return;
  }
  installE2ePackages();
  cluster = await import("../e2e/lib/cluster.mjs");
  const r = spawnSync(path.join(repoRoot, "deploy/build-image.sh"), [buildDir], { encoding: "utf8", timeout: 900_000 });
  assert.equal(r.status, 0, `deploy/build-image.sh failed:\n${r.stderr}`);
  image = r.stdout.trim().split("\n").pop();
});

after(removeAll);

// The host side of what the pods share: the claim's directory, the tokens
// file and the requestState key, owned by the pod's user as on the volume.
function sharedFiles(t) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-deploy-replicas-"));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const made = spawnSync(process.env.KILN_BIN, ["token", "new", "--principal", "deploy-replicas"], { encoding: "utf8" });
  assert.equal(made.status, 0, made.stderr);
  const lines = made.stdout.trim().split("\n");
  const files = { root, shared: path.join(root, "shared"), tokens: path.join(root, "tokens"),
                  key: path.join(root, "request-state.key"), token: lines[0] };
  fs.mkdirSync(files.shared, { mode: 0o700 });
  fs.writeFileSync(files.tokens, lines[lines.length - 1] + "\n", { mode: 0o600 });
  fs.writeFileSync(files.key, crypto.randomBytes(32), { mode: 0o600 });
  for (const p of [files.shared, files.tokens, files.key]) fs.chownSync(p, podUser, podGroup);
  fs.chmodSync(root, 0o755);
  return files;
}

async function startContainer(files, id, port) {
  const name = `kiln-deploy-replica-${process.pid}-${id}`;
  const env = {
    KILN_SERVER_REPLICA_ID: id,
    KILN_WORKSPACE_STORE: "shared",
    KILN_WORKSPACE_SHARED_DIR: "/var/lib/kiln-shared", // as the ConfigMap
    KILN_SERVER_REQUEST_STATE_KEY_FILE: "/etc/kiln/request-state.key",
    KILN_SERVER_HTTP_KEEP_ALIVE_TIMEOUT: "1s",
    KILN_AUDIT_PATH: `/var/lib/kiln-shared/audit/${id}.jsonl`,
  };
  const started = docker(["run", "-d", "--name", name, "--label", label, "--network", "host", ...pod.flags,
    ...Object.entries(env).flatMap(([k, v]) => ["-e", `${k}=${v}`]),
    "-v", `${files.shared}:/var/lib/kiln-shared`,
    "-v", `${files.tokens}:/etc/kiln/secrets/tokens:ro`,
    "-v", `${files.key}:/etc/kiln/request-state.key:ro`,
    image, "serve", "--http", `127.0.0.1:${port}`]);
  assert.equal(started.status, 0, started.stderr);
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200) return { id, port, name };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`replica ${id} not ready in 20 s:\n${docker(["logs", name]).stderr}`);
}

// The SDK's v2 client (@modelcontextprotocol/client), from tests/e2e's
// packages, recording the method and the replica of each exchange.
function v2Client(url, token) {
  const { Client, StreamableHTTPClientTransport } = createRequire(path.join(repoRoot, "tests/e2e/package.json"))("@modelcontextprotocol/client");
  const exchanges = [];
  // A 2026-07-28 request names its method in the Mcp-Method header.
  const recording = async (input, init = {}) => {
    const sent = new Headers(init.headers);
    sent.set("Authorization", `Bearer ${token}`);
    const res = await fetch(input, { ...init, headers: sent });
    exchanges.push({ method: sent.get("mcp-method"), replica: res.headers.get("kiln-replica") });
    return res;
  };
  const client = new Client({ name: "kiln-deploy-replicas-v2", version: "1.0.0" }, { capabilities: {}, versionNegotiation: { mode: "auto" } });
  return { client, transport: new StreamableHTTPClientTransport(new URL(url), { fetch: recording }), exchanges };
}

const python = (code, workspace) => ({ name: "run_code", arguments: { language: "python", code, workspace } });

test("three pods' containers behind haproxy share one workspace store; one killed, the others serve", opts, async (t) => {
  const files = sharedFiles(t);
  // haproxy's configuration and the replicas' registry (lib/cluster.mjs).
  const group = { root: files.root, replicas: new Map() };
  for (const id of ["c1", "c2", "c3"]) {
    const replica = await startContainer(files, id, await cluster.freePort());
    group.replicas.set(id, replica);
  }
  const proxy = await cluster.startProxy(t, group);

  const a = await cluster.connect(proxy.url, files.token);
  t.after(a.close);
  const made = await a.client.callTool({ name: "workspace_create", arguments: {} });
  assert.ok(!made.isError, made.content?.[0]?.text);
  const handle = made.structuredContent.workspace;
  assert.equal(made.structuredContent.store, "shared");
  const wrote = await a.client.callTool({ name: "write_file", arguments: { path: "msg.txt", content: `written on ${a.replica()}`, workspace: handle } });
  assert.ok(!wrote.isError, wrote.content?.[0]?.text);

  const b = await cluster.connectAvoiding(proxy.url, files.token, [a.replica()]);
  t.after(b.close);
  const read = "import os\nprint(open('msg.txt').read(), os.getuid(), end='')";
  const ran = await b.client.callTool(python(read, handle));
  assert.ok(!ran.isError, ran.content?.[0]?.text);
  assert.notEqual(b.replica(), a.replica());
  // The jail's own user, in the container of another replica.
  assert.equal(ran.structuredContent.stdout, `written on ${a.replica()} 65534`);
  // The store is the host directory every container mounts (the
  // ConfigMap's shared_dir, which holds <shared_dir>/workspaces/<handle>).
  assert.ok(fs.existsSync(path.join(files.shared, "workspaces", handle)), "the workspace is in the bind-mounted directory");

  // The v2 client (2026-07-28, stateless): with no session each request
  // goes to the next replica, so its three calls land on three.
  const v2 = v2Client(proxy.url, files.token);
  await v2.client.connect(v2.transport);
  t.after(() => v2.client.close().catch(() => {}));
  const v2made = await v2.client.callTool({ name: "workspace_create", arguments: {} });
  assert.equal(v2made.isError, false, v2made.content?.[0]?.text);
  const v2handle = v2made.structuredContent.workspace;
  await v2.client.callTool({ name: "write_file", arguments: { path: "v2.txt", content: "from the v2 client", workspace: v2handle } });
  const v2read = await v2.client.callTool(python("print(open('v2.txt').read(), end='')", v2handle));
  assert.equal(v2read.structuredContent?.stdout, "from the v2 client", JSON.stringify(v2read));
  const calls = v2.exchanges.filter((e) => e.method === "tools/call").map((e) => e.replica);
  assert.equal(calls.length, 3);
  assert.equal(new Set(calls).size, 3, `made, written and read on ${calls.join(", ")}`);

  // The third replica is killed (SIGKILL, no grace) while the others are up:
  // new sessions go to the two left, and read what the first wrote.
  const c = await cluster.connectAvoiding(proxy.url, files.token, [a.replica(), b.replica()]);
  const victim = c.replica();
  await c.close();
  const killed = docker(["kill", group.replicas.get(victim).name]);
  assert.equal(killed.status, 0, killed.stderr);
  const served = new Set();
  for (let i = 0; i < 6; i++) {
    const s = await cluster.connect(proxy.url, files.token);
    try {
      const r = await s.client.callTool(python("print(open('msg.txt').read(), end='')", handle));
      assert.ok(!r.isError, r.content?.[0]?.text);
      assert.equal(r.structuredContent.stdout, `written on ${a.replica()}`);
      served.add(s.replica());
    } finally {
      await s.close();
    }
  }
  assert.deepEqual([...served].sort(), [a.replica(), b.replica()].sort());
  assert.equal(docker(["inspect", "--format", "{{.State.Running}}", group.replicas.get(victim).name]).stdout.trim(), "false");

  // Each replica wrote its own audit chain on the shared directory, the
  // killed one's cut back to its last whole record: all verify.
  const chains = ["c1", "c2", "c3"].map((id) => path.join(files.shared, "audit", `${id}.jsonl`));
  const verified = spawnSync(process.env.KILN_BIN, ["audit", "verify", ...chains], { encoding: "utf8" });
  assert.equal(verified.status, 0, verified.stdout + verified.stderr);

  removeAll();
  assert.deepEqual(labelled(), [], `containers labelled ${label} are left`);
});
