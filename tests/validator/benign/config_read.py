import os
import configparser
import logging

logging.basicConfig(level=logging.INFO)
log = logging.getLogger("report")

cfg = configparser.ConfigParser()
cfg.read("/workspace/settings.ini")
threshold = cfg.getfloat("report", "threshold", fallback=0.5)
home = os.environ.get("HOME", "/tmp")
lang = os.getenv("LANG", "C.UTF-8")
out_dir = os.path.join("/workspace", "out")
os.makedirs(out_dir, exist_ok=True)
log.info("threshold=%s home=%s lang=%s", threshold, home, lang)
for name in os.listdir("/workspace"):
    if name.endswith(".txt"):
        print(name, os.path.getsize(os.path.join("/workspace", name)))
