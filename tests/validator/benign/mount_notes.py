"""Count words about mounts and namespaces in the user's notes: the words are data."""
import collections
import re

terms = ("mount", "chroot", "unshare", "nsenter", "insmod", "setuid", "pickle")
counts = collections.Counter()
with open("/workspace/notes.md", encoding="utf-8") as f:
    for line in f:
        for word in re.findall(r"[a-z_]+", line.lower()):
            if word in terms:
                counts[word] += 1
for term, n in counts.most_common():
    print(f"{term:10} {n}")
