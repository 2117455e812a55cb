import subprocess
print(subprocess.run(["./amicontained"], capture_output=True, text=True).stdout)
