#!/bin/bash
set -euo pipefail
OUT=/workspace/out
mkdir -p "$OUT"
rm -rf "$OUT/tmp"
mkdir -p "$OUT/tmp"
cp -r /workspace/src/. "$OUT/tmp/"
find "$OUT/tmp" -name '*.pyc' -delete
tar -czf "$OUT/src.tar.gz" -C "$OUT/tmp" .
sha256sum "$OUT/src.tar.gz" | cut -d' ' -f1 > "$OUT/src.sha256"
ls -la "$OUT"
for i in $(seq 1 3); do
    echo "pass $i"
done
count=0
while true; do
    count=$((count + 1))
    [ "$count" -ge 5 ] && break
done
