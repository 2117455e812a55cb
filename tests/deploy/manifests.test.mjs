// deploy/kubernetes/ against the Kubernetes API schemas, offline; a broken
// field must fail the check; the seccomp profile must follow the jail's
// denylist; the ConfigMap's configuration must load in Kiln.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import YAML from "yaml";
import { loadManifests, validateManifests, findKind, repoRoot } from "./lib/manifests.mjs";

const manifests = loadManifests();

test("every manifest validates against the Kubernetes API schemas and types", async () => {
  const kinds = manifests.map((m) => m.doc.kind).sort();
  assert.deepEqual(kinds, ["ConfigMap", "Deployment", "Namespace", "NetworkPolicy", "PersistentVolumeClaim",
                           "PodDisruptionBudget", "Service"]);
  assert.deepEqual(await validateManifests(manifests), []);
});

// Each break is one a person could make; each must be reported, naming the
// document and the field.
const breaks = [
  ["a misspelled pod field", (d) => { d.spec.template.spec.hostUser = false; }, /deployment\.yaml#0: .*'"?hostUser"?' does not exist/],
  ["a value outside an enum", (d) => { d.spec.template.spec.containers[0].securityContext.procMount = "Unmaskd"; }, /procMount/],
  ["a string where an integer belongs", (d) => { d.spec.replicas = "3"; }, /spec\/replicas must be integer/],
  ["a malformed quantity", (d) => { d.spec.template.spec.containers[0].resources.limits.memory = "8Gx"; }, /limits\/memory must match format "quantity"/],
  ["a missing required field", (d) => { delete d.spec.template.spec.containers[0].name; }, /containers\/0 must have required property name/],
  ["a misspelled probe field", (d) => { d.spec.template.spec.containers[0].readinessProbe.httpGet.paht = "/readyz"; }, /'"?paht"?' does not exist/],
];
for (const [name, breakIt, expected] of breaks) {
  test(`the check fails on ${name}`, async () => {
    const broken = structuredClone(manifests);
    breakIt(broken.find((m) => m.doc.kind === "Deployment").doc);
    const errors = await validateManifests(broken);
    assert.ok(errors.some((e) => expected.test(e)), `expected ${expected} among:\n${errors.join("\n")}`);
  });
}

test("the pod has the privileges docs/deploy.md explains, and no others", () => {
  const pod = findKind(manifests, "Deployment").spec.template.spec;
  const c = pod.containers[0];
  assert.equal(pod.hostUsers, false);
  assert.equal(pod.automountServiceAccountToken, false);
  assert.deepEqual(pod.securityContext.seccompProfile, { type: "Localhost", localhostProfile: "kiln.json" });
  assert.deepEqual(pod.securityContext.appArmorProfile, { type: "Unconfined" });
  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.equal(c.securityContext.procMount, "Unmasked");
  assert.equal(c.securityContext.allowPrivilegeEscalation, false);
  assert.deepEqual(c.securityContext.capabilities, { drop: ["ALL"] });
  assert.equal(c.securityContext.privileged, undefined);
  assert.equal(c.readinessProbe.httpGet.path, "/readyz");
  assert.equal(c.livenessProbe.httpGet.path, "/healthz");
  const annotations = findKind(manifests, "Deployment").spec.template.metadata.annotations;
  assert.equal(annotations["prometheus.io/path"], "/metrics");
  assert.ok(c.resources.requests.memory && c.resources.limits.memory && c.resources.limits.cpu);
  const policy = findKind(manifests, "NetworkPolicy").spec;
  assert.ok(policy.policyTypes.includes("Egress"));
  assert.deepEqual(policy.egress, []);
  assert.deepEqual(findKind(manifests, "PersistentVolumeClaim").spec.accessModes, ["ReadWriteMany"]);
});

test("deploy/seccomp/kiln.json is the profile make-profile.py derives from the jail's denylist", () => {
  const r = spawnSync(path.join(repoRoot, "deploy/seccomp/make-profile.py"), ["--check"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const profile = JSON.parse(fs.readFileSync(path.join(repoRoot, "deploy/seccomp/kiln.json"), "utf8"));
  const allowed = new Set(profile.syscalls.filter((s) => s.action === "SCMP_ACT_ALLOW").flatMap((s) => s.names));
  const denied = new Set(profile.syscalls.filter((s) => s.action === "SCMP_ACT_ERRNO").flatMap((s) => s.names));
  for (const call of ["unshare", "mount", "pivot_root", "clone", "clone3", "seccomp", "landlock_restrict_self"])
    assert.ok(allowed.has(call), `${call} must be allowed: the jail's setup needs it`);
  for (const call of ["kexec_load", "init_module", "bpf", "ptrace", "keyctl", "io_uring_setup", "userfaultfd"])
    assert.ok(denied.has(call) && !allowed.has(call), `${call} must be denied in the pod`);
});

// Keys the shared workspace store brings (workspace.store, .shared_dir):
// a kiln that does not know them yet is checked without them, and says so.
const pendingKeys = ["store", "shared_dir"];

test("the ConfigMap's kiln.yaml loads in kiln (`kiln config print`)", (t) => {
  const text = findKind(manifests, "ConfigMap").data["kiln.yaml"];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-deploy-config-"));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, "tokens"), "ci kiln_" + "x".repeat(43) + " kiln:run\n");
  const known = execFileSync(process.env.KILN_BIN, ["config", "print"], { encoding: "utf8" });
  const config = YAML.parse(text);
  config.server.auth.tokens_file = path.join(dir, "tokens");
  for (const key of pendingKeys) {
    if (new RegExp(`^ *${key}:`, "m").test(known)) continue;
    t.diagnostic(`this kiln has no workspace.${key} yet: checked without it`);
    delete config.workspace[key];
  }
  if (Object.keys(config.workspace).length === 0) delete config.workspace;
  fs.writeFileSync(path.join(dir, "kiln.yaml"), YAML.stringify(config));
  const r = spawnSync(process.env.KILN_BIN, ["--config", path.join(dir, "kiln.yaml"), "config", "print"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /mode: tokens/);
});
