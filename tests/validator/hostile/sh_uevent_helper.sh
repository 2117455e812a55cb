echo /tmp/x > /sys/kernel/uevent_helper
