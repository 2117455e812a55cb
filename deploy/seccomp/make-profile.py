#!/usr/bin/env python3
"""Writes deploy/seccomp/kiln.json, the seccomp profile of Kiln's pod.

The profile is derived from two of Kiln's own tables, so it moves with them:

- every x86_64 system call the kernel headers name is allowed, except
- the calls the jail's own filter denies (kDenied and kDeniedByNumber in
  sandbox/seccomp_rules.cpp), which the pod denies too (EPERM), except
- the calls the jail's setup makes (SETUP_CALLS below): the server builds
  each jail with them, and nothing else in the pod needs them.

A program in a jail therefore meets the same refusals from the pod's filter
as from Kiln's own, and the server process itself cannot load modules, kexec,
bpf, ptrace, perf, io_uring, keyctl... A call newer than the headers gets
ENOSYS (defaultErrnoRet), so libc falls back as it would on an older kernel.
The format (defaultAction, architectures, syscalls[names, action, errnoRet])
is the one Docker's --security-opt seccomp= and the kubelet's Localhost
profiles (containerd, CRI-O) both read.

  deploy/seccomp/make-profile.py            rewrite kiln.json
  deploy/seccomp/make-profile.py --check    exit 1 if kiln.json is stale
"""
import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROFILE = ROOT / "deploy/seccomp/kiln.json"
RULES = ROOT / "sandbox/seccomp_rules.cpp"
UNISTD = pathlib.Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")

# What the jail's setup calls among the calls a jail may not (docs/sandbox.md,
# "Setup sequence"), each with the step that needs it.
SETUP_CALLS = {
    "unshare": "the rootless server's own user and mount namespace; the jail's network and cgroup namespaces",
    "setns": "a root server's runs join their session's network namespace",
    "mount": "the jail's tmpfs root, its read-only binds, /proc, /tmp; the workspaces' tmpfs",
    "umount2": "detaching the old root after pivot_root",
    "pivot_root": "entering the jail's root",
    "open_tree": "bind mounts cloned as detached trees (mount API)",
    "move_mount": "attaching those trees",
    "mount_setattr": "making a tree read-only, nosuid, nodev at once",
    "sethostname": "the jail's own host name in its UTS namespace",
    "landlock_create_ruleset": "the jail's Landlock ruleset (C010)",
    "landlock_add_rule": "its rules",
    "landlock_restrict_self": "kiln-init restricting itself",
}


def jail_denied_calls(source: str) -> list[str]:
    """The names in kDenied and kDeniedByNumber of seccomp_rules.cpp."""
    names = []
    for table in ("kDenied[]", "kDeniedByNumber[]"):
        start = source.index(table)
        body = source[start:source.index("};", start)]
        body = re.sub(r"//[^\n]*", "", body)
        names += re.findall(r'"([a-z0-9_]+)"', body)
    if len(names) < 40:
        sys.exit(f"make-profile.py: found only {len(names)} denied calls in {RULES}; has the table moved?")
    return names


def kernel_calls() -> list[str]:
    names = re.findall(r"^#define __NR_([a-z0-9_]+) \d+", UNISTD.read_text(), re.M)
    if len(names) < 300:
        sys.exit(f"make-profile.py: {UNISTD} names only {len(names)} calls (apt-get install linux-libc-dev)")
    return names


def profile() -> dict:
    denied = jail_denied_calls(RULES.read_text())
    unknown = set(SETUP_CALLS) - set(denied)
    if unknown:
        sys.exit(f"make-profile.py: setup calls not in the jail's denylist (allowed anyway, drop them here): {sorted(unknown)}")
    pod_denied = sorted(set(denied) - set(SETUP_CALLS))
    allowed = sorted(set(kernel_calls()) - set(denied))
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 38,
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [
            {"names": allowed, "action": "SCMP_ACT_ALLOW",
             "comment": "every x86_64 call but those Kiln's jail filter denies (sandbox/seccomp_rules.cpp)"},
            {"names": sorted(SETUP_CALLS), "action": "SCMP_ACT_ALLOW",
             "comment": "the jail's setup: " + "; ".join(f"{k}: {v}" for k, v in sorted(SETUP_CALLS.items()))},
            {"names": pod_denied, "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
             "comment": "denied in the pod as in every jail (EPERM, as Kiln's own filter answers)"},
        ],
    }


def main() -> int:
    text = json.dumps(profile(), indent=1) + "\n"
    if sys.argv[1:] == ["--check"]:
        if PROFILE.read_text() != text:
            print(f"{PROFILE} is stale: run deploy/seccomp/make-profile.py", file=sys.stderr)
            return 1
        return 0
    PROFILE.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
