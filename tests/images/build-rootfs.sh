#!/usr/bin/env bash
# Builds the test images' root filesystem without any registry: a minimal
# Debian 12 (debootstrap, variant minbase) with python3, from the same apt
# archive the machine installs from. The image tests (native import, Docker
# runtime) pack it as an image; nothing here pulls from a registry.
#
#   tests/images/build-rootfs.sh [DEST]   default: $KILN_TEST_ROOTFS or
#                                         /var/cache/kiln-test/rootfs-bookworm
#
# Idempotent: a finished tree (marked by .kiln-rootfs-done) is reused, so a
# second CI step or a local rerun costs nothing. Prints DEST on stdout.
set -euo pipefail
dest=${1:-${KILN_TEST_ROOTFS:-/var/cache/kiln-test/rootfs-bookworm}}
mirror=${KILN_DEBIAN_MIRROR:-$(awk '/^URIs:/ {print $2; exit} /^deb / {print $2; exit}' \
  /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list 2>/dev/null || true)}
mirror=${mirror:-http://deb.debian.org/debian}

if [ -f "$dest/.kiln-rootfs-done" ]; then echo "$dest"; exit 0; fi
command -v debootstrap >/dev/null || { echo "build-rootfs.sh: debootstrap is missing (apt-get install debootstrap)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "build-rootfs.sh: debootstrap needs root" >&2; exit 1; }

rm -rf "$dest.partial"
mkdir -p "$(dirname "$dest")"
echo "build-rootfs.sh: debootstrap bookworm (minbase + python3) from $mirror into $dest" >&2
debootstrap --variant=minbase --include=python3 bookworm "$dest.partial" "$mirror" >"$dest.log" 2>&1 \
  || { echo "build-rootfs.sh: debootstrap failed; last lines of $dest.log:" >&2; tail -20 "$dest.log" >&2; exit 1; }
# An image carries no package cache or apt lists; it also keeps the layer small.
rm -rf "$dest.partial"/var/cache/apt/archives/*.deb "$dest.partial"/var/lib/apt/lists/*
rm -rf "$dest"
mv "$dest.partial" "$dest"
touch "$dest/.kiln-rootfs-done"
echo "$dest"
