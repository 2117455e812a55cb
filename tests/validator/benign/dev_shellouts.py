"""Build facts for a report: the shell-outs an agent writes every day."""
import json
import os
import subprocess

facts = {
    "commits": subprocess.check_output(["git", "log", "--oneline", "-n", "5"], text=True),
    "packages": subprocess.run("pip list --format=json", shell=True, capture_output=True, text=True).stdout,
    "files": os.popen("ls -la").read(),
}
subprocess.run(["make", "-j2"], check=False)
subprocess.run(["pytest", "-q", "tests/"], check=False)
os.system("sha256sum data.csv > data.csv.sha256")
subprocess.run(["tar", "-czf", "out.tar.gz", "src"], check=True)
print(json.dumps(facts, indent=2))
