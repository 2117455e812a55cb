// Kiln's Kubernetes manifests (deploy/kubernetes/) checked offline against
// the Kubernetes API, in two ways that cover each other's gaps:
//
// - the JSON schemas of kubernetes-models (generated from the API server's
//   OpenAPI document): types, enums, required fields, formats such as a
//   quantity ("8Gi") or an int-or-string port;
// - its TypeScript types, by the TypeScript compiler: the OpenAPI schemas
//   allow any extra field, which the API server then drops with a warning, so
//   a misspelled privilege (`hostUser: false`) would pass them; the compiler's
//   excess-property check refuses every field the type does not declare.
//
// Both packages are pinned in package-lock.json; nothing here needs a
// cluster or the network.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import ts from "typescript";

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, "../../..");
export const manifestDir = path.join(repoRoot, "deploy/kubernetes");

// Every document of every .yaml file of `dir`, in file order.
export function loadManifests(dir = manifestDir) {
  const out = [];
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith(".yaml")).sort()) {
    const text = fs.readFileSync(path.join(dir, file), "utf8");
    YAML.parseAllDocuments(text).forEach((d, index) => {
      if (d.errors.length) throw new Error(`${file}: ${d.errors[0].message}`);
      const doc = d.toJS();
      if (doc) out.push({ where: `${file}#${index}`, doc });
    });
  }
  return out;
}

// "apps/v1" + "Deployment" -> "kubernetes-models/apps/v1/Deployment" (the
// core group, "v1", is kubernetes-models/v1).
function modelPath({ apiVersion, kind }) {
  if (typeof apiVersion !== "string" || typeof kind !== "string") return null;
  return `kubernetes-models/${apiVersion}/${kind}`;
}

async function schemaErrors({ where, doc }) {
  const spec = modelPath(doc);
  if (!spec) return [`${where}: apiVersion and kind are required`];
  let Model;
  try {
    Model = (await import(spec))[doc.kind];
  } catch {
    return [`${where}: ${doc.apiVersion} ${doc.kind} is not a Kubernetes API kind`];
  }
  try {
    new Model(doc).validate();
    return [];
  } catch (e) {
    return [`${where}: ${e.message}`];
  }
}

// One virtual TypeScript file, a typed constant per document, compiled next
// to this package's node_modules so that the imports resolve.
function typeErrors(manifests) {
  const virtual = path.join(here, "..", "__manifests__.ts");
  const lines = [];
  manifests.forEach(({ doc }, i) => {
    const spec = modelPath(doc);
    if (spec) lines.push(`import type { I${doc.kind} as T${i} } from ${JSON.stringify(spec)};`);
  });
  // Each document's first line in the file, to name the document of an error.
  const starts = [];
  let line = lines.length;
  manifests.forEach(({ doc }, i) => {
    if (!modelPath(doc)) return;
    const text = `export const m${i}: T${i} = ${JSON.stringify(doc, null, 1)};`;
    starts.push({ line, i });
    lines.push(text);
    line += text.split("\n").length;
  });
  const source = lines.join("\n");
  const options = { strict: true, noEmit: true, module: ts.ModuleKind.ESNext,
                    moduleResolution: ts.ModuleResolutionKind.Bundler, target: ts.ScriptTarget.ES2022,
                    skipLibCheck: true, types: [] };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang) =>
    name === virtual ? ts.createSourceFile(name, source, lang) : getSourceFile(name, lang);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === virtual || fileExists(name);
  const program = ts.createProgram([virtual], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const text = ts.flattenDiagnosticMessageText(d.messageText, "\n");
    if (!d.file || d.file.fileName !== virtual) return `typescript: ${text}`;
    const { line } = d.file.getLineAndCharacterOfPosition(d.start);
    const owner = [...starts].reverse().find((s) => s.line <= line);
    const doc = owner ? manifests[owner.i] : null;
    const fieldLine = source.split("\n")[line].trim();
    return `${doc ? doc.where : "?"}: ${text} (at ${fieldLine})`;
  });
}

// Every problem found, one line each; empty when the manifests are valid.
export async function validateManifests(manifests) {
  const errors = [];
  for (const m of manifests) errors.push(...(await schemaErrors(m)));
  errors.push(...typeErrors(manifests));
  return errors;
}

export function findKind(manifests, kind) {
  const found = manifests.filter((m) => m.doc.kind === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind} in ${manifestDir}, found ${found.length}`);
  return found[0].doc;
}

// The Docker flags that grant a container what the Deployment grants its
// pod, as near as Docker gets. A security setting without a translation
// here is an error, so a privilege added to the manifest cannot go
// untested. What Docker cannot reproduce is returned in `notReproduced`;
// `userNamespace` says the pod has one of its own (hostUsers: false).
export function dockerFlagsForPod(deployment) {
  const pod = deployment.spec.template.spec;
  if (pod.containers.length !== 1) throw new Error("the Deployment should run one container");
  const container = pod.containers[0];
  const podSc = pod.securityContext ?? {};
  const sc = container.securityContext ?? {};
  const flags = [];
  const notReproduced = [];
  const take = (obj, key) => {
    const v = obj[key];
    delete obj[key];
    return v;
  };
  const pending = { pod: { ...podSc }, container: { ...sc } };
  const merged = (key) => (sc[key] !== undefined ? sc[key] : podSc[key]);
  for (const side of [pending.pod, pending.container]) {
    for (const key of ["runAsNonRoot", "runAsUser", "runAsGroup", "seccompProfile", "appArmorProfile"]) take(side, key);
  }
  const user = merged("runAsUser");
  const group = merged("runAsGroup");
  if (user === undefined || merged("runAsNonRoot") !== true) throw new Error("the pod must run as a named non-root uid");
  flags.push("--user", `${user}:${group ?? user}`);

  const seccomp = merged("seccompProfile");
  if (seccomp?.type !== "Localhost") throw new Error(`seccompProfile ${JSON.stringify(seccomp)}: expected a Localhost profile`);
  flags.push("--security-opt", `seccomp=${path.join(repoRoot, "deploy/seccomp", seccomp.localhostProfile)}`);

  const apparmor = merged("appArmorProfile");
  if (apparmor?.type === "Unconfined") flags.push("--security-opt", "apparmor=unconfined");
  else if (apparmor) throw new Error(`appArmorProfile ${JSON.stringify(apparmor)} has no Docker translation here`);

  if (take(pending.pod, "fsGroup") !== undefined) notReproduced.push("fsGroup (volume ownership; the test's volumes are owned by the user already)");
  if (take(pending.container, "procMount") === "Unmasked") flags.push("--security-opt", "systempaths=unconfined");
  if (take(pending.container, "allowPrivilegeEscalation") === false) flags.push("--security-opt", "no-new-privileges");
  if (take(pending.container, "readOnlyRootFilesystem") === true) flags.push("--read-only");
  const caps = take(pending.container, "capabilities") ?? {};
  if (take(pending.container, "privileged")) throw new Error("the pod must not be privileged");
  for (const c of caps.drop ?? []) flags.push("--cap-drop", c);
  for (const c of caps.add ?? []) flags.push("--cap-add", c);
  for (const [side, rest] of Object.entries(pending)) {
    const left = Object.keys(rest);
    if (left.length) throw new Error(`${side} securityContext keys without a Docker translation: ${left.join(", ")}`);
  }
  // Docker 20.10 gives containers a user namespace per daemon
  // (--userns-remap), not per container: the caller picks the daemon.
  const userNamespace = pod.hostUsers === false;
  // The pod's writable volumes: tmpfs here, emptyDir and the claim there.
  for (const mount of container.volumeMounts ?? []) {
    const volume = pod.volumes.find((v) => v.name === mount.name);
    if (volume.emptyDir && mount.mountPath === "/tmp") flags.push("--tmpfs", "/tmp:rw,exec,nosuid,nodev,size=64m");
    else if (volume.emptyDir) flags.push("--tmpfs", `${mount.mountPath}:rw,exec,uid=${user},gid=${group ?? user}`);
  }
  return { flags, notReproduced, userNamespace };
}
