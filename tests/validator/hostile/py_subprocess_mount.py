import subprocess
subprocess.run(["mount", "-t", "cgroup", "-o", "rdma", "cgroup", "/tmp/cg"], check=True)
