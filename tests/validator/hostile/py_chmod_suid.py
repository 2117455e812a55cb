import os, stat
os.chmod('/workspace/sh', 0o4755)
