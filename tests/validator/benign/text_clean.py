import re
import unicodedata
import sys

pattern = re.compile(r"\s+")


def normalise(line: str) -> str:
    line = unicodedata.normalize("NFKC", line)
    return pattern.sub(" ", line).strip()


lines = [normalise(l) for l in open("/workspace/raw.txt", encoding="utf-8")]
kept = [l for l in lines if l and not l.startswith("#")]
with open("/workspace/clean.txt", "w", encoding="utf-8") as out:
    out.write("\n".join(kept))
print(f"kept {len(kept)} of {len(lines)} lines", file=sys.stderr)
