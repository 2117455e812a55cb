"""Merge YAML and JSON settings for a report; pickle is never loaded here."""
import json
import yaml

with open("/workspace/defaults.yaml") as f:
    defaults = yaml.safe_load(f) or {}
with open("/workspace/overrides.yaml") as f:
    overrides = yaml.load(f, Loader=yaml.SafeLoader) or {}
with open("/workspace/extra.json") as f:
    extra = json.load(f)
inline = json.loads('{"precision": 3}')

settings = {**defaults, **overrides, **extra, **inline}
for doc in yaml.safe_load_all("a: 1\n---\nb: 2\n"):
    settings.update(doc)
print(yaml.safe_dump(settings, sort_keys=True))
