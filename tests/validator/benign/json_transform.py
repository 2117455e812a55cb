import json
import datetime as dt
from dataclasses import dataclass, asdict
from typing import Iterable


@dataclass
class Event:
    name: str
    when: dt.datetime
    tags: list


def load(path: str) -> Iterable[Event]:
    with open(path) as f:
        for item in json.load(f):
            yield Event(item["name"], dt.datetime.fromisoformat(item["when"]), item.get("tags", []))


events = sorted(load("/workspace/events.json"), key=lambda e: e.when)
by_day = {}
for e in events:
    by_day.setdefault(e.when.date().isoformat(), []).append(asdict(e) | {"when": e.when.isoformat()})
print(json.dumps(by_day, indent=1)[:2000])
