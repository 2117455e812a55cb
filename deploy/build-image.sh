#!/usr/bin/env bash
# Builds Kiln's OCI image in the local Docker daemon without any registry:
#
# 1. the base: tests/images/build-rootfs.sh's Debian 12 (debootstrap, with
#    python3) imported as $KILN_BASE_IMAGE (default kiln/base:bookworm);
# 2. the context: `meson install` of BUILD_DIR into rootfs/ (kiln, kiln-http,
#    kiln-init, kiln-probe under /usr/local), plus every shared library they
#    load (ldd, and the libcrypto/libssl Kiln dlopens) that the base lacks,
#    plus /etc/kiln/kiln.yaml;
# 3. `docker build` of deploy/image/Dockerfile FROM that local base.
#
#   deploy/build-image.sh [BUILD_DIR]   default: build. Prints the image tag.
#
# Idempotent: the base is imported once, and an unchanged context is a
# cache hit for every step of the build. KILN_IMAGE names the tag (default
# kiln/kiln:<version>).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build_dir=$(cd "${1:-$root/build}" && pwd)
base=${KILN_BASE_IMAGE:-kiln/base:bookworm}
version=$(sed -n "s/^ *version : '\(.*\)',$/\1/p" "$root/meson.build" | head -1)
tag=${KILN_IMAGE:-kiln/kiln:$version}
context=$build_dir/deploy-image
# Kiln loads these on first use (common/libcrypto.cpp), so ldd cannot see them.
dlopened=(libcrypto.so.3 libssl.so.3)

say() { echo "build-image.sh: $*" >&2; }

import_base() {
  docker image inspect "$base" >/dev/null 2>&1 && return
  say "importing $rootfs as $base"
  tar -C "$rootfs" --exclude=./.kiln-rootfs-done -c . | docker import - "$base" >/dev/null
}

stage_install() {
  say "building and installing $build_dir into $context/rootfs"
  ninja -C "$build_dir" cli/kiln cli/kiln-http sandbox/kiln-init sandbox/kiln-probe >&2
  rm -rf "$context"
  mkdir -p "$context/rootfs/etc/kiln" "$context/state"
  DESTDIR="$context/rootfs" meson install -C "$build_dir" --no-rebuild --quiet >&2
  cp "$here/image/kiln.yaml" "$context/rootfs/etc/kiln/kiln.yaml"
  cp "$here/image/Dockerfile" "$context/Dockerfile"
}

# The user the server runs as, named: getpwuid() of its uid must answer
# (libc, Python and the test suite ask for its home).
stage_user() {
  cp "$rootfs/etc/passwd" "$rootfs/etc/group" "$context/rootfs/etc/"
  echo "kiln:x:10001:10001:Kiln:/var/lib/kiln:/usr/sbin/nologin" >>"$context/rootfs/etc/passwd"
  echo "kiln:x:10001:" >>"$context/rootfs/etc/group"
}

# A library the base has at the same path (merged /usr: /lib is /usr/lib)
# is the same Debian 12 package's; only the missing ones are copied.
stage_libraries() {
  local lib path name
  local -a wanted=()
  while read -r path; do wanted+=("$path"); done < <(
    find "$context/rootfs" -type f -perm -u+x -exec ldd {} \; 2>/dev/null |
      awk '$2 == "=>" && $3 ~ /^\// {print $3}'
    for lib in "${dlopened[@]}"; do ldconfig -p | awk -v n="$lib" '$1 == n && /x86-64/ {print $NF; exit}'; done)
  for path in $(printf '%s\n' "${wanted[@]}" | sort -u); do
    name=/usr/lib/x86_64-linux-gnu/$(basename "$path")
    [ -e "$rootfs$name" ] && continue
    mkdir -p "$context/rootfs$(dirname "$name")"
    cp -L "$path" "$context/rootfs$name"
    say "adding $name"
  done
}

rootfs=$("$root/tests/images/build-rootfs.sh")
import_base
stage_install
stage_user
stage_libraries
say "docker build $tag FROM $base"
previous=$(docker image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
# The legacy builder: Debian 12's docker.io has no BuildKit (buildx). Its
# output is shown only when the build fails.
if ! out=$(DOCKER_BUILDKIT=0 docker build --network none --build-arg "BASE=$base" -t "$tag" "$context" 2>&1); then
  echo "$out" >&2
  exit 1
fi
# The image this tag named before a rebuild is left untagged: remove it
# (kept if a container still uses it).
if [ -n "$previous" ] && [ "$previous" != "$(docker image inspect --format '{{.Id}}' "$tag")" ]; then
  docker image rm "$previous" >/dev/null 2>&1 || true
fi
echo "$tag"
