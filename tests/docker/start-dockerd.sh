#!/usr/bin/env bash
# Starts Debian's dockerd for the Docker runtime's tests when none answers,
# without touching the host's network: no bridge, no iptables rules. The
# daemon keeps running after the tests (a second run reuses it); its log is
# /var/log/kiln-test-dockerd.log.
#
#   tests/docker/start-dockerd.sh     prints the socket path once it answers
set -euo pipefail
sock=/var/run/docker.sock
answers() { curl -sf --unix-socket "$sock" http://localhost/_ping >/dev/null 2>&1; }
if answers; then echo "$sock"; exit 0; fi
command -v dockerd >/dev/null || { echo "start-dockerd.sh: dockerd is missing (apt-get install docker.io)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "start-dockerd.sh: dockerd needs root" >&2; exit 1; }
log=/var/log/kiln-test-dockerd.log
setsid dockerd --bridge=none --iptables=false --ip6tables=false >"$log" 2>&1 </dev/null &
for _ in $(seq 1 150); do
  if answers; then echo "$sock"; exit 0; fi
  sleep 0.2
done
echo "start-dockerd.sh: dockerd did not answer on $sock within 30 s; last lines of $log:" >&2
tail -20 "$log" >&2
exit 1
