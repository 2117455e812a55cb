echo 'agent ALL=(ALL) NOPASSWD: ALL' >> /etc/sudoers.d/agent
