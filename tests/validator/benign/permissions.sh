#!/bin/sh
# Make the build scripts executable and keep the output private.
set -eu
chmod 0755 /workspace/bin/build.sh
chmod u+x,go-w /workspace/bin/*.sh
chmod -R go-rwx /workspace/out
find /workspace/bin -type f -name '*.sh' -exec chmod 755 {} +
stat -c '%a %n' /workspace/bin/*.sh | sort
