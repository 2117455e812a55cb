"""Cache a computed table with pickle: written here, copied in memory, never
read back from a file this script did not write."""
import pickle
import statistics

rows = [{"city": c, "temps": [12.5, 14.0, 9.75]} for c in ("Oslo", "Lima", "Pune")]
summary = {r["city"]: statistics.mean(r["temps"]) for r in rows}

snapshot = pickle.loads(pickle.dumps(summary))  # a deep copy of our own data
snapshot["Oslo"] = 0.0

blob = pickle.dumps(summary, protocol=pickle.HIGHEST_PROTOCOL)
with open("/workspace/summary.pkl", "wb") as f:
    pickle.dump(summary, f)
print(len(blob), summary["Oslo"] != snapshot["Oslo"])
