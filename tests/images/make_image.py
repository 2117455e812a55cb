#!/usr/bin/env python3
"""Packs an image archive for the image tests, without docker or a registry.

  make_image.py --format docker|oci --name NAME --out FILE LAYER... [options]

A LAYER is a directory (packed as it is, e.g. tests/images/build-rootfs.sh's
rootfs) or a JSON file listing hand-made entries, which is how the tests
build hostile layers no honest tool writes:

  [{"path": "etc/x", "type": "file", "data": "text", "mode": 420},
   {"path": "bin/su", "type": "file", "mode": 2541},        # setuid
   {"path": "dev/sda", "type": "chardev", "major": 8},       # a device
   {"path": "lnk", "type": "symlink", "target": "/etc"},
   {"path": "h", "type": "hardlink", "target": "../x"},
   {"path": "../x", "type": "file"},                          # escaping
   {"path": "d/.wh.f", "type": "file"},                       # whiteout
   {"path": "d/.wh..wh..opq", "type": "file"}]                # opaque dir

--format docker writes what `docker save` writes (manifest.json with
RepoTags, <hex>.json config, <id>/layer.tar); oci writes an OCI image layout
tarball (oci-layout, index.json with the ref.name annotation, gzip layers
under blobs/sha256) as podman save --format oci-archive does.
--corrupt-layer N flips a byte of layer N (1-based) after its digest is
recorded; --env K=V adds to the config's Env.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import tarfile


def no_devices(info):
    # As `docker export` and image builders do: an image carries no device
    # nodes (debootstrap leaves /dev/null and friends in its tree).
    return None if info.ischr() or info.isblk() else info


def dir_layer(path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(os.listdir(path)):
            if name.startswith(".kiln-rootfs"):
                continue
            tar.add(os.path.join(path, name), arcname=name, recursive=True, filter=no_devices)
    return buf.getvalue()


def json_layer(path):
    with open(path) as f:
        entries = json.load(f)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e["path"])
            info.mode = e.get("mode", 0o755 if e["type"] == "dir" else 0o644)
            data = e.get("data", "").encode()
            kind = e["type"]
            if kind == "file":
                info.size = len(data)
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, e["target"]
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, e["target"]
            elif kind == "chardev":
                info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, e.get("major", 1), e.get("minor", 3)
            else:
                raise SystemExit(f"unknown entry type {kind}")
            tar.addfile(info, io.BytesIO(data) if kind == "file" else None)
    return buf.getvalue()


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def add_bytes(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--format", choices=["docker", "oci"], required=True)
    ap.add_argument("--name", default="")
    ap.add_argument("--out", required=True)
    ap.add_argument("--env", action="append", default=[])
    ap.add_argument("--corrupt-layer", type=int, default=0)
    ap.add_argument("layers", nargs="+")
    a = ap.parse_args()

    tars = [dir_layer(p) if os.path.isdir(p) else json_layer(p) for p in a.layers]
    config = {
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] + a.env,
                   "Cmd": ["python3"], "WorkingDir": "/", "User": ""},
        "rootfs": {"type": "layers", "diff_ids": [sha(t) for t in tars]},
    }
    config_bytes = json.dumps(config).encode()
    blobs = tars if a.format == "docker" else [gzip.compress(t, compresslevel=1, mtime=0) for t in tars]
    digests = [sha(b) for b in blobs]
    if a.corrupt_layer:
        b = bytearray(blobs[a.corrupt_layer - 1])
        b[len(b) // 2] ^= 0xFF
        blobs[a.corrupt_layer - 1] = bytes(b)

    with tarfile.open(a.out, "w") as out:
        if a.format == "docker":
            layer_paths = []
            for i, blob in enumerate(blobs):
                p = f"{hashlib.sha256(str(i).encode()).hexdigest()}/layer.tar"
                add_bytes(out, p, blob)
                layer_paths.append(p)
            cfg = sha(config_bytes)[7:] + ".json"
            add_bytes(out, cfg, config_bytes)
            manifest = [{"Config": cfg, "RepoTags": [a.name] if a.name else [], "Layers": layer_paths}]
            add_bytes(out, "manifest.json", json.dumps(manifest).encode())
        else:
            def blob(data):
                add_bytes(out, "blobs/sha256/" + sha(data)[7:], data)
            for data, digest in zip(blobs, digests):
                add_bytes(out, "blobs/sha256/" + digest[7:], data)
            blob(config_bytes)
            manifest = {
                "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": sha(config_bytes), "size": len(config_bytes)},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": len(b)}
                           for d, b in zip(digests, blobs)],
            }
            mbytes = json.dumps(manifest).encode()
            blob(mbytes)
            desc = {"mediaType": manifest["mediaType"], "digest": sha(mbytes), "size": len(mbytes)}
            if a.name:
                desc["annotations"] = {"org.opencontainers.image.ref.name": a.name}
            add_bytes(out, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
            add_bytes(out, "index.json", json.dumps({"schemaVersion": 2, "manifests": [desc]}).encode())
    print(sha(config_bytes))


if __name__ == "__main__":
    main()
