insmod /tmp/rootkit.ko
