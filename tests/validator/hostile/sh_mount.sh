mount -t proc proc /mnt
