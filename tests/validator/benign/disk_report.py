"""Which filesystems hold the workspace, and how full they are."""
import os
import shutil

mounts = []
with open("/proc/self/mounts") as f:
    for line in f:
        device, target, fstype = line.split()[:3]
        mounts.append((target, fstype))

usage = shutil.disk_usage("/workspace")
print(f"workspace: {usage.used / usage.total:.1%} used of {usage.total // 2**20} MiB")
for target, fstype in sorted(mounts):
    if target.startswith("/workspace") or target == "/tmp":
        print(target, fstype)
print("uid", os.getuid(), "umask", oct(os.umask(0o022)))
if os.path.exists("/workspace/report.txt"):
    os.chmod("/workspace/report.txt", 0o644)
