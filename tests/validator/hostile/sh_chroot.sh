chroot /proc/1/root /bin/sh -c id
