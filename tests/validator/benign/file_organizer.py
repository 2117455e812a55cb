import shutil
import hashlib
from pathlib import Path

root = Path("/workspace/photos")
by_hash = {}
for path in sorted(root.rglob("*")):
    if not path.is_file():
        continue
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest in by_hash:
        print(f"duplicate: {path} == {by_hash[digest]}")
        path.unlink()
        continue
    by_hash[digest] = path
    target = root / path.suffix.lstrip(".").lower()
    target.mkdir(exist_ok=True)
    shutil.move(str(path), target / path.name)
