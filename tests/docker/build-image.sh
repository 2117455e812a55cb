#!/usr/bin/env bash
# The Docker runtime's test image, built without any registry: the rootfs
# of tests/images/build-rootfs.sh imported into the local daemon as
# kiln-test/python:bookworm, and written with `docker save` to
# /var/cache/kiln-test/kiln-test-python.tar for the native image-import
# tests. Skips what already exists. Prints the image id.
#
#   tests/docker/build-image.sh            import (if absent) and save (if absent)
#   source tests/docker/build-image.sh && kiln_test_image_tar   the tar's path
set -euo pipefail
KILN_TEST_IMAGE=${KILN_TEST_IMAGE:-kiln-test/python:bookworm}
KILN_TEST_IMAGE_TAR=${KILN_TEST_IMAGE_TAR:-/var/cache/kiln-test/kiln-test-python.tar}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

kiln_test_image() {
  if ! docker image inspect "$KILN_TEST_IMAGE" >/dev/null 2>&1; then
    local rootfs
    rootfs=$("$here/../images/build-rootfs.sh")
    echo "build-image.sh: importing $rootfs as $KILN_TEST_IMAGE" >&2
    tar -C "$rootfs" --exclude=./.kiln-rootfs-done -c . |
      docker import --change 'CMD ["python3"]' --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
        --change 'WORKDIR /' - "$KILN_TEST_IMAGE" >/dev/null
  fi
  docker image inspect --format '{{.Id}}' "$KILN_TEST_IMAGE"
}

# The image as `docker save` writes it, for `kiln image import`.
kiln_test_image_tar() {
  kiln_test_image >/dev/null
  if [ ! -s "$KILN_TEST_IMAGE_TAR" ]; then
    mkdir -p "$(dirname "$KILN_TEST_IMAGE_TAR")"
    docker save -o "$KILN_TEST_IMAGE_TAR.partial" "$KILN_TEST_IMAGE"
    chmod 0644 "$KILN_TEST_IMAGE_TAR.partial"
    mv "$KILN_TEST_IMAGE_TAR.partial" "$KILN_TEST_IMAGE_TAR"
  fi
  echo "$KILN_TEST_IMAGE_TAR"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  kiln_test_image_tar >/dev/null
  kiln_test_image
fi
