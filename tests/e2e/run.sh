#!/bin/sh
# Runs one end-to-end test file against the kiln binary in $KILN_BIN:
#   KILN_BIN=build/cli/kiln tests/e2e/run.sh sdk.test.mjs
# Installs the pinned npm packages (package-lock.json) on first use; the npm
# registry is the only network these tests touch, and only to install.
set -eu
cd "$(dirname "$0")"

if [ -z "${KILN_BIN:-}" ]; then
  echo "run.sh: set KILN_BIN to the kiln binary" >&2
  exit 2
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "run.sh: node and npm are required (Debian: apt-get install nodejs npm)" >&2
  exit 2
fi

# Two suites may start at once under `meson test`: the lock keeps them from
# running npm ci into the same node_modules together.
install_packages() {
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "run.sh: installing the pinned npm packages (npm ci)" >&2
    npm ci --no-audit --no-fund --loglevel=error >&2
  fi
}
if command -v flock >/dev/null 2>&1; then
  exec 9>.npm-install.lock
  flock 9
  install_packages
  flock -u 9
else
  install_packages
fi

exec node --test "$@"
