#!/bin/sh
# The containment suite on an imported image: packs tests/images/build-rootfs.sh's
# Debian as a `docker save` archive, imports it into a fresh store with
# `kiln image import`, runs the probe's control and hostile cases with the
# image's tree as the jail's root (KILN_TEST_IMAGE_ROOT, read by the
# harness's probe_spec), then `kiln selftest` with sandbox.image set.
#   run_on_image.sh SANDBOX_TESTS KILN SOURCE_DIR
# Exit 77 (skip) without the rootfs; under KILN_MUST_WORK=1 that fails.
set -eu
tests=$1 kiln=$2 src=$3
if ! rootfs=$("$src/tests/images/build-rootfs.sh" 2>/dev/null) || [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: no test rootfs (tests/images/build-rootfs.sh needs root and debootstrap)"
  [ "${KILN_MUST_WORK:-0}" = 1 ] && exit 1
  exit 77
fi
work=$(mktemp -d /tmp/kiln-image-suite.XXXXXX)
trap 'rm -rf "$work"' EXIT
export KILN_SERVER_STATE_DIR="$work/state"
digest=$(python3 "$src/tests/images/make_image.py" --format docker --name kiln-suite:1 --out "$work/image.tar" "$rootfs")
"$kiln" image import --strip-setuid "$work/image.tar"
rm "$work/image.tar"
export KILN_TEST_IMAGE_ROOT="$KILN_SERVER_STATE_DIR/images/sha256/${digest#sha256:}/rootfs"
"$tests" --source-file='*test_controls.cpp,*test_hostile.cpp'
# kiln refuses KILN_* variables that name no config key.
env -u KILN_TEST_IMAGE_ROOT KILN_SANDBOX_IMAGE=kiln-suite:1 KILN_SANDBOX_ALLOWED_IMAGES="kiln-suite:1@$digest" "$kiln" selftest
