sudo -n true && sudo cat /etc/sudoers
