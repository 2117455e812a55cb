import re
import json
from collections import Counter

text = open("/workspace/input.txt", encoding="utf-8").read()
words = re.findall(r"[a-z']+", text.lower())
counts = Counter(words)
# The most common words; eval() is not needed for this.
top = counts.most_common(20)
with open("/workspace/top_words.json", "w") as out:
    json.dump(dict(top), out, indent=2)
print(f"{len(words)} words, {len(counts)} distinct")
