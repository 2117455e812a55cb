const { spawnSync } = require('child_process');
spawnSync('mount', ['-t', 'tmpfs', 'none', '/mnt']);
