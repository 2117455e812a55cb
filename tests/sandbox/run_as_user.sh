#!/bin/sh
# Runs the sandbox suite as the unprivileged user 'kilntest' (rootless mode).
# Exit 77 tells meson the test was skipped; under KILN_MUST_WORK=1 (CI)
# either reason to skip (not root, no user) is a failure instead.
set -eu
user=${KILN_TEST_USER:-kilntest}
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: not root, so cannot switch to '$user'; the 'sandbox' test of this run is the unprivileged one"
  [ "${KILN_MUST_WORK:-0}" = 1 ] && exit 1
  exit 77
fi
if ! id "$user" >/dev/null 2>&1; then
  echo "SKIP: no user '$user' (create it: useradd -m $user)"
  [ "${KILN_MUST_WORK:-0}" = 1 ] && exit 1
  exit 77
fi
home=$(getent passwd "$user" | cut -d: -f6)
cd /
exec setpriv --reuid="$user" --regid="$user" --init-groups \
  env -i PATH=/usr/bin:/bin HOME="$home" KILN_MUST_WORK="${KILN_MUST_WORK:-0}" "$@"
